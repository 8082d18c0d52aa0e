"""Small in-process upstreams for proxy tests: each records what reached it."""

from __future__ import annotations

import asyncio
import gzip
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: CIMultiDict[str]
    multi_headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Recorder:
    """What an upstream received and the knobs a test turns."""

    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    answer: str = "The capital of France is Paris."
    mode: str = "normal"
    fail_every: int = 0
    """With `normal`: answer every n-th chat request with a 500 instead."""
    """How /v1/chat/completions behaves: normal, hang, fail, garbage or cut (mid-stream)."""


RECORDER = web.AppKey("recorder", Recorder)


def _chat_json(text: str, model: str = "m") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def build_upstream(recorder: Recorder) -> web.Application:
    """Routes: anything echoes; /v1/chat/completions answers OpenAI-style (streams on request);
    /sse waits for `release` between chunks; /hang never answers; /gzip; /redirect."""

    async def record(request: web.Request) -> bytes:
        body = await request.read()
        recorder.seen.append(
            Seen(
                method=request.method,
                path_qs=request.raw_path,
                headers=CIMultiDict(request.headers),
                multi_headers=list(request.headers.items()),
                body=body,
            )
        )
        return body

    async def echo(request: web.Request) -> web.Response:
        body = await record(request)
        return web.json_response(
            {"method": request.method, "path": request.raw_path, "length": len(body)},
            headers={"X-Upstream": "yes", "Connection": "keep-alive, X-Private", "X-Private": "1"},
        )

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await record(request)
        chats = sum(1 for seen in recorder.seen if seen.path_qs.startswith("/v1/chat"))
        if recorder.mode == "fail" or (recorder.fail_every and chats % recorder.fail_every == 0):
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if recorder.mode == "garbage":
            return web.Response(body=b"<html>not json", content_type="text/html")
        if recorder.mode == "hang":
            recorder.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                recorder.cancelled.set()
                raise
        if recorder.mode == "cut":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"choices": [{"index": 0, "delta": {"content": "Hal')
            assert request.transport is not None
            request.transport.close()
            return response
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return web.json_response({"error": {"message": "bad json"}}, status=400)
        if not doc.get("stream"):
            return web.json_response(_chat_json(recorder.answer))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in recorder.answer.split(" "):
            chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(b"data: " + orjson.dumps(done) + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    async def sse(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(b"data: first\n\n")
            await recorder.release.wait()
            await response.write(b"data: second\n\n")
        except asyncio.CancelledError:
            recorder.cancelled.set()
            raise
        await response.write_eof()
        return response

    async def hang(request: web.Request) -> web.Response:
        await record(request)
        recorder.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            recorder.cancelled.set()
            raise
        raise AssertionError("unreachable")

    async def gzipped(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(
            body=gzip.compress(b'{"compressed": true}'),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def short(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"only ten b")
        assert request.transport is not None
        request.transport.close()
        return response

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/elsewhere")

    app = web.Application(client_max_size=64 << 20)
    app[RECORDER] = recorder
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/sse", sse)
    app.router.add_get("/hang", hang)
    app.router.add_post("/hang", hang)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/short", short)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
