"""The answers the gateway writes itself, in OpenAI's error shape, so a client's SDK reports
them as it reports the model server's own; and the exception that carries one, or a stream
cut short, out of a failed exchange with the upstream."""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway.constants import ARM_HEADER, ARM_PRODUCTION, REQUEST_ID_HEADER
from gateway.errors import ShadowgateError


class FailedExchange(ShadowgateError):
    """The upstream failed after the request was sent: `response` is what the user gets (the
    gateway's own error, or a stream cut short), `error` what the request is recorded with.
    Raised on the user's path once the request is sent; the proxy answers with `response`."""

    def __init__(self, response: web.StreamResponse, error: str) -> None:
        self.response = response
        self.error = error


def error_body(message: str, code: str) -> bytes:
    """An OpenAI-style error document produced by the gateway itself."""
    error = {"message": message, "type": "gateway_error", "param": None, "code": code}
    return orjson.dumps({"error": error})


def error_response(
    status: int, message: str, code: str, *, arm: str, request_id: str
) -> web.Response:
    """An OpenAI-style error response produced by the gateway itself."""
    return web.Response(
        status=status,
        body=error_body(message, code),
        content_type="application/json",
        headers={ARM_HEADER: arm, REQUEST_ID_HEADER: request_id},
    )


def body_timeout_response(arm: str, request_id: str) -> web.Response:
    """408: the client sent its body too slowly; the connection is not reused."""
    response = error_response(
        408,
        "the request body did not arrive in time",
        "client_body_timeout",
        arm=arm,
        request_id=request_id,
    )
    response.force_close()  # the rest of the body may still be on its way
    return response


def invalid_target_response(request_id: str) -> web.Response:
    """400: the request target is neither a path nor an absolute URL of this gateway."""
    return _bad_request("the request target must be a path", "invalid_request_target", request_id)


def incomplete_body_response(request_id: str) -> web.Response:
    """400: the client closed its side before the body it announced was complete."""
    return _bad_request("request body ended early", "incomplete_body", request_id)


def streamed_bodies_full_response(arm: str, request_id: str) -> web.Response:
    """503: this arm's share of large request bodies in flight is taken."""
    return error_response(
        503,
        "too many large request bodies in flight, retry later",
        "too_many_streamed_bodies",
        arm=arm,
        request_id=request_id,
    )


def _bad_request(message: str, code: str, request_id: str) -> web.Response:
    # Answered before an arm is chosen: the arm header names production, the default.
    return error_response(400, message, code, arm=ARM_PRODUCTION, request_id=request_id)
