"""The aiohttp client session mirrors are sent with: a pool of its own, apart from the user's,
and one mirrored call on it, bounded in time and in the bytes it keeps.

Mirrors are off the user's path, so they keep aiohttp's full client; a separate, smaller
pool means a slow candidate can never take the connections users need.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector
from yarl import URL

from gateway.config import UpstreamConfig
from gateway.constants import SHADOW_FAILED, SHADOW_SENT, SHADOW_TIMEOUT, SHADOW_TRUNCATED
from gateway.proxy.capture import Capture
from gateway.shadow.breaker import CircuitBreaker
from gateway.shadow.mirror import Captured


class MirrorSession:
    """One pooled ClientSession for mirrored requests, opened once for the life of the process."""

    def __init__(self, *, config: UpstreamConfig, max_connections: int):
        self._config = config
        self._limit = max_connections
        self._session: ClientSession | None = None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError("the mirror session is not open")
        return self._session

    async def open(self) -> None:
        config = self._config
        connector = TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=config.keepalive_s,
            enable_cleanup_closed=False,
        )
        self._session = ClientSession(
            connector=connector,
            # Mirrors are bounded by `shadow.timeout_s` as a whole; these bound each step.
            timeout=ClientTimeout(
                total=None,
                connect=None,
                sock_connect=config.connect_timeout_s,
                sock_read=config.first_byte_timeout_s,
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            # A shared jar would carry one user's cookies into another user's requests.
            cookie_jar=DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        url: str,
        method: str,
        body: bytes,
        headers: dict[str, str],
        *,
        timeout_s: float,
        capture_limit: int,
        breaker: CircuitBreaker | None = None,
    ) -> tuple[Captured, str]:
        """One mirrored call, bounded by `timeout_s`; returns the capture and its outcome.

        `breaker` learns whether the upstream answered in full (a timeout tells it nothing:
        `shadow.max_in_flight` bounds a slow candidate).
        """
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        started = time.perf_counter()
        ttfb_ms: float | None = None
        capture = Capture(capture_limit)
        status: int | None = None
        content_type = content_encoding = None
        try:
            async with asyncio.timeout(timeout_s):
                async with self.session.request(
                    method,
                    URL(url, encoded=True),
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as response:
                    ttfb_ms = (time.perf_counter() - started) * 1000
                    status = response.status
                    content_type = response.headers.get("Content-Type")
                    content_encoding = response.headers.get("Content-Encoding")
                    if _useless_past_cap(response, capture_limit):
                        # A JSON document cut at the cap cannot be parsed: not worth a byte.
                        capture.truncated = True
                    else:
                        async for chunk in response.content.iter_any():
                            capture.feed(chunk)
                            if capture.truncated:
                                break
                    if capture.truncated:
                        # The rest would be read only to be thrown away, on the loop the
                        # users share: the connection is closed instead of drained.
                        response.close()
        except TimeoutError as exc:
            _forget_tracebacks(exc)
            return _failed(status, started, ttfb_ms, "timeout"), SHADOW_TIMEOUT
        except (aiohttp.ClientError, OSError) as exc:
            _forget_tracebacks(exc)
            if breaker is not None:
                breaker.record(failed=True)
            error = f"{type(exc).__name__}: {exc}"[:300]
            return _failed(status, started, ttfb_ms, error), SHADOW_FAILED
        if breaker is not None:
            breaker.record(failed=capture.truncated)
        captured = Captured(
            status=status,
            body=bytes(capture.buffer),
            truncated=capture.truncated,
            content_type=content_type,
            content_encoding=content_encoding,
            latency_ms=(time.perf_counter() - started) * 1000,
            ttfb_ms=ttfb_ms,
        )
        if status >= 500:
            return captured, SHADOW_FAILED
        return captured, SHADOW_TRUNCATED if capture.truncated else SHADOW_SENT


def _failed(status: int | None, started: float, ttfb_ms: float | None, error: str) -> Captured:
    latency_ms = (time.perf_counter() - started) * 1000
    return Captured(
        status=status,
        body=b"",
        truncated=False,
        content_type=None,
        content_encoding=None,
        latency_ms=latency_ms,
        ttfb_ms=ttfb_ms,
        error=error,
    )


def _useless_past_cap(response: aiohttp.ClientResponse, limit: int) -> bool:
    """Whether the answer says it is larger than the capture and only its whole is of use:
    any declared length over the cap, except an event stream (its first events are text)."""
    length = response.content_length
    return length is not None and length > limit and response.content_type != "text/event-stream"


def _forget_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of a failed call's exception chain.

    aiohttp keeps the exception on the response's stream, and its traceback holds the frames
    that held that response (ours and the protocol's `connection_lost`): a reference cycle
    per failed mirror, with its socket and capture buffer, left for the full collections
    that paused the loop for tens of milliseconds. Only the message is kept.
    """
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is not None and id(current) not in seen:
            seen.add(id(current))
            current.__traceback__ = None
            pending += (current.__cause__, current.__context__)
