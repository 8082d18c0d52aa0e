"""The small servers the proxy benchmark runs, each in its own process: `floor`, the least an
aiohttp + uvloop proxy can do (what the framework alone costs); `hung`, a candidate that reads
requests and never answers; `flood`, one that answers every request with 20 MiB; `cut`, one
that starts a stream and closes the connection inside it; `paced`, the simulator streaming
tokens at a fixed rate; `otlp`, a trace receiver that counts the spans a traced gateway
exports.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import aiohttp
import uvloop
from aiohttp import web

from gateway.sim.simulator import SimProfile, start

FLOOD_BYTES = 20 << 20
FLOOD_CHUNK = 64 << 10


async def floor_proxy(port: int, upstream: str) -> None:
    """One shared session, headers not filtered; a body of known length is read whole and sent
    in one write (as shadowgate does for small bodies), any other body is streamed."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with session.request(
            request.method, upstream + request.raw_path, data=body, headers=headers
        ) as upstream_response:
            out = {"Content-Type": upstream_response.headers.get("Content-Type", "")}
            if upstream_response.content_length is not None:
                payload = await upstream_response.read()
                return web.Response(status=upstream_response.status, body=payload, headers=out)
            response = web.StreamResponse(status=upstream_response.status, headers=out)
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    try:
        await serve_until_cancelled(app, port)
    finally:
        await session.close()


async def serve_until_cancelled(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def hung_server(port: int) -> None:
    """Reads whatever arrives and never writes a byte back."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Reads one request (head and Content-Length body); False at the end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return True


async def misbehaving_server(port: int, role: str) -> None:
    """`flood`: a chunked JSON answer of 20 MiB to every request, written as fast as the
    reader takes it. `cut`: the head and part of a stream event, then the connection drops."""
    piece = b"%x\r\n%s\r\n" % (FLOOD_CHUNK, b" " * FLOOD_CHUNK)
    stream_head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await _read_request(reader):
                if role == "cut":
                    writer.write(stream_head % b"text/event-stream" + b'40\r\ndata: {"choices"')
                    await writer.drain()
                    break
                writer.write(stream_head % b"application/json")
                for _ in range(FLOOD_BYTES // FLOOD_CHUNK):
                    writer.write(piece)
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def paced_simulator(port: int, tokens_per_s: float) -> None:
    profile = SimProfile(name="paced", model="paced-model", tokens_per_s=tokens_per_s, seed=0)
    runner, _ = await start(profile, "127.0.0.1", port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def otlp_receiver(port: int) -> None:
    """Accepts OTLP/HTTP trace exports and counts their spans (GET /stats)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received = {"exports": 0, "spans": 0}

    async def export(request: web.Request) -> web.Response:
        batch = ExportTraceServiceRequest.FromString(await request.read())
        received["exports"] += 1
        received["spans"] += sum(
            len(scope.spans) for spans in batch.resource_spans for scope in spans.scope_spans
        )
        return web.Response(content_type="application/x-protobuf")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/traces", export)
    app.router.add_get("/stats", stats)
    app.router.add_get("/healthz", stats)
    await serve_until_cancelled(app, port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._peers")
    parser.add_argument("role", choices=["floor", "hung", "flood", "cut", "paced", "otlp"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", default="", help="base URL the floor proxy forwards to")
    parser.add_argument("--tokens-per-s", type=float, default=1000.0, help="paced simulator")
    args = parser.parse_args(argv)
    if args.role == "floor":
        uvloop.run(floor_proxy(args.port, args.upstream))
    elif args.role == "hung":
        uvloop.run(hung_server(args.port))
    elif args.role in ("flood", "cut"):
        uvloop.run(misbehaving_server(args.port, args.role))
    elif args.role == "otlp":
        uvloop.run(otlp_receiver(args.port))
    else:
        uvloop.run(paced_simulator(args.port, args.tokens_per_s))


if __name__ == "__main__":
    main()
