"""An OpenAI-compatible simulated model server for the demo, the tests and the benchmarks: answers
built from the prompt, paced like a real model, with a behaviour profile (errors, refusals,
truncations, topics it answers differently) and a record of what reached it. The `judge`
profile answers the LLM judge's prompts instead (`_judge.py`).

Routes: POST /v1/chat/completions and /v1/completions (streaming and not), GET /v1/models,
GET /healthz, GET /_sim/stats (requests received, the last 50 with headers and bodies) and
DELETE /_sim/stats (forget them). Every route but /healthz and /_sim/* is recorded, so a proxy
test can see exactly what reached the upstream, even on paths the simulator does not serve.

With variation 0 an answer depends only on the prompt (the same prompt gets the same text,
whatever the seed, so two profiles agree unless a behaviour sets them apart). Errors, refusals,
truncations and rewording are drawn per request from the app's generator, seeded by the
profile's seed. Tokens are whitespace-separated words: one per stream chunk, and the unit of
`max_tokens` and of the usage counts.

Request headers that force a behaviour, for fault tests:
  x-sim-hang: 1              never answer (until the client gives up or the server stops)
  x-sim-fail: 503            answer with that status (400-599) and an OpenAI-style error body
  x-sim-close-mid-stream: 1  close the connection after a few chunks (or half the body)
  x-sim-garbage: 1           answer 200 with a body that is not JSON
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field

from gateway.sim._judge import judge_answer
from gateway.sim._text import REFUSAL, answer_text
from gateway.sim._wire import (
    Reply,
    error_response,
    invalid_parameters,
    json_response,
    prompt_texts,
)

log = logging.getLogger("shadowgate.simulator")

_HISTORY: Final = 50
_HISTORY_BODY_BYTES: Final = 1 << 20
_UNRECORDED: Final = ("/healthz", "/_sim/")
_ON: Final = frozenset({"1", "true", "yes"})


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
    judge: bool = Field(
        default=False, description="answer every prompt as the LLM judge (scoring.judge) would"
    )


PROFILES: dict[str, SimProfile] = {
    "production": SimProfile(
        name="production",
        model="prod-model",
        first_token_ms=40,
        tokens_per_s=400,
        variation=0.1,
        seed=1,
    ),
    # The known behaviour change the demo surfaces: refuses 5% of requests, cuts 2% short,
    # answers billing and refund questions with a different (unhelpful) policy, and is slower.
    "candidate": SimProfile(
        name="candidate",
        model="cand-model",
        first_token_ms=60,
        tokens_per_s=300,
        refuse_percent=5,
        truncate_percent=2,
        diverge_topics=["refund", "billing"],
        variation=0.1,
        seed=2,
    ),
    "fast": SimProfile(name="fast", model="fast-model", seed=0),
    # The LLM judge for `scoring.judge`: a deterministic verdict on the two answers it is shown.
    "judge": SimProfile(name="judge", model="judge-model", first_token_ms=5, judge=True, seed=3),
}


@dataclass
class SimState:
    """Per-app state: the profile, its random generator and what was received."""

    profile: SimProfile
    rng: random.Random
    requests: int = 0
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_HISTORY))
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


SIM_STATE: Final = web.AppKey("sim_state", SimState)


def _flag(request: web.Request, name: str) -> bool:
    return request.headers.get(name, "").strip().lower() in _ON


@web.middleware
async def _record_and_fault(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Records the request, applies the forcing headers, and answers HTTP errors the OpenAI way."""
    state = request.app[SIM_STATE]
    if not request.path.startswith(_UNRECORDED):
        body = await request.read()
        state.requests += 1
        state.history.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {str(k): v for k, v in request.headers.items()},
                "body": body[:_HISTORY_BODY_BYTES].decode(errors="replace"),
                "body_bytes": len(body),
            }
        )
        if _flag(request, "x-sim-hang"):
            await state.stopping.wait()
            return error_response(503, "the simulator is shutting down", "server_error")
        if forced := request.headers.get("x-sim-fail"):
            if not (forced.isdigit() and 400 <= int(forced) <= 599):
                return error_response(
                    400, f"x-sim-fail must be a status from 400 to 599, not {forced!r}"
                )
            return error_response(int(forced), "failure forced by x-sim-fail", "server_error")
        if _flag(request, "x-sim-garbage"):
            return web.Response(text="<html>upstream exploded</html>", content_type="text/html")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, f"{request.method} {request.path}: {exc.reason}")


