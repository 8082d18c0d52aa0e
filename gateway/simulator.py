"""An OpenAI-compatible simulated model server for the demo, the tests and the benchmarks.

Routes: POST /v1/chat/completions and /v1/completions (streaming and not), GET /v1/models,
GET /healthz, and GET /_sim/stats (requests received, the last ones' headers and bodies).
Answers are built from the prompt, deterministic per (prompt, seed) unless the profile adds
run-to-run variation. Usage counts whitespace-separated words as tokens.

Request headers that force a behaviour, for fault tests:
  x-sim-hang: 1              never answer
  x-sim-fail: 503            answer with that status and an OpenAI-style error
  x-sim-close-mid-stream: 1  close the connection after a few chunks
  x-sim-garbage: 1           answer 200 with a body that is not JSON
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway._sim_text import REFUSAL, answer_text, divergent_text

_HISTORY = 50


class SimProfile(BaseModel):
    """How a simulated model behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model: str
    first_token_ms: float = Field(default=0.0, ge=0)
    tokens_per_s: float = Field(default=0.0, ge=0, description="0: as fast as possible")
    error_rate: float = Field(default=0.0, ge=0, le=1)
    refuse_percent: float = Field(default=0.0, ge=0, le=100)
    truncate_percent: float = Field(default=0.0, ge=0, le=100)
    diverge_topics: list[str] = Field(default_factory=list)
    variation: float = Field(default=0.0, ge=0, le=1)
    seed: int | None = None


PROFILES: dict[str, SimProfile] = {
    "production": SimProfile(
        name="production", model="prod-model", first_token_ms=40, tokens_per_s=400,
        variation=0.1, seed=1,
    ),
    # The known behaviour change the demo should surface: it refuses 5% of requests, answers
    # billing and refund questions differently, and is a little slower.
    "candidate": SimProfile(
        name="candidate", model="cand-model", first_token_ms=60, tokens_per_s=300,
        refuse_percent=5, truncate_percent=2, diverge_topics=["refund", "billing"],
        variation=0.1, seed=2,
    ),
    "fast": SimProfile(name="fast", model="fast-model"),
}  # fmt: skip


@dataclass
class SimState:
    """Per-app state: the profile, its random generator and what was received."""

    profile: SimProfile
    rng: random.Random
    requests: int = 0
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_HISTORY))


STATE = web.AppKey("sim_state", SimState)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _prompt_of(route: str, doc: dict[str, Any]) -> str | None:
    if route == "chat":
        messages = doc.get("messages")
        if not isinstance(messages, list) or not messages:
            return None
        parts = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = doc.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(str(p) for p in prompt)
    return prompt if isinstance(prompt, str) else None


