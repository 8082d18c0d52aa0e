"""The user's-path upstream client against real in-process servers: aiohttp apps for well-behaved
upstreams, raw asyncio servers for the ones that break HTTP or close connections on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.errors import (
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamHeadTooLarge,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.proxy.upstream_client import UpstreamClient
from gateway.serving.processes import free_port
from tests.conftest import RigFactory

ClientFactory = Callable[..., Awaitable[UpstreamClient]]
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
RawServer = Callable[[RawHandler], Awaitable["RawUpstream"]]


@dataclass
class RawUpstream:
    """A raw asyncio upstream: where it listens and how many connections it accepted."""

    port: int = 0
    connections: int = 0


class Chunks:
    """A request body handed over piece by piece, like the server's StreamReader."""

    def __init__(self, *parts: bytes) -> None:
        self._parts = list(parts)

    async def readany(self) -> bytes:
        return self._parts.pop(0) if self._parts else b""


def _app(state: dict[str, Any]) -> web.Application:
    def note_peer(request: web.Request) -> None:
        """Which client connection served the request: tells reuse from a fresh connection."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        state.setdefault("peers", []).append(peer)

    async def echo(request: web.Request) -> web.Response:
        note_peer(request)
        body = await request.read()
        info = {
            "method": request.method,
            "body": body.decode(),
            "length": request.headers.get("Content-Length"),
            "te": request.headers.get("Transfer-Encoding"),
            "host": request.headers.get("Host"),
        }
        return web.Response(body=orjson.dumps(info), content_type="application/json")

    async def chunked(request: web.Request) -> web.StreamResponse:
        note_peer(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one ", b"two ", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    async def sse(request: web.Request) -> web.StreamResponse:
        note_peer(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await state["go"].wait()
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        state["active"] = state.get("active", 0) + 1
        state["most"] = max(state.get("most", 0), state["active"])
        try:
            await asyncio.sleep(float(request.query.get("s", "0.1")))
        finally:
            state["active"] -= 1
        return web.Response(text="done")

    async def hang(request: web.Request) -> web.Response:
        state["started"].set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            state["cancelled"].set()
            raise
        return web.Response()

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def head(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 100)

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/sse", sse)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hang", hang)
    app.router.add_get("/204", no_content)
    app.router.add_get("/body", head)  # aiohttp answers HEAD from the GET route
    return app


@pytest.fixture
def state() -> dict[str, Any]:
    return {"go": asyncio.Event(), "started": asyncio.Event(), "cancelled": asyncio.Event()}


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[UpstreamClient] = []

    async def factory(port: int, **overrides: Any) -> UpstreamClient:
        settings: dict[str, Any] = {
            "ssl_context": None,
            "max_connections": 8,
            "keepalive_s": 5.0,
            "connect_timeout_s": 2.0,
            "first_byte_timeout_s": 2.0,
            "read_timeout_s": 2.0,
        }
        settings.update(overrides)
        client = UpstreamClient(host="127.0.0.1", port=port, **settings)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def upstream(state: dict[str, Any]) -> AsyncIterator[TestServer]:
    server = TestServer(_app(state), handler_cancellation=True)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    servers: list[asyncio.Server] = []

    async def start(handler: RawHandler) -> RawUpstream:
        upstream = RawUpstream()

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            upstream.connections += 1
            await handler(reader, writer)

        server = await asyncio.start_server(counted, "127.0.0.1", 0)
        servers.append(server)
        upstream.port = int(server.sockets[0].getsockname()[1])
        return upstream

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _answering(answer: bytes) -> RawHandler:
    """A raw upstream that sends `answer` to the first request and waits for the client to go."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await reader.read()
        writer.close()

    return handler


