"""Every pair published ends scored, dead-lettered, waiting, or counted lost under a reason;
past a bound of unscored pairs the gateway sheds mirrors before sending them; and the report
sets mirrors, scores and losses side by side. Against the real embedded Redis (6.2) and the
real ONNX model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gateway.config import Config, PublishConfig, RedisConfig, parse_config
from gateway.errors import ConfigError
from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.records import Exchange, PairRecord
from gateway.redis_client import connect
from gateway.report.build import gather_report
from gateway.report.table import render_text
from gateway.shadow.publish import PairPublisher
from scoring.backlog import Backlog, BacklogMeter
from scoring.embedder import Embedder
from scoring.worker import ScoringWorker
from tests.conftest import Rig, RigFactory

PREFIX = "shadowgate:"
KEYS = Keys.for_prefix(PREFIX)
BASE: dict[str, Any] = {
    "upstreams": {"production": {"url": "http://127.0.0.1:1"}},
    "scoring": {"batch_size": 16, "max_wait_ms": 20, "claim_idle_ms": 200, "threads": 1},
}
# A stream capped near 100 entries: approximate trimming drops whole 100-entry nodes, so it
# trims once it holds more than 200.
CAP = 100


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(parse_config(BASE, env={}).scoring)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect(RedisConfig(), redis_url)
    yield client
    await client.aclose()


def pair(i: int) -> PairRecord:
    return PairRecord(
        id=f"pair-{i}",
        ts=time.time(),
        route="/v1/chat/completions",
        production=Exchange(status=200, text="Paris is the capital of France.", latency_ms=90),
        candidate=Exchange(status=200, text=f"Answer number {i}.", latency_ms=120),
    )


async def publish(publisher: PairPublisher, metrics: Metrics, first: int, count: int) -> None:
    """Submit pairs first..first+count and wait until the publisher wrote them all."""
    for i in range(first, first + count):
        assert publisher.submit(pair(i))
    want = (metrics.registry.get_sample_value("shadowgate_pairs_published_total") or 0) + count
    async with asyncio.timeout(10):
        while metrics.registry.get_sample_value("shadowgate_pairs_published_total") != want:
            await asyncio.sleep(0.02)


@pytest.fixture
async def publisher(redis: Any) -> AsyncIterator[tuple[PairPublisher, Metrics]]:
    metrics = Metrics()
    config = PublishConfig(buffer_size=1000, stream_maxlen=CAP)
    publisher = PairPublisher(
        redis=redis,
        stream_key=PREFIX + "pairs",
        published_key=PREFIX + "pairs:published",
        config=config,
        metrics=metrics,
    )
    publisher.start()
    yield publisher, metrics
    await publisher.close()


def worker(
    redis: Any, embedder: Embedder, name: str, config: Config | None = None
) -> ScoringWorker:
    config = config or parse_config(BASE, env={})
    return ScoringWorker(config=config, redis=redis, embedder=embedder, consumer=name)


async def drain(worker: ScoringWorker) -> None:
    """Score until a read finds nothing."""
    await worker.ensure_groups()
    while batch := await worker.next_batch(block_ms=50):
        await worker.process(batch)


def accounted(backlog: Backlog) -> int:
    return backlog.scored + backlog.dead_lettered + backlog.waiting + sum(backlog.lost.values())


async def test_pairs_trimmed_before_any_worker_read_them_are_counted_lost(
    redis: Any, embedder: Embedder, publisher: tuple[PairPublisher, Metrics]
) -> None:
    meter = BacklogMeter(redis=redis, keys=KEYS)
    scorer = worker(redis, embedder, "w1")
    await scorer.ensure_groups()
    await publish(*publisher, 0, 40)
    await drain(scorer)
    # The worker pauses; the gateway goes on publishing past the stream's cap.
    await publish(*publisher, 40, 300)
    length = await redis.xlen(PREFIX + "pairs")
    backlog = await meter.measure()
    assert backlog.published == 340
    assert backlog.scored == 40
    assert backlog.waiting == backlog.undelivered == length
    assert backlog.lost["trimmed_unscored"] == 340 - 40 - length > 0
    assert backlog.lost["trimmed_pending"] == 0
    assert backlog.oldest_age_s is not None
    assert accounted(backlog) == backlog.published
    # Measuring again (any gateway, the report) does not count the same pairs twice.
    assert (await meter.measure()).lost == backlog.lost
    # The worker comes back and scores what is left: nothing more is lost.
    await drain(scorer)
    after = await meter.measure()
    assert (after.scored, after.waiting, after.lost) == (40 + length, 0, backlog.lost)
    assert after.oldest_age_s is None
    assert accounted(after) == after.published


async def test_pairs_trimmed_while_pending_are_acknowledged_and_counted_lost(
    redis: Any, embedder: Embedder, publisher: tuple[PairPublisher, Metrics]
) -> None:
    crashed, survivor = worker(redis, embedder, "dead"), worker(redis, embedder, "alive")
    await crashed.ensure_groups()
    await publish(*publisher, 0, 16)
    taken = await crashed.next_batch(block_ms=50)
    assert len(taken) == 16  # read, never acknowledged: the worker died
    await publish(*publisher, 16, 300)
    first = (await redis.xrange(PREFIX + "pairs", count=1))[0][0].decode()
    assert all(entry_id < first for entry_id, _ in taken)  # trimmed while pending
    await asyncio.sleep(0.3)  # past scoring.claim_idle_ms
    await drain(survivor)
    assert survivor.lost == 16
    assert (await redis.xpending(PREFIX + "pairs", "scorers"))["pending"] == 0
    backlog = await BacklogMeter(redis=redis, keys=KEYS).measure()
    assert backlog.lost["trimmed_pending"] == 16
    assert backlog.waiting == 0
    assert backlog.scored == await redis.xlen(PREFIX + "scores")
    assert accounted(backlog) == backlog.published == 316
    # The stalled worker wakes up: its entries were written off, so it writes nothing.
    await crashed.process(taken)
    assert crashed.scored == 0
    assert (await BacklogMeter(redis=redis, keys=KEYS).measure()).lost == backlog.lost


SHEDDING: dict[str, Any] = {
    "traffic": {"shadow_percent": 100},
    "shadow": {"noise_percent": 0, "max_backlog": 2},
    "publish": {"stream_maxlen": CAP},
    "redis": {"scoring_poll_s": 0.05},
}


async def chat(rig: Rig, n: int) -> None:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]})
    for _ in range(n):
        resp = await rig.client.post(
            "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        await resp.read()
        assert resp.status == 200


async def test_mirrors_are_shed_while_the_backlog_is_past_its_bound(
    make_rig: RigFactory, redis: Any, embedder: Embedder
) -> None:
    rig = await make_rig(**SHEDDING)
    dispatcher = rig.gateway.dispatcher
    assert dispatcher is not None
    await chat(rig, 2)
    await rig.wait_for(lambda: dispatcher.backlog == 2)
    await chat(rig, 5)
    # Shed before sending: the candidate never saw them, the user was served all the same.
    assert len(rig.candidate.seen) == 2
    assert len(rig.production.seen) == 7
    assert rig.metric("shadowgate_shadow_total", outcome="dropped_backlog") == 5
    assert rig.metric("shadowgate_shadow_total", outcome="sent") == 2
    # A worker catches up: mirroring resumes.
    await drain(worker(redis, embedder, "w1", rig.gateway.config))
    await rig.wait_for(lambda: dispatcher.backlog == 0)
    await chat(rig, 1)
    await rig.wait_for(lambda: rig.metric("shadowgate_shadow_total", outcome="sent") == 3)
    assert len(rig.candidate.seen) == 3


async def test_backlog_and_losses_reach_the_gateway_metrics_and_the_report(
    make_rig: RigFactory, redis: Any, embedder: Embedder
) -> None:
    rig = await make_rig(**SHEDDING)
    gateway = rig.gateway
    await chat(rig, 2)
    await rig.wait_for(lambda: rig.metric("shadowgate_pairs_published_total") == 2)
    await drain(worker(redis, embedder, "w1", gateway.config))
    # Then the workers stop, and more pairs arrive than the stream holds.
    for i in range(250):
        gateway.publisher.submit(pair(i))
    await rig.wait_for(lambda: rig.metric("shadowgate_pairs_published_total") == 252)
    await rig.wait_for(lambda: rig.metric("shadowgate_scoring_backlog") >= 100)
    await chat(rig, 3)
    length = await redis.xlen(gateway.config.redis.key_prefix + "pairs")
    lost = 252 - 2 - length
    await rig.wait_for(
        lambda: rig.metric("shadowgate_pairs_lost_total", reason="trimmed_unscored") == lost
    )
    text = await (await rig.control.get("/metrics")).text()
    assert f"shadowgate_scoring_backlog {float(length)}" in text
    assert 'shadowgate_pairs_lost_total{reason="trimmed_pending"} 0.0' in text
    assert rig.metric("shadowgate_scoring_backlog_oldest_age_seconds") > 0
    assert 'shadowgate_shadow_total{outcome="dropped_backlog"} 3.0' in text

    gateway.ledger.copy()
    await gateway.arm_stats.flush()
    now = time.time()
    report = await gather_report(redis, config=gateway.config, since=now - 60, until=now)
    account = report.pairs
    assert account.mirrors == {"dropped_backlog": 3, "sent": 2}
    assert (account.mirrored, account.published, account.dead_lettered) == (2, 252, 0)
    assert account.lost == {"trimmed_unscored": lost}
    assert (account.waiting, report.divergence.scored) == (length, 2)
    text = render_text(report)
    assert f"pairs lost unscored in the window: {lost} (trimmed_unscored {lost})" in text
    header, row = text.split("mirrors and pairs: sent, scored, lost\n", 1)[1].splitlines()[:2]
    assert header.split() == [
        "mirrored", "shed", "published", "dropped", "scored", "dead-lettered", "lost",
        "waiting", "now",
    ]  # fmt: skip
    assert row.split() == ["pairs", "2", "3", "252", "0", "2", "0", str(lost), str(length)]


def test_a_backlog_bound_at_or_above_the_stream_cap_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"shadow\.max_backlog: must be below"):
        parse_config(
            {**BASE, "shadow": {"max_backlog": 100}, "publish": {"stream_maxlen": 100}}, env={}
        )
