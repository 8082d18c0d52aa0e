"""The data plane's HTTP server: aiohttp's low-level server with client timeouts, and the
requests in flight that shutdown waits for and then cuts.

aiohttp closes a connection left idle for `keepalive_timeout`, but a request head trickled a
line at a time counts as idle only until its first byte, and nothing bounds it after that.
Here each connection also gives a request `header_timeout_s` from its first byte to the end of
its head; past it the client gets a 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.config import ListenConfig
from gateway.http_log import server_log
from gateway.metrics import Metrics
from gateway.proxy.error_responses import error_body

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_HEAD_END = b"\r\n\r\n"


def _timeout_answer() -> bytes:
    body = error_body("the request headers did not arrive in time", "client_header_timeout")
    head = (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    return head + body


class _TimedRequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, plus a timer on each request head."""

    def __init__(
        self, manager: DataServer, *, header_timeout_s: float, metrics: Metrics, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._timeouts = metrics.client_timeouts.labels("header")
        self._awaiting_head = True
        self._tail = b""  # the last bytes seen, in case the head's end spans two reads
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and data:
            if self._head_timer is None:
                self._head_timer = asyncio.get_running_loop().call_later(
                    self._header_timeout_s, self._head_timed_out
                )
            if _HEAD_END in self._tail + data[:3] or _HEAD_END in data:
                self._head_done()
            else:
                self._tail = data[-3:]
        super().data_received(data)

    def request_started(self) -> None:
        """aiohttp parsed a head (one this scan may have missed, e.g. with bare LF endings)."""
        self._head_done()

    def _head_done(self) -> None:
        self._awaiting_head = False
        self._tail = b""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def request_ended(self, request: web.BaseRequest) -> None:
        """The next bytes begin a new head, unless this body was left unread: then aiohttp
        reads and discards the rest, and closes the connection."""
        if request.content.is_eof():
            self._awaiting_head = True

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport is None:
            return
        self._timeouts.inc()
        self.transport.write(_timeout_answer())
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._head_done()
        super().connection_lost(exc)


class DataServer(web.Server):
    """aiohttp's low-level server whose connections time out slow request heads."""

    def __init__(self, handler: Handler, *, listen: ListenConfig, metrics: Metrics) -> None:
        self._handler_settings: dict[str, Any] = {
            "keepalive_timeout": listen.keepalive_timeout_s,
            "access_log": None,
            # aiohttp's own log of a malformed request quotes the header line: never log it.
            "logger": server_log,
            # Request bodies go upstream as sent, with their own Content-Encoding.
            "auto_decompress": False,
        }
        self._header_timeout_s = listen.header_timeout_s
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[Any]] = set()
        super().__init__(self._track(handler), handler_cancellation=True, **self._handler_settings)

    @property
    def in_flight(self) -> int:
        """Requests being handled now."""
        return len(self._in_flight)

    def cut(self) -> int:
        """Cancel every request still in flight (the shutdown grace is over); each is counted."""
        for task in self._in_flight:
            task.cancel()
        self._metrics.shutdown_cuts.inc(len(self._in_flight))
        return len(self._in_flight)

    def _track(self, handler: Handler) -> Handler:
        in_flight = self._in_flight

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            task = asyncio.current_task()
            assert task is not None
            protocol = request.protocol
            assert isinstance(protocol, _TimedRequestHandler)
            protocol.request_started()
            in_flight.add(task)
            try:
                return await handler(request)
            finally:
                in_flight.discard(task)
                protocol.request_ended(request)

        return handle

    def __call__(self) -> web.RequestHandler:
        return _TimedRequestHandler(
            self,
            loop=asyncio.get_running_loop(),
            header_timeout_s=self._header_timeout_s,
            metrics=self._metrics,
            **self._handler_settings,
        )