def _answering_each(answer: bytes) -> RawHandler:
    """A raw upstream that sends `answer` to every request on the connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await _read_request(reader)
                writer.write(answer)
        writer.close()

    return handler


def _json_answer(size: int, *, chunked: bool = False) -> tuple[bytes, bytes]:
    """A JSON body of `size` bytes (an embedding-sized answer) and the whole answer on the wire,
    framed by Content-Length or, in 64 KiB chunks, by chunked coding."""
    filler = size - len(b'{"data":""}')
    body = b'{"data":"' + b"0.0123," * (filler // 7) + b"9" * (filler % 7) + b'"}'
    if not chunked:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        return body, head % len(body) + body
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    framed = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return body, head + framed + b"0\r\n\r\n"


async def _fetch(client: UpstreamClient, path: str = "/", method: str = "GET") -> tuple[int, bytes]:
    """One whole exchange: status and body, the connection handed back."""
    response = await client.request(method, path, [], None)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def test_sequential_requests_reuse_one_pooled_connection(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    for _ in range(3):
        _, body = await _fetch(client, "/echo")
        assert orjson.loads(body)["host"] == f"127.0.0.1:{upstream.port}"
        assert client.in_use() == 0
    assert len(set(state["peers"])) == 1


async def test_pool_limit_queues_requests_past_max_connections(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port, max_connections=2)

    answers = await asyncio.gather(*(_fetch(client, "/slow?s=0.05") for _ in range(6)))
    assert answers == [(200, b"done")] * 6
    assert state["most"] == 2
    assert client.in_use() == 0


@pytest.mark.parametrize(
    ("body", "chunked", "length", "te"),
    [
        (b"whole body", False, "10", None),
        (Chunks(b"streamed ", b"with length"), False, "20", None),
        (Chunks(b"streamed ", b"", b"chunked"), True, None, "chunked"),
    ],
)
async def test_request_bodies_reach_the_upstream_with_their_framing(
    upstream: TestServer,
    make_client: ClientFactory,
    body: Any,
    chunked: bool,
    length: str | None,
    te: str | None,
) -> None:
    client = await make_client(upstream.port)
    headers = [("Content-Length", length)] if length else []
    response = await client.request("POST", "/echo", headers, body, chunked=chunked)
    seen = orjson.loads(await response.read())
    response.release()
    expected = (
        body if isinstance(body, bytes) else b"streamed " + (b"with length" if length else b"")
    )
    assert seen["body"].encode() == expected
    assert (seen["length"], seen["te"]) == (length, te)


async def test_chunked_response_is_read_whole_and_connection_reused(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    assert await _fetch(client, "/chunked") == (200, b"one two three")
    await _fetch(client, "/echo")
    assert len(set(state["peers"])) == 1


async def test_sse_chunk_arrives_before_the_upstream_sends_the_next(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    response = await client.request("GET", "/sse", [], None)
    assert response.content_type == "text/event-stream"
    assert await response.read_chunk() == b"data: first\n\n"
    state["go"].set()
    assert await response.read() == b"data: second\n\n"
    response.release()


async def test_response_delimited_by_close_is_read_to_the_end(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")
        writer.close()

    client = await make_client((await raw_server(handler)).port)
    assert await _fetch(client) == (200, b"part one, part two")
    assert client.in_use() == 0


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/body"), ("GET", "/204")])
async def test_head_and_204_have_no_body(
    upstream: TestServer, make_client: ClientFactory, method: str, path: str
) -> None:
    client = await make_client(upstream.port)
    assert (await _fetch(client, path, method))[1] == b""
    # The next request works whether or not the connection was kept.
    assert (await _fetch(client, "/echo"))[0] == 200


async def test_head_answer_connection_goes_back_to_the_pool(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    for method in ("HEAD", "HEAD", "GET"):
        status, body = await _fetch(client, "/echo", method)
        assert (status, len(body) > 0) == (200, method == "GET")
    assert len(set(state["peers"])) == 1


async def test_head_answer_followed_by_a_body_is_not_pooled(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    # The body a HEAD answer must not have: the connection is out of step with us.
    upstream = await raw_server(
        _answering_each(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    )
    client = await make_client(upstream.port)
    for _ in range(2):
        assert await _fetch(client, method="HEAD") == (200, b"")
    assert upstream.connections == 2


@pytest.mark.parametrize("chunked", [False, True])
async def test_answer_over_64_kib_arriving_with_its_head_is_read_whole(
    raw_server: RawServer, make_client: ClientFactory, chunked: bool
) -> None:
    body, answer = _json_answer(70_000, chunked=chunked)
    upstream = await raw_server(_answering_each(answer))  # head and body in one write
    client = await make_client(upstream.port)
    for _ in range(2):
        assert await _fetch(client) == (200, body)
    assert upstream.connections == 1


async def test_trailers_do_not_become_response_headers(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Padded: value \t\r\n\r\n"
        b"2;ext=1\r\nok\r\n0\r\nServer-Timing: total;dur=5\r\nX-Trailer: late\r\n\r\n"
    )
    client = await make_client((await raw_server(_answering(answer))).port)
    response = await client.request("GET", "/", [], None)
    assert await response.read() == b"ok"
    response.release()
    assert list(response.headers.items()) == [
        ("Transfer-Encoding", "chunked"),
        ("X-Padded", "value"),
    ]


async def test_pooled_connection_closed_by_the_server_is_retried_once(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(OK)
        # Keeps the connection open, then drops the next request unanswered: the race of an
        # upstream closing an idle connection just as the client reuses it.
        with contextlib.suppress(asyncio.IncompleteReadError):
            await _read_request(reader)
        writer.close()

    upstream = await raw_server(handler)
    client = await make_client(upstream.port)
    for _ in range(2):
        assert await _fetch(client) == (200, b"ok")
    assert upstream.connections == 2


async def test_streamed_body_is_not_retried_on_a_dropped_connection(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.close()

    client = await make_client((await raw_server(handler)).port)
    with pytest.raises(UpstreamDisconnected):
        await client.request("POST", "/", [], Chunks(b"once"), chunked=True)
    assert client.in_use() == 0


async def test_refused_connection_is_a_connect_error(make_client: ClientFactory) -> None:
    client = await make_client(free_port())
    with pytest.raises(UpstreamConnectError):
        await client.request("GET", "/", [], None)
    assert client.in_use() == 0


async def test_silent_upstream_times_out_before_first_byte(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port, first_byte_timeout_s=0.1)
    with pytest.raises(UpstreamTimeout):
        await client.request("GET", "/hang", [], None)
    assert client.in_use() == 0
    await asyncio.wait_for(state["cancelled"].wait(), 5)


async def test_stalled_stream_times_out_between_chunks(
    upstream: TestServer, make_client: ClientFactory
) -> None:
    client = await make_client(upstream.port, read_timeout_s=0.1)
    response = await client.request("GET", "/sse", [], None)
    assert await response.read_chunk() == b"data: first\n\n"
    with pytest.raises(UpstreamTimeout):
        await response.read_chunk()
    response.close()
    assert client.in_use() == 0


async def test_cancelled_request_returns_nothing_to_the_pool(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    task = asyncio.create_task(client.request("GET", "/hang", [], None))
    await asyncio.wait_for(state["started"].wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(state["cancelled"].wait(), 5)
    assert client.in_use() == 0


async def test_response_not_read_to_the_end_is_not_pooled(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port)
    response = await client.request("GET", "/sse", [], None)
    await response.read_chunk()
    response.release()  # the body was not read whole: the connection must go
    state["go"].set()
    await _fetch(client, "/echo")
    assert len(set(state["peers"])) == 2  # /echo needed a fresh connection


async def test_idle_connections_expire_after_keepalive(
    upstream: TestServer, make_client: ClientFactory, state: dict[str, Any]
) -> None:
    client = await make_client(upstream.port, keepalive_s=0.05)
    for _ in range(2):
        await _fetch(client, "/echo")
        await asyncio.sleep(0.2)
    assert len(set(state["peers"])) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        # aiohttp's client takes the next three (its parser is lenient); we refuse them on
        # purpose: an answer parsed by guessing is how responses get split.
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n",
    ],
)
async def test_malformed_response_is_a_protocol_error(
    raw_server: RawServer, make_client: ClientFactory, answer: bytes
) -> None:
    client = await make_client((await raw_server(_answering(answer))).port)
    with pytest.raises(UpstreamProtocolError):
        await _fetch(client)  # refused with the head, or once the body is read
    assert client.in_use() == 0


async def test_header_with_a_line_break_is_refused(
    upstream: TestServer, make_client: ClientFactory
) -> None:
    client = await make_client(upstream.port)
    with pytest.raises(UpstreamError, match="line break"):
        await client.request("GET", "/echo", [("X-Evil", "a\r\nInjected: 1")], None)


async def test_malformed_upstream_response_through_the_gateway_is_a_502(
    raw_server: RawServer, make_rig: RigFactory
) -> None:
    upstream = await raw_server(_answering(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n"))
    url = f"http://127.0.0.1:{upstream.port}"
    rig = await make_rig(upstreams={"production": {"url": url}})
    resp = await rig.client.get("/anything")
    assert resp.status == 502
    assert orjson.loads(await resp.read())["error"]["code"] == "upstream_unreachable"
    assert rig.gateway.production.pool_in_use() == 0


async def test_bytes_on_an_idle_connection_retire_it(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    # A stray second answer after the first: the connection is out of step with us.
    stray = OK + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
    upstream = await raw_server(_answering(stray))
    client = await make_client(upstream.port)
    for _ in range(2):
        assert await _fetch(client) == (200, b"ok")
        await asyncio.sleep(0.05)
    assert upstream.connections == 2


async def _endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An upstream whose response head runs to 220 KB, in many writes."""
    await _read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(2000):
        writer.write(b"X-Filler: " + b"y" * 100 + b"\r\n")
        await writer.drain()
    with contextlib.suppress(ConnectionError):
        await reader.read()
    writer.close()


