"""Bearer-token checks and JSON answers for the control plane; tokens compared in constant
time and never logged."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    503: web.HTTPServiceUnavailable,
}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def json_object(request: web.Request, *, empty_ok: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = await request.read()
    if empty_ok and not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise http_error(400, f"body must be a JSON object; it is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise http_error(400, f"body must be a JSON object, not a JSON {type(value).__name__}")
    return value


def http_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.HTTPException:
    """A raisable HTTP error with a JSON body `{"error": {"message", "status"}}`."""
    return _ERRORS[status](
        text=orjson.dumps({"error": {"message": message, "status": status}}).decode(),
        content_type="application/json",
        headers=headers,
    )


def bearer_token(request: web.Request) -> str | None:
    """The request's bearer token, if it carries one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(token: str, expected: SecretStr) -> bool:
    """Constant-time comparison. aiohttp turns undecodable header bytes into surrogates: they
    are compared as the bytes that arrived, so such a token is wrong, never an error."""
    given = token.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, expected.get_secret_value().encode())


def check_token(request: web.Request, expected: SecretStr | None, *, what: str) -> None:
    """Raise 401/403 unless the request carries the expected bearer token."""
    if expected is None:
        raise http_error(403, f"{what} API disabled: no {what} token is configured")
    token = bearer_token(request)
    if token is None:
        raise http_error(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    if not token_matches(token, expected):
        raise http_error(403, f"not a valid {what} token")
