"""Slow and greedy clients: they cannot take the upstream pool, and they are timed out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from gateway.proxy.data_server import DataServer
from tests.conftest import Rig, RigFactory

# Bounds that only a hang reaches: the tests never assert how fast something is.
HANG_S = 10.0


class RawClient:
    """One client connection on a raw socket, so a test can send a request a piece at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, rig: Rig) -> RawClient:
        port = rig.client.server.port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, Any]]:
        """Status and JSON body of a response that arrives within the hang bound."""
        async with asyncio.timeout(HANG_S):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            body = await self.reader.readexactly(int(headers["Content-Length"]))
        return int(lines[0].split()[1]), orjson.loads(body)

    async def closed_by_server(self) -> bool:
        async with asyncio.timeout(HANG_S):
            return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


Connect = Callable[[Rig], Awaitable[RawClient]]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Opens raw client connections to a rig's data plane; all are closed after the test."""
    clients: list[RawClient] = []

    async def factory(rig: Rig) -> RawClient:
        clients.append(await RawClient.open(rig))
        return clients[-1]

    yield factory
    for client in clients:
        client.close()


def head(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/v1/embeddings", 2000),  # a route that is not mirrored
        ("/v1/chat/completions", 2000),  # mirrored, but over shadow.max_body_bytes
    ],
)
async def test_slow_body_clients_do_not_take_the_production_pool(
    make_rig: RigFactory, connect: Connect, path: str, length: int
) -> None:
    rig = await make_rig(
        upstreams={"production": {"max_connections": 8}},
        traffic={"shadow_percent": 100},
        shadow={"max_body_bytes": 1024, "noise_percent": 0},
    )
    slow = [await connect(rig) for _ in range(24)]
    for client in slow:
        await client.send(head(path, length) + b'{"input": "')
    # Every slow request is being handled (and, before buffering, had asked for a connection).
    runner = rig.client.server.runner
    assert runner is not None
    server = runner.server
    assert isinstance(server, DataServer)
    await rig.wait_for(lambda: server.requests_count >= 24)
    await asyncio.sleep(0.2)

    async def user(i: int) -> int:
        resp = await rig.client.post(path, json={"input": f"user {i}"})
        await resp.read()
        return resp.status

    async with asyncio.timeout(HANG_S):
        statuses = await asyncio.gather(*(user(i) for i in range(5)))
    assert statuses == [200] * 5
    # The slow clients are still sending; none reached production or holds a connection to it.
    for client in slow:
        await client.send(b"a")
    assert server.in_flight == 24
    assert rig.gateway.production.pool_in_use() == 0
    assert len(rig.production.seen) == 5


async def test_request_head_trickled_line_by_line_is_answered_408(
    make_rig: RigFactory, connect: Connect
) -> None:
    rig = await make_rig(listen={"header_timeout_s": 0.5})
    client = await connect(rig)
    await client.send(b"POST /v1/chat/completions HTTP/1.1\r\n")

    async def trickle() -> None:
        for i in range(1000):
            await asyncio.sleep(0.1)  # each line well inside any per-read timeout
            await client.send(b"X-Line-%d: 1\r\n" % i)

    task = asyncio.create_task(trickle())
    try:
        status, body = await client.response()
    finally:
        task.cancel()
    assert status == 408
    assert body["error"]["code"] == "client_header_timeout"
    assert await client.closed_by_server()
    assert rig.production.seen == []
    assert rig.metric("shadowgate_client_timeouts_total", phase="header") == 1


@pytest.mark.parametrize(
    ("length", "buffered"),
    [(100, True), (100_000, False)],  # read before forwarding, or streamed to production
)
async def test_request_body_silent_past_body_timeout_is_answered_408(
    make_rig: RigFactory, connect: Connect, length: int, buffered: bool
) -> None:
    rig = await make_rig(listen={"body_timeout_s": 0.3, "body_buffer_bytes": 1024})
    client = await connect(rig)
    await client.send(head("/v1/embeddings", length) + b"x" * 10)
    status, body = await client.response()
    assert status == 408
    assert body["error"]["code"] == "client_body_timeout"
    assert rig.metric("shadowgate_client_timeouts_total", phase="body") == 1
    await rig.wait_for(lambda: rig.gateway.production.pool_in_use() == 0)
    if buffered:
        assert rig.production.seen == []


async def test_idle_keepalive_connection_is_closed(make_rig: RigFactory, connect: Connect) -> None:
    rig = await make_rig(listen={"keepalive_timeout_s": 0.3})
    client = await connect(rig)
    await client.send(head("/v1/embeddings", 2) + b"{}")
    status, _ = await client.response()
    assert status == 200
    assert await client.closed_by_server()


async def test_exhausted_pool_answers_503_after_the_pool_timeout(make_rig: RigFactory) -> None:
    rig = await make_rig(upstreams={"production": {"max_connections": 1, "pool_timeout_s": 0.2}})
    holder = asyncio.create_task(rig.client.get("/hang"))
    await asyncio.wait_for(rig.production.started.wait(), HANG_S)
    async with asyncio.timeout(HANG_S):
        resp = await rig.client.post("/v1/embeddings", json={"input": "x"})
    assert resp.status == 503
    assert orjson.loads(await resp.read())["error"]["code"] == "upstream_pool_exhausted"
    assert rig.metric("shadowgate_upstream_errors_total", arm="production", kind="pool_timeout")
    assert rig.metric("shadowgate_requests_total", arm="production", status="503") == 1
    holder.cancel()


async def test_large_bodies_stream_under_a_bounded_count(
    make_rig: RigFactory, connect: Connect
) -> None:
    rig = await make_rig(
        listen={"body_buffer_bytes": 1024},
        upstreams={"production": {"max_connections": 4, "max_streamed_bodies": 1}},
    )
    big = 100_000
    first = await connect(rig)
    await first.send(head("/v1/files", big, "application/octet-stream") + b"x" * 2048)
    await rig.wait_for(lambda: rig.gateway.production.pool_in_use() == 1)

    resp = await rig.client.post("/v1/files", data=b"y" * big)
    assert resp.status == 503
    assert orjson.loads(await resp.read())["error"]["code"] == "too_many_streamed_bodies"
    assert rig.metric("shadowgate_requests_refused_total", reason="streamed_bodies_full") == 1
    # Bodies under the buffer size are not held back by the streamed ones.
    resp = await rig.client.post("/v1/files", data=b"z" * 512)
    assert resp.status == 200

    await first.send(b"x" * (big - 2048))
    status, body = await first.response()
    assert (status, body["length"]) == (200, big)
    # The slot is free again once the first body was read to its end.
    resp = await rig.client.post("/v1/files", data=b"y" * big)
    assert resp.status == 200
    assert rig.production.seen[-1].body == b"y" * big


@pytest.mark.parametrize("size", [200, 5000])
async def test_chunked_body_reaches_production_byte_for_byte(
    make_rig: RigFactory, size: int
) -> None:
    """Under the buffer a chunked body is read whole and sent with a length; over it, it may
    stream on, chunked."""
    rig = await make_rig(listen={"body_buffer_bytes": 1024})
    payload = bytes(range(256)) * (size // 256) + b"!" * (size % 256)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 100):
            yield payload[start : start + 100]

    resp = await rig.client.post("/v1/files", data=pieces())
    assert resp.status == 200
    seen = rig.production.seen[-1]
    assert seen.body == payload
    if size <= 1024:
        assert seen.headers["Content-Length"] == str(size)