async def test_response_head_over_64_kib_is_refused_as_too_large(
    raw_server: RawServer, make_client: ClientFactory
) -> None:
    client = await make_client((await raw_server(_endless_head)).port)
    with pytest.raises(UpstreamHeadTooLarge):
        await client.request("GET", "/", [], None)
    assert client.in_use() == 0


@pytest.mark.parametrize(
    ("size", "chunked"), [(70_000, False), (1_000_000, False), (5_000_000, True)]
)
async def test_large_answer_passes_through_the_gateway_byte_identical(
    raw_server: RawServer, make_rig: RigFactory, size: int, chunked: bool
) -> None:
    body, answer = _json_answer(size, chunked=chunked)
    upstream = await raw_server(_answering_each(answer))
    rig = await make_rig(upstreams={"production": {"url": f"http://127.0.0.1:{upstream.port}"}})
    for _ in range(2):
        resp = await rig.client.post("/v1/embeddings", json={"input": "x"})
        assert (resp.status, await resp.read()) == (200, body)
    assert upstream.connections == 1


async def test_oversized_upstream_head_is_a_502_counted_as_head_too_large(
    raw_server: RawServer, make_rig: RigFactory
) -> None:
    upstream = await raw_server(_endless_head)
    rig = await make_rig(upstreams={"production": {"url": f"http://127.0.0.1:{upstream.port}"}})
    since = time.time()
    resp = await rig.client.get("/v1/models")
    assert resp.status == 502
    await resp.read()
    labels = {"arm": "production"}
    assert rig.metric("shadowgate_upstream_errors_total", kind="head_too_large", **labels) == 1
    assert rig.metric("shadowgate_upstream_errors_total", kind="connect", **labels) == 0
    await rig.gateway.arm_stats.flush()
    window = await rig.gateway.arm_stats.window(since)
    assert window["production:upstream_error:head_too_large"] == 1
    assert window["production:errors"] == 1


