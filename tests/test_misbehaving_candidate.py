"""A candidate that floods or breaks its answers costs the gateway a bounded read and nothing it
has to collect later: mirrors stop at the capture cap, and failed ones leave no cycles."""

from __future__ import annotations

import asyncio
import gc
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import uvloop

from gateway.config import parse_config
from gateway.metrics import Metrics
from gateway.proxy.arms import ArmAssigner
from gateway.proxy.model_names import ModelNames
from gateway.proxy.upstream import Upstream
from gateway.redis_client import connect
from gateway.scrub.scrubber import Scrubber
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.shadow.dispatcher import ShadowDispatcher
from gateway.shadow.mirror import MirrorRequest
from gateway.shadow.mirror_session import MirrorSession
from gateway.shadow.publish import PairPublisher
from tests.conftest import RigFactory
from tests.raw_upstream import Answer, RawUpstream, answer_chat
from tests.test_shadow import chat_body, read_pairs, send_chat

MIB = 1 << 20


class Flood:
    """Answers 200 with a `total`-byte JSON body, chunked or of declared length, written
    until done or cut off; `written` holds, per answer, how many body bytes it got to write."""

    def __init__(self, total: int = 20 * MIB, *, chunked: bool = True) -> None:
        self.total = total
        self.chunked = chunked
        self.chunk = 64 * 1024
        data = b"x" * self.chunk
        self.piece = b"%x\r\n%s\r\n" % (self.chunk, data) if chunked else data
        self.written: list[int] = []

    async def __call__(self, writer: asyncio.StreamWriter) -> None:
        framing = (
            b"Transfer-Encoding: chunked" if self.chunked else b"Content-Length: %d" % (self.total)
        )
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s\r\n\r\n" % framing)
        written = 0
        try:
            while written < self.total:
                writer.write(self.piece)
                await writer.drain()
                written += self.chunk
            if self.chunked:
                writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.written.append(written)


