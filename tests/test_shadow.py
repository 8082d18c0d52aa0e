"""Mirroring: what the candidate sees, what reaches Redis, and that the user never waits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from gateway.records import PairRecord, pairs_from_entries
from gateway.serving.processes import free_port
from tests.conftest import Rig, RigFactory

CHAT = "/v1/chat/completions"
SHADOW_ALL: dict[str, Any] = {"traffic": {"shadow_percent": 100}}


def shadow(**settings: Any) -> dict[str, Any]:
    return {"noise_percent": 0, **settings}


def chat_body(content: str = "Email me at jane.doe@example.com please", **extra: Any) -> bytes:
    return orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": content}], "user": "u1", **extra}
    )


async def read_pairs(rig: Rig, count: int, timeout_s: float = 5.0) -> list[PairRecord]:
    client = aioredis.Redis.from_url(rig.gateway.redis_url)
    key = rig.gateway.config.redis.key_prefix + "pairs"
    try:
        async with asyncio.timeout(timeout_s):
            while (await client.xlen(key)) < count:
                await asyncio.sleep(0.02)
        entries = await client.xrange(key)
    finally:
        await client.aclose()
    return pairs_from_entries(entries)


@pytest.mark.parametrize("stream", [False, True])
async def test_shadowed_request_becomes_a_scrubbed_pair_in_redis(
    make_rig: RigFactory, stream: bool
) -> None:
    rig = await make_rig(**SHADOW_ALL, shadow=shadow())
    resp = await rig.client.post(
        CHAT,
        data=chat_body(stream=stream),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer user-key",
            "Cookie": "session=secret",
            "x-user-id": "u1",
        },
    )
    await resp.read()
    assert resp.status == 200
    (pair,) = await read_pairs(rig, 1)
    assert pair.route == CHAT
    assert pair.production.text is not None
    assert pair.production.text.strip() == "The capital of France is Paris."
    assert pair.candidate.text == pair.production.text
    assert pair.production.streamed is stream
    assert pair.production.finish_reason == "stop"
    assert pair.unit is not None and "u1" not in pair.unit
    assert "jane.doe@example.com" not in orjson.dumps(pair.request).decode()
    assert pair.pii.get("EMAIL") == 1

    mirrored = rig.candidate.seen[-1]
    assert mirrored.headers["x-shadowgate-shadow"] == "1"
    assert mirrored.headers["Authorization"] == "Bearer candidate-key"
    assert "Cookie" not in mirrored.headers
    assert "x-user-id" not in mirrored.headers
    assert b"jane.doe@example.com" not in mirrored.body
    # Production still got the user's own request, byte for byte.
    assert rig.production.seen[-1].body == chat_body(stream=stream)
    assert rig.metric("shadowgate_shadow_total", outcome="sent") == 1


async def send_chat(rig: Rig, body: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    resp = await rig.client.post(
        CHAT, data=body or chat_body(), headers={"Content-Type": "application/json", **headers}
    )
    return resp.status, await resp.read()


async def test_hung_candidate_does_not_delay_user(make_rig: RigFactory) -> None:
    rig = await make_rig(**SHADOW_ALL, shadow=shadow())
    rig.candidate.mode = "hang"
    status, body = await send_chat(rig)
    # The user's answer is complete while the mirror is still waiting on the candidate.
    assert status == 200
    assert orjson.loads(body)["choices"][0]["message"]["content"]
    assert rig.candidate.started.is_set() or not rig.candidate.seen
    assert rig.gateway.dispatcher is not None and rig.gateway.dispatcher.in_flight == 1


async def test_timed_out_candidate_is_counted_and_still_paired(make_rig: RigFactory) -> None:
    rig = await make_rig(**SHADOW_ALL, shadow=shadow(timeout_s=0.2))
    rig.candidate.mode = "hang"
    status, _ = await send_chat(rig)
    assert status == 200
    (pair,) = await read_pairs(rig, 1)
    assert pair.candidate.error == "timeout"
    assert pair.candidate.status is None
    assert rig.metric("shadowgate_shadow_total", outcome="timeout") == 1


@pytest.mark.parametrize(
    ("mode", "outcome", "error_part"),
    [
        ("fail", "failed", None),
        ("garbage", "sent", "not JSON"),
        ("cut", "failed", "ClientPayloadError"),
    ],
)
async def test_broken_candidate_leaves_user_answer_byte_identical(
    make_rig: RigFactory, mode: str, outcome: str, error_part: str | None
) -> None:
    reference = await make_rig()
    _, expected = await send_chat(reference)
    rig = await make_rig(**SHADOW_ALL, shadow=shadow())
    rig.candidate.mode = mode
    status, body = await send_chat(rig)
    assert (status, body) == (200, expected)
    (pair,) = await read_pairs(rig, 1)
    assert rig.metric("shadowgate_shadow_total", outcome=outcome) == 1
    if error_part:
        assert pair.candidate.error is not None and error_part in pair.candidate.error
    else:
        assert pair.candidate.status == 500


async def test_saturated_mirrors_are_dropped_and_counted(make_rig: RigFactory) -> None:
    rig = await make_rig(**SHADOW_ALL, shadow=shadow(max_in_flight=1))
    rig.candidate.mode = "hang"
    for _ in range(3):
        status, _ = await send_chat(rig)
        assert status == 200
    assert rig.metric("shadowgate_shadow_total", outcome="dropped_saturated") == 2
    assert rig.gateway.dispatcher is not None and rig.gateway.dispatcher.in_flight == 1


async def test_refusing_candidate_opens_the_circuit_then_is_probed(
    make_rig: RigFactory,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    rig = await make_rig(
        **SHADOW_ALL,
        upstreams={"candidate": {"url": closed}},
        shadow=shadow(breaker_failures=3, breaker_cooldown_s=0.3),
    )
    dispatcher = rig.gateway.dispatcher
    assert dispatcher is not None

    async def serve_one() -> None:
        assert (await send_chat(rig))[0] == 200
        await rig.wait_for(lambda: dispatcher.in_flight == 0)

    for _ in range(8):
        await serve_one()
    assert rig.metric("shadowgate_shadow_total", outcome="failed") == 3
    assert rig.metric("shadowgate_shadow_total", outcome="dropped_circuit_open") == 5
    assert dispatcher.circuit_open
    await asyncio.sleep(0.35)
    for _ in range(2):
        await serve_one()
    # After the cooldown one probe went out (and failed); the other was dropped again.
    assert rig.metric("shadowgate_shadow_total", outcome="failed") == 4
    assert rig.metric("shadowgate_shadow_total", outcome="dropped_circuit_open") == 6


@pytest.mark.parametrize(
    ("body", "content_type", "counter", "label"),
    [
        (b'{"messages": [', "application/json", "shadowgate_shadow_skipped_total",
         "malformed_json"),
        (b"messages=hi", "application/x-www-form-urlencoded", "shadowgate_shadow_skipped_total",
         "content_type"),
        (b"[1, 2]", "application/json", "shadowgate_shadow_skipped_total", "not_an_object"),
        (b'{"pad": "' + b"x" * 2048 + b'"}', "application/json", "shadowgate_shadow_total",
         "dropped_too_large"),
    ],
)  # fmt: skip
async def test_bad_input_is_proxied_unchanged_and_shadow_skipped(
    make_rig: RigFactory, body: bytes, content_type: str, counter: str, label: str
) -> None:
    rig = await make_rig(**SHADOW_ALL, shadow=shadow(max_body_bytes=1024))
    resp = await rig.client.post(CHAT, data=body, headers={"Content-Type": content_type})
    await resp.read()
    assert rig.production.seen[-1].body == body
    assert not rig.candidate.seen
    key = "reason" if counter.endswith("skipped_total") else "outcome"
    assert rig.metric(counter, **{key: label}) == 1


def shadow_decisions(rig: Rig) -> dict[str, float]:
    """Every counted mirror decision: skip reasons and shadow outcomes, by label."""
    counted = {}
    for family in rig.gateway.metrics.registry.collect():
        for sample in family.samples:
            if sample.name in ("shadowgate_shadow_skipped_total", "shadowgate_shadow_total"):
                label = sample.labels.get("reason") or sample.labels["outcome"]
                if sample.value:
                    counted[label] = sample.value
    return counted


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("GET", CHAT, None, "route"),
        ("POST", "/v1/models", b"{}", "route"),
        ("POST", CHAT, None, "no_body"),
        ("POST", CHAT, b"null", "not_an_object"),
        ("POST", CHAT, b'{"pad": "' + b"x" * 4096 + b'"}', "dropped_too_large"),
    ],
)
async def test_request_of_the_shadow_slice_is_skipped_for_exactly_one_reason(
    make_rig: RigFactory, method: str, path: str, body: bytes | None, reason: str
) -> None:
    rig = await make_rig(
        **SHADOW_ALL, listen={"body_buffer_bytes": 1024}, shadow=shadow(max_body_bytes=1024)
    )
    resp = await rig.client.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    await resp.read()
    assert rig.production.seen[-1].body == (body or b"")
    assert not rig.candidate.seen
    assert shadow_decisions(rig) == {reason: 1}


async def test_noise_sample_goes_to_production_again_scrubbed(make_rig: RigFactory) -> None:
    rig = await make_rig(traffic={"shadow_percent": 100}, shadow={"noise_percent": 100})
    status, _ = await send_chat(rig, Authorization="Bearer user-key")
    assert status == 200
    (pair,) = await read_pairs(rig, 1)
    assert pair.noise is not None and pair.noise.status == 200
    user, noise = sorted(rig.production.seen, key=lambda s: "x-shadowgate-shadow" in s.headers)
    assert noise.headers["x-shadowgate-shadow"] == "1"
    assert b"jane.doe@example.com" in user.body
    assert b"jane.doe@example.com" not in noise.body


async def test_dead_redis_does_not_affect_users_and_drops_are_counted(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    dead = f"unix://{tmp_path}/no-redis.sock"
    rig = await make_rig(redis_at=dead, **SHADOW_ALL, shadow=shadow(), publish={"buffer_size": 2})
    reference = await make_rig()
    _, expected = await send_chat(reference)
    for _ in range(5):
        assert await send_chat(rig) == (200, expected)
    await rig.wait_for(
        lambda: rig.metric("shadowgate_pairs_dropped_total", reason="buffer_full") >= 2
    )
    assert rig.metric("shadowgate_pairs_published_total") == 0
