"""The publisher: bounded, never blocking, and it catches up when Redis comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from gateway.config import PublishConfig, RedisConfig
from gateway.metrics import Metrics
from gateway.records import Exchange, PairRecord
from gateway.redis_client import connect
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.shadow.publish import PairPublisher


def record(i: int) -> PairRecord:
    return PairRecord(
        id=f"p{i}",
        ts=0.0,
        route="/v1/chat/completions",
        production=Exchange(),
        candidate=Exchange(),
    )


async def wait_until(predicate: object, timeout_s: float = 10.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_publisher_reconnects_when_redis_comes_back(tmp_path: Path) -> None:
    server = EmbeddedRedis(state_dir=tmp_path, persist=False)
    metrics = Metrics()
    client = connect(RedisConfig(), server.url)
    publisher = PairPublisher(
        redis=client,
        stream_key="t:pairs",
        published_key="t:published",
        config=PublishConfig(buffer_size=10, max_backoff_s=0.2),
        metrics=metrics,
    )
    publisher.start()
    try:
        accepted = [publisher.submit(record(i)) for i in range(15)]
        # One record is in hand, retrying; the buffer holds ten; the rest are dropped.
        assert accepted.count(False) >= 4
        dropped = metrics.registry.get_sample_value(
            "shadowgate_pairs_dropped_total", {"reason": "buffer_full"}
        )
        assert dropped == accepted.count(False)
        await asyncio.to_thread(server.start)
        published = accepted.count(True)
        await wait_until(
            lambda: (
                metrics.registry.get_sample_value("shadowgate_pairs_published_total") == published
            )
        )
        reader = aioredis.Redis.from_url(server.url)
        assert await reader.xlen("t:pairs") == published
        await reader.aclose()
    finally:
        await publisher.close()
        await client.aclose()
        await asyncio.to_thread(server.stop)


async def test_stream_is_capped_near_maxlen(redis_url: str) -> None:
    metrics = Metrics()
    client = connect(RedisConfig(), redis_url)
    publisher = PairPublisher(
        redis=client,
        stream_key="t:capped",
        published_key="t:published",
        config=PublishConfig(buffer_size=5000, stream_maxlen=100, batch_size=50),
        metrics=metrics,
    )
    publisher.start()
    for i in range(1000):
        assert publisher.submit(record(i))
    await wait_until(
        lambda: metrics.registry.get_sample_value("shadowgate_pairs_published_total") == 1000
    )
    await publisher.close()
    length = await client.xlen("t:capped")
    await client.aclose()
    # Approximate trimming removes whole macro-nodes: the length stays within one node.
    assert 100 <= length < 300


async def test_records_written_at_shutdown_are_not_counted_dropped(redis_url: str) -> None:
    metrics = Metrics()
    client = connect(RedisConfig(), redis_url)
    publisher = PairPublisher(
        redis=client,
        stream_key="t:close",
        published_key="t:published",
        config=PublishConfig(batch_size=20),
        metrics=metrics,
    )
    publisher.start()
    for i in range(50):
        assert publisher.submit(record(i))
    await publisher.close(drain_timeout_s=5.0)
    written = await client.xlen("t:close")
    await client.aclose()
    assert written == 50
    assert metrics.registry.get_sample_value("shadowgate_pairs_published_total") == 50
    assert (
        metrics.registry.get_sample_value("shadowgate_pairs_dropped_total", {"reason": "shutdown"})
        is None
    )


async def test_records_left_unwritten_at_shutdown_are_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    client = connect(RedisConfig(), f"unix://{tmp_path}/nothing-here.sock")
    publisher = PairPublisher(
        redis=client,
        stream_key="t:close",
        published_key="t:published",
        config=PublishConfig(),
        metrics=metrics,
    )
    publisher.start()
    for i in range(10):
        assert publisher.submit(record(i))
    await publisher.close(drain_timeout_s=0.2)
    # A record that comes after the publisher stopped is refused and counted, not queued.
    assert not publisher.submit(record(10))
    await client.aclose()
    dropped = metrics.registry.get_sample_value(
        "shadowgate_pairs_dropped_total", {"reason": "shutdown"}
    )
    assert dropped == 11
    assert metrics.registry.get_sample_value("shadowgate_pairs_published_total") == 0
