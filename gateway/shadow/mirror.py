"""The values one mirror is made of: what it carries from the user's request, each upstream's
captured answer, and the proxy's handle that tees production's answer into it.

Plain values with no behaviour of their own beyond that hand-over, so the dispatcher, the
proxy and the tracing spans can all name them without importing each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.proxy.capture import Capture

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext


@dataclass(slots=True)
class Captured:
    """One upstream's raw answer as captured, before reassembly."""

    status: int | None
    body: bytes
    truncated: bool
    content_type: str | None
    content_encoding: str | None
    latency_ms: float | None
    ttfb_ms: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MirrorRequest:
    """What a mirror needs from the user's request; never the request object itself."""

    route: str
    path_qs: str
    method: str
    document: Any
    headers: dict[str, str]
    unit: str | None
    noise: bool
    production_authorization: str | None
    user_span: SpanContext | None = None


class ShadowJob:
    """The proxy's handle on one mirror: production's answer is teed into `capture` as it
    streams to the user, and handed over when the user's request ends."""

    __slots__ = ("_future", "capture")

    def __init__(self, future: asyncio.Future[Captured], capture: Capture) -> None:
        self._future = future
        self.capture = capture

    def finish(
        self,
        *,
        status: int | None,
        error: str | None,
        headers: Mapping[str, str] | None,
        latency_ms: float,
        ttfb_ms: float | None,
    ) -> None:
        """Hand production's answer over: its status (None when it failed), the captured
        body and the headers it was sent with, if it began."""
        if self._future.done():
            return
        capture = self.capture
        self._future.set_result(
            Captured(
                status=status if error is None else None,
                body=bytes(capture.buffer),
                truncated=capture.truncated,
                content_type=headers.get("Content-Type") if headers is not None else None,
                content_encoding=headers.get("Content-Encoding") if headers is not None else None,
                latency_ms=latency_ms,
                ttfb_ms=ttfb_ms,
                error=error,
            )
        )
