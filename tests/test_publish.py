"""The publisher: bounded, never blocking, and it catches up when Redis comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis
from redis.asyncio import ConnectionPool

from gateway.config import PublishConfig, RedisConfig
from gateway.metrics import Metrics
from gateway.records import Exchange, PairRecord
from gateway.redis_client import connect
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.shadow.publish import PairPublisher
from tests.stall_proxy import StallProxy


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


PUBLISHED = "shadowgate_pairs_published_total"


def dropped(metrics: Metrics, reason: str) -> float:
    return (
        metrics.registry.get_sample_value("shadowgate_pairs_dropped_total", {"reason": reason})
        or 0.0
    )


def started(
    client: aioredis.Redis, metrics: Metrics, stream: str, config: PublishConfig
) -> PairPublisher:
    publisher = PairPublisher(
        redis=client, stream_key=stream, published_key="t:pub", config=config, metrics=metrics
    )
    publisher.start()
    return publisher


async def test_close_cut_mid_write_returns_and_keeps_no_connection(
    stall_proxy: StallProxy,
) -> None:
    metrics = Metrics()
    # A long socket timeout: only the shutdown can end the stalled write.
    client = connect(RedisConfig(socket_timeout_s=30), stall_proxy.url)
    publisher = started(client, metrics, "t:stall", PublishConfig(batch_size=10))
    assert publisher.submit(record(0))
    await wait_until(lambda: metrics.registry.get_sample_value(PUBLISHED) == 1)
    # Connected: the next batch is cut on the wire, not while connecting.
    stall_proxy.hold()
    for i in range(1, 26):
        assert publisher.submit(record(i))
    await wait_until(lambda: publisher._writing)
    async with asyncio.timeout(2 * 0.2 + 5):  # twice the drain time, and a generous margin
        await publisher.close(drain_timeout_s=0.2)
    pool = client.connection_pool
    assert isinstance(pool, ConnectionPool)
    in_use = len(pool._in_use_connections)
    await client.aclose()
    assert in_use == 0
    assert dropped(metrics, "shutdown") == 15
    assert dropped(metrics, "shutdown_unconfirmed") == 10
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "pair-publisher"]


async def test_batch_sent_before_a_timeout_is_not_counted_surely_lost(
    stall_proxy: StallProxy, redis_url: str
) -> None:
    metrics = Metrics()
    client = connect(RedisConfig(socket_timeout_s=0.3), stall_proxy.url)
    publisher = started(client, metrics, "t:late", PublishConfig(batch_size=10, max_backoff_s=5.0))
    # The batch itself is held on the wire; the client times out waiting for its replies.
    stall_proxy.hold(b"EVALSHA")
    for i in range(5):
        assert publisher.submit(record(i))
    await wait_until(lambda: not publisher.up and not publisher._writing)
    await publisher.close(drain_timeout_s=0)
    await client.aclose()
    stall_proxy.release()
    reader = aioredis.Redis.from_url(redis_url)
    async with asyncio.timeout(10):
        while not await reader.xlen("t:late"):
            await asyncio.sleep(0.02)
    await reader.aclose()
    # The records reached the stream after all: they were never surely lost.
    assert dropped(metrics, "shutdown") == 0
    assert dropped(metrics, "shutdown_unconfirmed") == 5
