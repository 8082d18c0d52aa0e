"""Credentials carried in the query string (`?api-key=...`, Azure OpenAI style), removed from a
request target before it leaves for the candidate: the query-string twin of the credential
headers in `headers.py`. Production, the user's own endpoint, gets the target untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote

# Names that carry a key, a token or a signature in the query strings of model endpoints and
# the gateways in front of them (Azure OpenAI and APIM, Google `key`, OAuth bearer tokens).
# Configured names (`upstreams.candidate.credential_params`) add to these.
CREDENTIAL_PARAMS: Final = frozenset(
    {
        "api-key",
        "api_key",
        "apikey",
        "x-api-key",
        "key",
        "access_token",
        "id_token",
        "refresh_token",
        "token",
        "auth",
        "authorization",
        "client_secret",
        "password",
        "secret",
        "sig",
        "subscription-key",
    }
)


def credential_params(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in credential parameter names plus `extra`, lower-cased for matching."""
    return CREDENTIAL_PARAMS | {name.lower() for name in extra}


def strip_credential_params(path_qs: str, names: frozenset[str]) -> str:
    """`path_qs` without the query parameters named in `names` (lower case), matched
    case-insensitively on the decoded name; every other byte of the target is kept as sent,
    and a query left empty loses its `?`."""
    if "?" not in path_qs or not names:
        return path_qs
    path, _, query = path_qs.partition("?")
    params = query.split("&")
    kept = [param for param in params if _name(param) not in names]
    if len(kept) == len(params):
        return path_qs
    return f"{path}?{'&'.join(kept)}" if kept else path


def _name(param: str) -> str:
    name = param.partition("=")[0]
    # `api%2Dkey` is `api-key` to the server that decodes it.
    return (unquote(name) if "%" in name else name).lower()
