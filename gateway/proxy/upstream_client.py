"""A small pooled HTTP/1.1 client for the user's path: keep-alive connections to one upstream.

aiohttp's ClientSession was most of the gateway's CPU per request; this client does only
what a reverse proxy needs: headers passed as given, bodies as bytes both ways (no
decompression, no cookies, no redirects), one retry of a request that found its pooled
connection closed, and a connection back in the pool only after its response was read whole.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Final, Protocol

from multidict import CIMultiDict

from gateway.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamTimeout,
)
from gateway.proxy._http1 import Http1Connection

log = logging.getLogger("shadowgate.upstream")

# Failures that mean the request never reached the upstream: safe to send once more.
_RETRYABLE: Final = (UpstreamDisconnected, UpstreamConnectError)


class BodySource(Protocol):
    """A request body read piece by piece (aiohttp's StreamReader is one); b"" at the end."""

    async def readany(self) -> bytes: ...


class UpstreamResponse:
    """Status and headers of an upstream response; its body is read with `read_chunk`/`read`.

    Ends with `release()` (the connection returns to the pool if the body was read whole)
    or `close()` (the connection is closed).
    """

    def __init__(self, client: UpstreamClient, conn: Http1Connection, read_timeout_s: float):
        self._client = client
        self._conn: Http1Connection | None = conn
        self._read_timeout_s = read_timeout_s
        self.status = conn.status
        self.reason = conn.reason
        self.headers: CIMultiDict[str] = CIMultiDict(conn.raw_headers)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type", "")
        return value.split(";", 1)[0].strip().lower()

    async def read_chunk(self) -> bytes:
        """The body received since the last call, as soon as there is some; b"" at the end."""
        if self._conn is None:
            return b""
        return await self._conn.read_chunk(self._read_timeout_s)

    async def read(self) -> bytes:
        parts = []
        while chunk := await self.read_chunk():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client.put_back(conn)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client.discard(conn)


class UpstreamClient:
    """A bounded pool of keep-alive connections to one host, and requests over them."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        keepalive_s: float,
        connect_timeout_s: float,
        first_byte_timeout_s: float,
        read_timeout_s: float,
        pool_timeout_s: float = 5.0,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._limit = max_connections
        self._pool_timeout_s = pool_timeout_s
        self._keepalive_s = keepalive_s
        self._connect_timeout_s = connect_timeout_s
        self._first_byte_timeout_s = first_byte_timeout_s
        self._read_timeout_s = read_timeout_s
        default_port = 443 if ssl_context is not None else 80
        bracketed = f"[{host}]" if ":" in host else host
        self._host_header = bracketed if port == default_port else f"{bracketed}:{port}"
        self._idle: list[Http1Connection] = []
        self._in_use: set[Http1Connection] = set()
        self._opened = 0  # idle + in use + connecting: what the limit bounds
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    def in_use(self) -> int:
        """Connections checked out of the pool (0 when every exchange has ended)."""
        return len(self._in_use)

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | BodySource | None,
        *,
        chunked: bool = False,
    ) -> UpstreamResponse:
        """Send a request and return once the response headers are in.

        `headers` are sent as given (the caller sets Content-Length); `chunked` frames a
        streamed body of unknown length. A request that could not connect, or whose body was
        given as bytes (or none) and whose connection turned out closed, is sent once more.
        """
        head = self._head(method, target, headers, chunked)
        payload = body if isinstance(body, bytes) else None
        streamed = body is not None and payload is None
        for attempt in range(2):
            last = attempt == 1
            try:
                conn = await self._acquire()
            except UpstreamConnectError:
                if last:
                    raise
                continue
            try:
                conn.begin(head_only=method == "HEAD")
                if streamed:
                    assert body is not None and not isinstance(body, bytes)
                    conn.body_task = asyncio.create_task(_send_streamed(conn, head, body, chunked))
                else:
                    # Head and body in one write: one syscall, one packet for small requests.
                    conn.write(head + payload if payload else head)
                await conn.wait_headers(self._first_byte_timeout_s)
            except _RETRYABLE:
                self.discard(conn)
                # A streamed body was partly consumed already: it cannot be sent again.
                if last or streamed or conn.received:
                    raise
                log.debug("upstream %s: retrying after a dropped pooled connection", self._host)
                continue
            except BaseException:
                self.discard(conn)
                raise
            return UpstreamResponse(self, conn, self._read_timeout_s)
        raise AssertionError("unreachable")

    def _head(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], chunked: bool
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        text = "".join(lines)
        # One CR LF per line we wrote, and one more after the request line: anything else
        # means a name or value carried a line break, which would inject a header.
        if text.count("\n") != len(lines) + 1 or text.count("\r") != len(lines) + 1:
            raise UpstreamError("a request header contains a line break")
        return text.encode("utf-8", "surrogateescape")

    # --- the pool ------------------------------------------------------------------------------

    async def _acquire(self) -> Http1Connection:
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if self._closed:
                raise UpstreamDisconnected("upstream client is closed")
            conn = self._take_idle(loop.time())
            if conn is not None:
                self._in_use.add(conn)
                return conn
            if self._opened < self._limit:
                break
            if deadline is None:
                deadline = loop.time() + self._pool_timeout_s
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except (asyncio.CancelledError, TimeoutError) as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were handed a slot we will not use: pass it on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                if isinstance(exc, TimeoutError):
                    raise UpstreamPoolTimeout(
                        f"no free connection to the upstream within {self._pool_timeout_s:g} s"
                    ) from None
                raise
        self._opened += 1
        try:
            conn = await self._connect(loop)
        except BaseException:
            self._opened -= 1
            self._wake_one()
            raise
        self._in_use.add(conn)
        return conn

    def _take_idle(self, now: float) -> Http1Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()  # the most recently used is the least likely to be stale
            if not conn.closed and now - conn.idle_since < self._keepalive_s:
                return conn
            conn.close()
            self._opened -= 1
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Http1Connection:
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: Http1Connection(loop),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout("connecting to the upstream timed out") from None
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to the upstream: {exc}") from exc
        return conn

    def put_back(self, conn: Http1Connection) -> None:
        """Return a connection whose exchange ended; it is pooled only if it is reusable."""
        if not conn.reusable or self._closed:
            self.discard(conn)
            return
        self._in_use.discard(conn)
        conn.park()
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweep is None:
            self._sweep = loop.call_later(self._keepalive_s, self._sweep_idle)
        self._wake_one()

    def discard(self, conn: Http1Connection) -> None:
        """Close a connection whose exchange failed or was not read to its end."""
        conn.close()
        if conn in self._in_use:
            self._in_use.discard(conn)
            self._opened -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep_idle(self) -> None:
        """Close connections idle past `keepalive_s`, before the upstream closes them on us."""
        self._sweep = None
        now = asyncio.get_running_loop().time()
        keep = []
        for conn in self._idle:
            if conn.closed or now - conn.idle_since >= self._keepalive_s:
                conn.close()
                self._opened -= 1
            else:
                keep.append(conn)
        self._idle = keep
        if keep:
            oldest = min(conn.idle_since for conn in keep)
            delay = max(oldest + self._keepalive_s - now, 0.05)
            self._sweep = asyncio.get_running_loop().call_later(delay, self._sweep_idle)

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in [*self._idle, *self._in_use]:
            conn.close()
        self._idle.clear()
        self._in_use.clear()
        self._opened = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the waiter sees the client closed and raises


async def _send_streamed(
    conn: Http1Connection, head: bytes, body: BodySource, chunked: bool
) -> None:
    """Write a request body as it is read, while the caller waits for the response."""
    try:
        conn.write(head)
        while chunk := await body.readany():
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()
        if chunked:
            conn.write(b"0\r\n\r\n")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        conn.fail(
            exc
            if isinstance(exc, UpstreamError)
            else UpstreamDisconnected(f"request body could not be sent: {exc!r}")
        )