def _compose(state: SimState, texts: list[str], doc: dict[str, Any]) -> tuple[str, str]:
    """The answer text and its finish reason for one request."""
    profile, rng = state.profile, state.rng
    if profile.judge:
        return judge_answer(texts), "stop"
    prompt = "\n".join(texts)
    if profile.refuse_percent and rng.random() * 100 < profile.refuse_percent:
        text = REFUSAL
    else:
        lowered = prompt.lower()
        diverge = any(topic.lower() in lowered for topic in profile.diverge_topics)
        text = answer_text(
            prompt, texts[-1], diverge=diverge, variation=profile.variation, noise=rng
        )
    fmt = doc.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        text = orjson.dumps({"answer": text}).decode()
    words = text.split(" ")
    limit = doc.get("max_tokens") or doc.get("max_completion_tokens")
    if isinstance(limit, int) and limit < len(words):
        return " ".join(words[:limit]), "length"
    if profile.truncate_percent and rng.random() * 100 < profile.truncate_percent:
        return " ".join(words[: max(1, len(words) // 3)]), "length"
    return text, "stop"


async def _completion(request: web.Request, *, chat: bool) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    profile = state.profile
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return error_response(400, "request body is not valid JSON")
    if not isinstance(doc, dict):
        return error_response(400, "request body must be a JSON object")
    texts = prompt_texts(chat, doc)
    if texts is None:
        what = "'messages' (a non-empty list of messages)" if chat else "'prompt'"
        return error_response(400, f"{what} is required")
    if reason := invalid_parameters(doc):
        return error_response(400, reason)
    if profile.error_rate and state.rng.random() < profile.error_rate:
        return error_response(500, "the model server had an error", "server_error")
    text, finish = _compose(state, texts, doc)
    prompt_tokens = sum(len(t.split()) for t in texts)
    completion_tokens = len(text.split())
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    reply = Reply(
        request=request,
        chat=chat,
        ident=f"{'chatcmpl' if chat else 'cmpl'}-{state.requests}",
        created=int(time.time()),
        model=profile.model,
        cut=_flag(request, "x-sim-close-mid-stream"),
    )
    await asyncio.sleep(profile.first_token_ms / 1000)
    if doc.get("stream"):
        options = doc.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await reply.stream(
            text, finish, usage if with_usage else None, tokens_per_s=profile.tokens_per_s
        )
    if profile.tokens_per_s:
        await asyncio.sleep(completion_tokens / profile.tokens_per_s)
    return await reply.whole(text, finish, usage)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    return await _completion(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions (the legacy text completions)."""
    return await _completion(request, chat=False)


async def models(request: web.Request) -> web.Response:
    """GET /v1/models: the one model this server plays."""
    model = {
        "id": request.app[SIM_STATE].profile.model,
        "object": "model",
        "created": 0,
        "owned_by": "shadowgate",
    }
    return json_response({"object": "list", "data": [model]})


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz."""
    return web.Response(text="ok")


async def stats(request: web.Request) -> web.Response:
    """GET /_sim/stats: how many requests arrived and the last ones as received."""
    state = request.app[SIM_STATE]
    return json_response(
        {"profile": state.profile.name, "requests": state.requests, "last": list(state.history)}
    )


async def reset_stats(request: web.Request) -> web.Response:
    """DELETE /_sim/stats: start counting afresh."""
    state = request.app[SIM_STATE]
    state.requests = 0
    state.history.clear()
    return web.Response(status=204)


async def _release_hung(app: web.Application) -> None:
    app[SIM_STATE].stopping.set()


def build_app(profile: SimProfile) -> web.Application:
    """The simulator as an aiohttp app; all its state lives in the app (under `SIM_STATE`)."""
    app = web.Application(middlewares=[_record_and_fault], client_max_size=64 << 20)
    app[SIM_STATE] = SimState(profile=profile, rng=random.Random(profile.seed))
    app.on_shutdown.append(_release_hung)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_delete("/_sim/stats", reset_stats)
    return app


async def start(
    profile: SimProfile, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Serve `profile` on host:port (0: any free port); returns the runner and the bound port."""
    runner = web.AppRunner(build_app(profile), access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = int(runner.addresses[0][1])
    log.info("simulator %r (%s) listening on %s:%d", profile.name, profile.model, host, bound)
    return runner, bound


async def serve_forever(profile: SimProfile, host: str, port: int) -> None:
    """Serve until cancelled (SIGINT/SIGTERM end the process)."""
    runner, _ = await start(profile, host, port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
