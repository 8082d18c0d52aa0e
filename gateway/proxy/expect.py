"""The `Expect: 100-continue` handshake, answered before the body is read."""

from __future__ import annotations

from aiohttp import HttpVersion11, web


async def answer_expect(request: web.BaseRequest, expect: str) -> None:
    """Answer `Expect` as aiohttp's router did when the data plane was an Application: a
    client waiting for `100 Continue` holds its body back until it gives up (curl: 1 s)."""
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    # The interim answer is no part of the response that follows, nor of its logged size.
    request.writer.output_size = 0
    await request.writer.drain()