def _seed_for(prompt: str) -> int:
    # Keyed by the prompt alone: two simulated models agree on a prompt unless a profile
    # says otherwise (variation, refusals, divergent topics).
    digest = hashlib.blake2b(prompt.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _compose(state: SimState, prompt: str, doc: dict[str, Any]) -> tuple[str, str]:
    """The answer text and its finish reason for one request."""
    profile = state.profile
    rng = state.rng
    lowered = prompt.lower()
    if profile.refuse_percent and rng.random() * 100 < profile.refuse_percent:
        return REFUSAL, "stop"
    local = random.Random(_seed_for(prompt))
    if any(topic in lowered for topic in profile.diverge_topics):
        text = divergent_text(prompt, local)
    else:
        text = answer_text(prompt, local, variation=profile.variation, noise=rng)
    fmt = doc.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        text = orjson.dumps({"answer": text, "model": profile.model}).decode()
    words = text.split(" ")
    finish = "stop"
    max_tokens = doc.get("max_tokens") or doc.get("max_completion_tokens")
    if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    elif profile.truncate_percent and rng.random() * 100 < profile.truncate_percent:
        words, finish = words[: max(1, len(words) // 3)], "length"
    return " ".join(words), finish


async def _completion(request: web.Request, route: str) -> web.StreamResponse:
    state = request.app[STATE]
    profile = state.profile
    body = await request.read()
    state.requests += 1
    state.history.append(
        {
            "path": request.path,
            "headers": {str(k): v for k, v in request.headers.items()},
            "body": body.decode(errors="replace"),
        }
    )
    if request.headers.get("x-sim-hang"):
        await asyncio.Event().wait()
    if forced := request.headers.get("x-sim-fail"):
        return _error(int(forced), "forced failure", "server_error")
    if request.headers.get("x-sim-garbage"):
        return web.Response(text="<html>upstream exploded</html>", content_type="text/html")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "request body is not valid JSON")
    if not isinstance(doc, dict):
        return _error(400, "request body must be a JSON object")
    prompt = _prompt_of(route, doc)
    if prompt is None:
        field_name = "messages" if route == "chat" else "prompt"
        return _error(400, f"'{field_name}' is required")
    if profile.error_rate and state.rng.random() < profile.error_rate:
        return _error(500, "the model server had an error", "server_error")
    text, finish = _compose(state, prompt, doc)
    usage = {
        "prompt_tokens": len(prompt.split()),
        "completion_tokens": len(text.split()),
        "total_tokens": len(prompt.split()) + len(text.split()),
    }
    created = int(time.time())
    ident = f"{'chatcmpl' if route == 'chat' else 'cmpl'}-{state.requests}"
    if profile.first_token_ms:
        await asyncio.sleep(profile.first_token_ms / 1000)
    if not doc.get("stream"):
        if profile.tokens_per_s:
            await asyncio.sleep(len(text.split()) / profile.tokens_per_s)
        if route == "chat":
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
            }
            kind = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
            kind = "text_completion"
        payload = {"id": ident, "object": kind, "created": created, "model": profile.model,
                   "choices": [choice], "usage": usage}  # fmt: skip
        return web.Response(body=orjson.dumps(payload), content_type="application/json")
    return await _stream(request, route, ident, created, text, finish, usage, doc)


async def _stream(
    request: web.Request,
    route: str,
    ident: str,
    created: int,
    text: str,
    finish: str,
    usage: dict[str, int],
    doc: dict[str, Any],
) -> web.StreamResponse:
    profile = request.app[STATE].profile
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    kind = "chat.completion.chunk" if route == "chat" else "text_completion"
    close_early = bool(request.headers.get("x-sim-close-mid-stream"))
    delay = 1 / profile.tokens_per_s if profile.tokens_per_s else 0.0

    def event(choice: dict[str, Any], **extra: Any) -> bytes:
        chunk = {"id": ident, "object": kind, "created": created, "model": profile.model,
                 "choices": [choice] if choice else [], **extra}  # fmt: skip
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    if route == "chat":
        await response.write(
            event({"index": 0, "delta": {"role": "assistant"}, "finish_reason": None})
        )
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        if route == "chat":
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        else:
            choice = {"index": 0, "text": piece, "finish_reason": None}
        await response.write(event(choice))
        if close_early and i == 2:
            assert request.transport is not None
            request.transport.close()
            return response
        if delay:
            await asyncio.sleep(delay)
    last = (
        {"index": 0, "delta": {}, "finish_reason": finish}
        if route == "chat"
        else {"index": 0, "text": "", "finish_reason": finish}
    )
    await response.write(event(last))
    options = doc.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        await response.write(event({}, usage=usage))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _completion(request, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    return await _completion(request, "completions")


async def models(request: web.Request) -> web.Response:
    model = request.app[STATE].profile.model
    data = {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "shadowgate"}]}
    return web.Response(body=orjson.dumps(data), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = {"profile": state.profile.name, "requests": state.requests, "last": list(state.history)}
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def build_app(profile: SimProfile) -> web.Application:
    """The simulator as an aiohttp app; all state lives in the app."""
    app = web.Application(client_max_size=64 << 20)
    app[STATE] = SimState(profile=profile, rng=random.Random(profile.seed))
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/_sim/stats", stats)
    return app


async def start(
    profile: SimProfile, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start the simulator on `host:port` (0: any free port); returns the runner and the port."""
    runner = web.AppRunner(build_app(profile), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound


async def serve_forever(profile: SimProfile, host: str, port: int) -> None:
    """Run until cancelled (SIGINT/SIGTERM end the process)."""
    runner, _ = await start(profile, host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
