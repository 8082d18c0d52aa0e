"""The command-line client of the control plane's HTTP API (`shadowgate review`, `shadowgate
rollout`): the `--url` option, a bearer token from the environment, JSON both ways, and
every failure as a one-line error."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import orjson

from gateway.errors import ConfigError, ShadowgateError


def add_url_option(parser: Any) -> None:
    """`--url`: the control plane's address (default: $SHADOWGATE_CONTROL_URL)."""
    parser.add_argument(
        "--url",
        default=os.environ.get("SHADOWGATE_CONTROL_URL", "http://127.0.0.1:8081"),
        help="control-plane URL",
    )


def env_token(name: str, what: str) -> str:
    """The bearer token in environment variable `name`; a ConfigError without one."""
    token = os.environ.get(name)
    if not token:
        raise ConfigError(f"{name}: set it to {what}")
    return token


def call(
    url: str,
    method: str,
    path: str,
    *,
    token: str,
    failure: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One request with the bearer `token` and a JSON `body` (if any); the decoded answer, or
    None for an empty one. An HTTP error becomes `{failure}: {status} {message}`."""
    request = urllib.request.Request(
        url.rstrip("/") + path,
        method=method,
        data=orjson.dumps(body) if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            **(headers or {}),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return orjson.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        detail = orjson.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        raise ShadowgateError(f"{failure}: {exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise ShadowgateError(f"cannot reach {url}: {exc.reason}") from None
