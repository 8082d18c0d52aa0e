"""The scoring worker against the real embedded Redis and the real ONNX model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config import Config, RedisConfig, parse_config
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from scoring.embedder import Embedder
from scoring.worker import ScoringWorker

PREFIX = "shadowgate:"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(parse_config(BASE, env={}).scoring)


BASE: dict[str, Any] = {
    "upstreams": {"production": {"url": "http://127.0.0.1:1"}},
    "scoring": {"batch_size": 8, "max_wait_ms": 20, "claim_idle_ms": 200, "threads": 1},
}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect(RedisConfig(), redis_url)
    yield client
    await client.aclose()


def config() -> Config:
    return parse_config(BASE, env={})


def pair(i: int, candidate_text: str) -> PairRecord:
    return PairRecord(
        id=f"pair-{i}",
        ts=0.0,
        route="/v1/chat/completions",
        production=Exchange(status=200, text="Paris is the capital of France.", latency_ms=90),
        candidate=Exchange(status=200, text=candidate_text, latency_ms=120),
    )


async def publish(redis: Any, records: list[PairRecord]) -> None:
    for record in records:
        await redis.xadd(PREFIX + "pairs", {"data": record.to_json()})


async def scores(redis: Any) -> list[ScoreRecord]:
    entries = await redis.xrange(PREFIX + "scores")
    return [ScoreRecord.model_validate_json(f[b"data"]) for _, f in entries]


async def drain(worker: ScoringWorker, rounds: int = 5) -> None:
    for _ in range(rounds):
        batch = await worker.next_batch(block_ms=50)
        if batch:
            await worker.process(batch)


async def test_pairs_are_scored_and_divergent_ones_queued_for_review(
    redis: Any, embedder: Embedder
) -> None:
    worker = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="w1")
    await worker.ensure_groups()
    await publish(
        redis,
        [
            pair(1, "Paris is the capital of France."),
            pair(2, "The capital city of France is Paris."),
            pair(3, "Our refund policy does not cover damaged items."),
            pair(4, "I'm sorry, but I can't help with that."),
        ],
    )
    await drain(worker)
    by_id = {s.pair_id: s for s in await scores(redis)}
    assert set(by_id) == {"pair-1", "pair-2", "pair-3", "pair-4"}
    assert by_id["pair-1"].semantic == pytest.approx(0.0, abs=1e-4)
    assert not by_id["pair-2"].queued
    assert by_id["pair-3"].queued
    assert "flag:refusal" in by_id["pair-4"].reasons
    review = await redis.xrange(PREFIX + "review")
    items = [ReviewItem.from_json(f[b"data"]) for _, f in review]
    assert {i.pair.id for i in items} == {"pair-3", "pair-4"}
    assert max(items, key=lambda i: i.priority).pair.id == "pair-4"
    assert await redis.xpending(PREFIX + "pairs", "scorers") == {
        "pending": 0, "min": None, "max": None, "consumers": [],
    }  # fmt: skip
    aggregates = await redis.hgetall(PREFIX + "aggregates")
    assert float(aggregates[b"scored"]) == 4
    assert float(aggregates[b"queued"]) == 2


async def test_malformed_records_go_to_the_dead_letter_stream(
    redis: Any, embedder: Embedder
) -> None:
    worker = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="w1")
    await worker.ensure_groups()
    await redis.xadd(PREFIX + "pairs", {"data": b"{not json"})
    await redis.xadd(PREFIX + "pairs", {"other": b"field"})
    await publish(redis, [pair(1, "Paris.")])
    await drain(worker)
    dead = await redis.xrange(PREFIX + "pairs:dead")
    assert len(dead) == 2
    assert all(b"malformed record" in f[b"error"] for _, f in dead)
    assert [s.pair_id for s in await scores(redis)] == ["pair-1"]
    assert (await redis.xpending(PREFIX + "pairs", "scorers"))["pending"] == 0


async def test_killed_worker_entries_are_claimed_by_another_and_scored_once(
    redis: Any, embedder: Embedder
) -> None:
    crashed = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="dead")
    survivor = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="alive")
    await crashed.ensure_groups()
    await publish(redis, [pair(i, f"Answer number {i}.") for i in range(6)])
    # The first worker reads a batch and dies before acknowledging any of it.
    taken = await crashed.next_batch(block_ms=50)
    assert len(taken) == 6
    # A worker whose idle threshold has not passed leaves them alone.
    patient_config = parse_config(
        {**BASE, "scoring": {**BASE["scoring"], "claim_idle_ms": 60_000}}, env={}
    )
    patient = ScoringWorker(
        config=patient_config, redis=redis, embedder=embedder, consumer="patient"
    )
    await drain(patient, rounds=1)
    assert await scores(redis) == []
    await asyncio.sleep(0.3)
    await drain(survivor)
    assert sorted(s.pair_id for s in await scores(redis)) == [f"pair-{i}" for i in range(6)]
    # The stalled worker wakes up and finishes its batch: nothing is written twice.
    await crashed.process(taken)
    assert len(await scores(redis)) == 6
    assert crashed.scored == 0


async def test_a_batch_that_keeps_failing_is_dead_lettered_after_max_attempts(
    redis: Any, embedder: Embedder
) -> None:
    class Broken:
        def embed(self, texts: list[str]) -> Any:
            raise RuntimeError("model exploded")

        def vocabulary(self) -> frozenset[str]:
            return frozenset()

    worker = ScoringWorker(config=config(), redis=redis, embedder=Broken(), consumer="w")  # type: ignore[arg-type]
    await worker.ensure_groups()
    await publish(redis, [pair(1, "x")])
    batch = await worker.next_batch(block_ms=50)
    for _ in range(3):
        await worker.process(batch)
    dead = await redis.xrange(PREFIX + "pairs:dead")
    assert len(dead) == 1
    assert b"failed 3 times: model exploded" in dead[0][1][b"error"]
    assert (await redis.xpending(PREFIX + "pairs", "scorers"))["pending"] == 0


async def test_aggregates_reach_the_gateway_metrics(
    redis: Any, embedder: Embedder, make_rig: Any
) -> None:
    worker = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="w1")
    await worker.ensure_groups()
    same = "Paris is the capital of France."
    await publish(redis, [pair(1, same), pair(2, "I'm sorry, but I can't help with that.")])
    await drain(worker)
    rig = await make_rig(redis={"key_prefix": PREFIX})
    await rig.wait_for(lambda: rig.gateway.scoring.snapshot.get("scored") == 2)
    await rig.wait_for(lambda: rig.gateway.scoring.review_depth == 1)
    text = await (await rig.control.get("/metrics")).text()
    assert 'shadowgate_scored_total{route="/v1/chat/completions"} 2.0' in text
    assert 'shadowgate_flags_total{flag="refusal"} 1.0' in text
    assert "shadowgate_review_queue_depth 1.0" in text
    assert "shadowgate_divergence_excess_bucket" in text


async def test_a_changed_dose_is_queued_with_its_evidence_above_embedding_only_divergence(
    redis: Any, embedder: Embedder
) -> None:
    worker = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="w1")
    await worker.ensure_groups()
    dose = "Adults can take 500 mg to 1 g every 4 to 6 hours, at most 4 g a day."
    records = [
        PairRecord(
            id="dose", ts=0.0, route="/v1/chat/completions",
            production=Exchange(status=200, text=dose),
            candidate=Exchange(status=200, text=dose.replace("500 mg", "5 g")),
        ),
        pair(3, "Our refund policy does not cover damaged items."),
    ]  # fmt: skip
    await publish(redis, records)
    await drain(worker)
    review = await redis.xrange(PREFIX + "review")
    items = {i.pair.id: i for i in (ReviewItem.from_json(f[b"data"]) for _, f in review)}
    assert set(items) == {"dose", "pair-3"}
    evidence = items["dose"].score.evidence
    assert [(e.kind, e.production, e.candidate) for e in evidence] == [("number", "500 mg", "5 g")]
    assert items["dose"].score.reasons == ["evidence:number"]
    assert items["dose"].priority > items["pair-3"].priority


async def test_a_worker_whose_redis_came_back_empty_recreates_its_group_and_scores(
    redis: Any, embedder: Embedder
) -> None:
    worker = ScoringWorker(config=config(), redis=redis, embedder=embedder, consumer="w1")
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await publish(redis, [pair(1, "Paris.")])
        async with asyncio.timeout(10):
            while worker.scored < 1:
                await asyncio.sleep(0.05)
        # Redis restarted with nothing on disk: streams and consumer groups are gone, and
        # the gateway's publisher creates the pairs stream again with its next record.
        await redis.flushall()
        await publish(redis, [pair(2, "Lyon.")])
        async with asyncio.timeout(10):
            while not await scores(redis):
                await asyncio.sleep(0.05)
        assert [s.pair_id for s in await scores(redis)] == ["pair-2"]
    finally:
        stop.set()
        await running