def test_client_runs_on_uvloop() -> None:
    """The gateway runs on uvloop, whose transports are not asyncio.Transport subclasses."""

    async def main() -> tuple[int, bytes]:
        server = await asyncio.start_server(_answering(OK), "127.0.0.1", 0)
        client = UpstreamClient(
            host="127.0.0.1",
            port=server.sockets[0].getsockname()[1],
            ssl_context=None,
            max_connections=1,
            keepalive_s=1,
            connect_timeout_s=1,
            first_byte_timeout_s=1,
            read_timeout_s=1,
        )
        try:
            return await _fetch(client)
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    assert uvloop.run(main()) == (200, b"ok")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command line."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_https_upstream_is_verified_and_pooled(
    tls_files: tuple[Path, Path], state: dict[str, Any], make_client: ClientFactory
) -> None:
    cert, key = tls_files
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = TestServer(_app(state))
    await server.start_server(ssl=server_side)
    try:
        client_side = ssl.create_default_context(cafile=str(cert))
        client = await make_client(server.port, ssl_context=client_side)
        for _ in range(2):
            status, body = await _fetch(client, "/echo")
            assert (status, orjson.loads(body)["host"]) == (200, f"127.0.0.1:{server.port}")
        assert len(set(state["peers"])) == 1
    finally:
        await server.close()