async def cut_mid_stream(writer: asyncio.StreamWriter) -> None:
    """Starts a streamed answer, then drops the connection inside a chunk."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n40\r\ndata: {"choices": [{"delta": '
    )
    await writer.drain()
    writer.transport.abort()


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content_length"])
async def test_flooding_candidate_is_read_to_the_cap_and_cut_off(
    make_rig: RigFactory, chunked: bool
) -> None:
    flood = Flood(chunked=chunked)
    candidate = await RawUpstream(flood).start()
    try:
        rig = await make_rig(
            traffic={"shadow_percent": 100},
            shadow={"noise_percent": 0},
            capture={"max_bytes": 256 * 1024},
            upstreams={"candidate": {"url": candidate.url}},
        )
        reference = await make_rig()
        expected = await send_chat(reference)
        assert await send_chat(rig) == expected
        (pair,) = await read_pairs(rig, 1)
        await rig.wait_for(lambda: len(flood.written) == 1)
    finally:
        await candidate.close()
    assert pair.candidate.truncated
    assert rig.metric("shadowgate_shadow_total", outcome="truncated") == 1
    assert rig.metric("shadowgate_shadow_total", outcome="sent") == 0
    # What it wrote beyond the cap sat in socket buffers; it never got to write the rest.
    assert flood.written[0] < flood.total / 2


@pytest.mark.parametrize("kind", ["floods", "closes_mid_stream"])
async def test_candidate_that_keeps_misbehaving_opens_the_circuit(
    make_rig: RigFactory, kind: str
) -> None:
    candidate = await RawUpstream(Flood() if kind == "floods" else cut_mid_stream).start()
    try:
        rig = await make_rig(
            traffic={"shadow_percent": 100},
            shadow={"noise_percent": 0, "breaker_failures": 3, "breaker_cooldown_s": 60},
            upstreams={"candidate": {"url": candidate.url}},
        )
        dispatcher = rig.gateway.dispatcher
        assert dispatcher is not None
        for _ in range(5):
            assert (await send_chat(rig))[0] == 200
            await rig.wait_for(lambda: dispatcher.in_flight == 0)
    finally:
        await candidate.close()
    outcome = "truncated" if kind == "floods" else "failed"
    assert rig.metric("shadowgate_shadow_total", outcome=outcome) == 3
    assert rig.metric("shadowgate_shadow_total", outcome="dropped_circuit_open") == 2
    assert len(candidate.requests) == 3


def _mirror_request() -> MirrorRequest:
    return MirrorRequest(
        route="/v1/chat/completions",
        path_qs="/v1/chat/completions",
        method="POST",
        document=orjson.loads(chat_body()),
        headers={"Content-Type": "application/json"},
        unit=None,
        noise=False,
        production_authorization=None,
    )


async def _garbage_of_mirrors(
    redis_url: str, answer: Answer, count: int, **shadow: Any
) -> tuple[Counter[str], float]:
    """Runs `count` mirrors against a candidate answering with `answer`, one after another,
    and returns the types of the cyclic garbage they left and how many ended (with any
    outcome). The dispatcher runs alone: the gateway's other tasks make garbage of their own."""
    candidate_server = await RawUpstream(answer).start()
    config = parse_config(
        {
            "upstreams": {
                "production": {"url": "http://127.0.0.1:9"},
                "candidate": {"url": candidate_server.url},
            },
            "shadow": {"noise_percent": 0, **shadow},
            "capture": {"max_bytes": 64 * 1024},
        },
        env={},
    )
    assert config.upstreams.candidate is not None
    metrics = Metrics()
    redis = connect(config.redis, redis_url)
    stream = f"gc-{os.urandom(4).hex()}"
    publisher = PairPublisher(
        redis=redis,
        stream_key=stream,
        published_key=f"{stream}:published",
        config=config.publish,
        metrics=metrics,
    )
    session = MirrorSession(config=config.upstreams.candidate, max_connections=4)
    dispatcher = ShadowDispatcher(
        config=config.shadow,
        capture=config.capture,
        candidate=Upstream(name="candidate", config=config.upstreams.candidate),
        production=Upstream(name="production", config=config.upstreams.production),
        assigner=ArmAssigner(unit_key=config.traffic.unit_key, salt=config.traffic.salt),
        models=ModelNames.for_candidate(config.upstreams.candidate),
        session=session,
        scrubber=Scrubber(config.scrub),
        publisher=publisher,
        metrics=metrics,
    )
    production = {"Content-Type": "application/json"}
    mirrored = 0

    def published() -> float:
        return metrics.registry.get_sample_value("shadowgate_pairs_published_total") or 0.0

    async def one() -> None:
        nonlocal mirrored
        job = dispatcher.start(_mirror_request())
        assert job is not None
        job.capture.feed(b"{}")
        job.finish(status=200, error=None, headers=production, latency_ms=1.0, ttfb_ms=1.0)
        mirrored += 1
        # Published: the mirror is over, and the publisher is idle again.
        while published() < mirrored or dispatcher.in_flight:
            await asyncio.sleep(0.002)

    await session.open()
    publisher.start()
    try:
        for _ in range(3):  # pools, imports and caches settle first
            await one()
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(count):
                await one()
            gc.collect()
            garbage = Counter(type(item).__name__ for item in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    finally:
        await publisher.close()
        await session.close()
        await redis.aclose()
        await candidate_server.close()
    ended = sum(
        metrics.registry.get_sample_value("shadowgate_shadow_total", {"outcome": outcome}) or 0.0
        for outcome in ("failed", "timeout", "truncated", "sent")
    )
    return garbage, ended


async def hang(writer: asyncio.StreamWriter) -> None:
    """Never answers; returns when the client gives up and closes the connection."""
    while not writer.transport.is_closing():
        await asyncio.sleep(0.01)


ANSWERS: dict[str, tuple[Callable[[], Answer], dict[str, Any]]] = {
    "closes_mid_stream": (lambda: cut_mid_stream, {}),
    "floods": (lambda: Flood(total=4 * MIB), {}),
    "times_out": (lambda: hang, {"timeout_s": 0.05}),
    "healthy": (lambda: answer_chat, {}),
}


@pytest.mark.parametrize("kind", ANSWERS)
def test_failed_mirrors_leave_no_cycle_garbage(redis_server: EmbeddedRedis, kind: str) -> None:
    """On uvloop, as the gateway runs: a garbage cycle per mirror is what the full collections
    that paused the user's requests were made of."""
    answer, settings = ANSWERS[kind]
    count = 20
    garbage, ended = uvloop.run(_garbage_of_mirrors(redis_server.url, answer(), count, **settings))
    assert ended == count + 3
    assert not garbage, f"cyclic garbage after {count} mirrors: {garbage.most_common(12)}"
