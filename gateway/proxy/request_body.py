"""Reads a client's request body before an upstream connection is taken, as nginx does.

A body up to the buffer size is read whole first, so a client trickling it holds no pooled
upstream connection while it does. A larger body streams to the upstream as it arrives, but
only while the upstream's count of such streams has room. Every read waits at most
`listen.body_timeout_s` for the client's next bytes.
"""

from __future__ import annotations

import asyncio

from aiohttp import StreamReader

from gateway.errors import ClientBodyTimeout


class StreamSlots:
    """How many requests may stream a large body over one upstream's connections at once."""

    __slots__ = ("in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use -= 1


class StreamedBody:
    """A body larger than the buffer: what was read already, then the rest as it arrives.

    Holds one of an upstream's stream slots from `claim` until the body was read to its end
    or the exchange is over (`close`), whichever comes first.
    """

    __slots__ = ("_content", "_prefix", "_slots", "_timeout_s", "length", "timed_out")

    def __init__(
        self, *, prefix: bytes, content: StreamReader, length: int | None, timeout_s: float
    ) -> None:
        self._prefix = prefix
        self._content = content
        self._timeout_s = timeout_s
        self._slots: StreamSlots | None = None
        self.length = length
        self.timed_out = False

    def claim(self, slots: StreamSlots) -> bool:
        """Take a stream slot of the upstream this body goes to; False when none is free."""
        if not slots.take():
            return False
        self._slots = slots
        return True

    async def readany(self) -> bytes:
        if self._prefix:
            chunk, self._prefix = self._prefix, b""
            return chunk
        chunk = await _read(self._content, self._timeout_s, self)
        if not chunk:
            self.close()
        return chunk

    def close(self) -> None:
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.give_back()


async def read_body(
    content: StreamReader, *, length: int | None, limit: int, timeout_s: float
) -> bytes | StreamedBody:
    """The whole body when it is at most `limit` bytes, else a StreamedBody.

    Raises ClientBodyTimeout when the client is silent for `timeout_s`, and
    asyncio.IncompleteReadError when its body ends before its Content-Length.
    """
    if length is not None and length > limit:
        return StreamedBody(prefix=b"", content=content, length=length, timeout_s=timeout_s)
    if content.is_eof():
        # Everything arrived with the headers (the usual case): nothing to wait for.
        body = await content.read()
    else:
        parts: list[bytes] = []
        size = 0
        while size != length:
            chunk = await _read(content, timeout_s, None)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                prefix = b"".join(parts)
                return StreamedBody(
                    prefix=prefix, content=content, length=None, timeout_s=timeout_s
                )
        body = b"".join(parts)
    if length is not None and len(body) != length:
        raise asyncio.IncompleteReadError(body, length)
    return body


async def _read(content: StreamReader, timeout_s: float, source: StreamedBody | None) -> bytes:
    try:
        async with asyncio.timeout(timeout_s):
            return await content.readany()
    except TimeoutError:
        if source is not None:
            source.timed_out = True
        raise ClientBodyTimeout(
            f"the client sent nothing of its body for {timeout_s:g} s"
        ) from None
