"""Which request and response headers cross the proxy, per RFC 9110 section 7.6.1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set again by the proxy itself, so the client's values never reach the upstream.
_REQUEST_REWRITTEN: Final = frozenset({"host", "content-length", "expect"})
# Only these reach a mirrored request: anything else (cookies, user ids, the user's
# credentials) may identify the user, and a mirror must see scrubbed data only.
SHADOW_ALLOWED: Final = frozenset({"content-type", "accept", "openai-beta", "openai-version"})
# The user's credentials and account: never sent to the candidate, on any arm. Configured names
# (`upstreams.candidate.credential_headers`) add to these; the candidate's own key comes from
# its `api_key`.
CREDENTIAL_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "openai-organization",
        "openai-project",
    }
)
NOTHING: Final[frozenset[str]] = frozenset()


def credential_headers(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in credential headers plus `extra`, lower-cased for matching."""
    return CREDENTIAL_HEADERS | {name.lower() for name in extra}


def _connection_tokens(headers: MultiMapping[str]) -> set[str]:
    value = headers.get("connection")
    if not value:
        return set()
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def upstream_request_headers(
    incoming: CIMultiDictProxy[str],
    *,
    content_length: int | None,
    forwarded_for: str | None,
    forwarded_proto: str,
    request_id: str,
    authorization: str | None,
    strip: frozenset[str] = NOTHING,
) -> CIMultiDict[str]:
    """Headers for the upstream that serves the user: end-to-end ones copied, framing redone,
    the `strip` names (lower case) left out, and the upstream's own `authorization` added."""
    drop = HOP_BY_HOP | _REQUEST_REWRITTEN | strip | _connection_tokens(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in drop:
            out.add(name, value)
    if content_length is not None:
        out["Content-Length"] = str(content_length)
    previous = incoming.get("x-forwarded-for")
    if forwarded_for:
        out["X-Forwarded-For"] = f"{previous}, {forwarded_for}" if previous else forwarded_for
    out["X-Forwarded-Proto"] = forwarded_proto
    out["x-request-id"] = request_id
    if authorization is not None:
        out["Authorization"] = authorization
    return out


def response_headers(incoming: MultiMapping[str]) -> CIMultiDict[str]:
    """The upstream's response headers less hop-by-hop ones; Content-Length is kept as framing."""
    drop = HOP_BY_HOP | _connection_tokens(incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        if name.lower() not in drop:
            out.add(name, value)
    return out


def shadow_request_headers(
    incoming: CIMultiDictProxy[str], *, request_id: str, authorization: str | None
) -> dict[str, str]:
    """Headers of a mirrored request: an allow-list, the shadow marker and the target's own key."""
    out = {name: value for name, value in incoming.items() if name.lower() in SHADOW_ALLOWED}
    out["x-shadowgate-shadow"] = "1"
    out["x-request-id"] = request_id
    if authorization is not None:
        out["Authorization"] = authorization
    return out
