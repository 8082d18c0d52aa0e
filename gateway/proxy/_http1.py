"""One HTTP/1.1 client connection: an asyncio Protocol whose bytes go through httptools' parser.

It carries one exchange at a time and only reports what it saw; the pool in
`upstream_client.py` decides when a connection may be reused. Response bodies are buffered
chunk by chunk as they arrive, with reading paused while the consumer lags behind.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Final, cast

import httptools

from gateway.errors import (
    UpstreamDisconnected,
    UpstreamHeadTooLarge,
    UpstreamProtocolError,
    UpstreamTimeout,
)

# Stop reading from the upstream while this much body waits for a slow client (reading
# resumes once the consumer took it), so memory per stream stays bounded.
_HIGH_WATER: Final = 256 * 1024
_NO_BODY_STATUSES: Final = frozenset({204, 304})
# httptools puts no bound on a response head; a broken upstream must not grow our memory.
_MAX_HEAD_BYTES: Final = 64 * 1024


class Http1Connection(asyncio.Protocol):
    """A keep-alive connection to an upstream; `begin` starts each request/response exchange."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._parser_spent = False  # it stopped inside a message (a HEAD answer's body)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # Set while a streamed request body is still being written; owned and cancelled here.
        self.body_task: asyncio.Task[None] | None = None
        self._active = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self._reason = bytearray()
        self.raw_headers: list[tuple[str, str]] = []
        self._head_only = False
        self.headers_done = False
        self.complete = False
        self.received = False
        self._head_bytes = 0
        self._until_close = False
        self._informational = False
        self._keep_alive = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._read_paused = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- exchange API, used by the pool ----------------------------------------------------

    def begin(self, *, head_only: bool) -> None:
        """Start a new exchange on this connection (fresh or taken from the pool)."""
        self._reset()
        if self._parser_spent:
            self._parser = httptools.HttpResponseParser(self)
            self._parser_spent = False
        self.body_task = None
        self._head_only = head_only
        self._active = True

    def park(self) -> None:
        """The exchange is over and the connection idles in the pool."""
        self._active = False

    def write(self, data: bytes) -> None:
        if self._transport is None or self.closed:
            raise UpstreamDisconnected("upstream connection is closed")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self.closed:
            raise UpstreamDisconnected("upstream connection is closed")
        if self._write_paused:
            waiter = self._drain_waiter = self._loop.create_future()
            await waiter

    @property
    def reason(self) -> str:
        return self._reason.decode("latin-1")

    @property
    def reusable(self) -> bool:
        """Whether the exchange ended cleanly with the connection still good for another one."""
        return (
            self.complete
            and self._keep_alive
            and not self.closed
            and self._error is None
            and (self.body_task is None or self.body_task.done())
            and self._transport is not None
            and not self._transport.is_closing()
        )

    async def wait_headers(self, timeout_s: float) -> None:
        while not self.headers_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s, "upstream sent no response headers in time")

    async def read_chunk(self, timeout_s: float) -> bytes:
        """Everything buffered so far, waiting up to `timeout_s` for more; b"" at the end."""
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._buffered = 0
                if self._read_paused and self._transport is not None:
                    self._read_paused = False
                    self._transport.resume_reading()
                return data
            if self.complete:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait(timeout_s, "upstream stalled between chunks")

    def fail(self, error: BaseException) -> None:
        """End the exchange with `error` (e.g. the request body could not be sent)."""
        if self._error is None:
            self._error = error
        self._wake()
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.body_task is not None and not self.body_task.done():
            self.body_task.cancel()
        if self._transport is not None:
            self._transport.close()

    async def _wait(self, timeout_s: float, message: str) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout_s, _expire, waiter, message)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but implement it.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small request heads and SSE chunks must not wait for Nagle's timer.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self._active:
            # Bytes on an idle connection: the upstream is out of step with us; never reuse.
            self.close()
            return
        self.received = True
        if not self.headers_done:
            # Only head bytes count toward the limit: body bytes often share the head's read.
            room = _MAX_HEAD_BYTES - self._head_bytes
            if len(data) > room:
                self._head_bytes = _MAX_HEAD_BYTES
                self._feed(data[:room])
                if self.closed:
                    return
                if not self.headers_done:
                    self.fail(UpstreamHeadTooLarge("upstream response head is too large"))
                    return
                data = data[room:]
            else:
                self._head_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._protocol_error("upstream switched protocols")
        except httptools.HttpParserError as exc:
            if self.complete:
                # Garbage after a complete response: the answer stands, the connection goes.
                self._keep_alive = False
                self.close()
            else:
                self._protocol_error(f"malformed upstream response: {exc}")

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._active and not self.complete and self._error is None:
            if self.headers_done and self._until_close:
                self.complete = True
            else:
                self._error = UpstreamDisconnected("upstream closed the connection")
        self._wake()
        self._release_drain()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_drain()

    def _release_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _protocol_error(self, message: str) -> None:
        self.fail(UpstreamProtocolError(message))

    # --- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # A second response to one request: stop parsing before it overwrites the first.
            raise _StrayResponse
        self._reason.clear()
        self.raw_headers.clear()

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a trailer: aiohttp drops them too, and none is a header of the answer
        # llhttp drops the blanks before a value but not those after (RFC 9110 5.5: neither
        # belongs to it).
        value = value.rstrip(b" \t")
        self.raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim response (103 Early Hints): the real one follows.
            self._informational = True
            return
        self.status = status
        self.headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        if self._head_only:
            # httptools cannot be told that a HEAD answer has no body, so the exchange ends
            # here and the next one starts on a fresh parser; the connection stays pooled.
            self.complete = True
            self._parser_spent = True
        elif status not in _NO_BODY_STATUSES:
            names = {name.lower() for name, _ in self.raw_headers}
            self._until_close = "content-length" not in names and not any(
                name.lower() == "transfer-encoding" and "chunked" in value.lower()
                for name, value in self.raw_headers
            )
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            # A body after a HEAD answer: the upstream is out of step with us.
            self._keep_alive = False
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._read_paused and self._transport:
            self._read_paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.complete:
            return
        self.complete = True
        self._wake()


class _StrayResponse(Exception):
    """Raised inside the parser to stop it at bytes that follow a complete response."""


def _expire(waiter: asyncio.Future[None], message: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(message))
