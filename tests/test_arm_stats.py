"""Per-arm outcomes reach Redis from every replica and add up for the rollout judge."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import ConnectionPool

from gateway.config import RedisConfig
from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.proxy.arm_stats import ArmStats, latency_bucket, quantile_bound, slow_count
from gateway.redis_client import connect
from tests.conftest import RigFactory
from tests.stall_proxy import StallProxy


async def test_replicas_add_their_arm_counts_into_one_window(make_rig: RigFactory) -> None:
    one = await make_rig(traffic={"canary_percent": 100})
    two = await make_rig(
        traffic={"canary_percent": 100}, redis={"key_prefix": one.gateway.config.redis.key_prefix}
    )
    since = time.time()
    for rig, n in ((one, 3), (two, 2)):
        for _ in range(n):
            await (await rig.client.get("/echo", headers={"x-user-id": "u"})).read()
        await rig.gateway.arm_stats.flush()
    await (await one.client.get("/hang-up-unknown")).read()
    await one.gateway.arm_stats.flush()
    window = await two.gateway.arm_stats.window(since)
    assert window["canary:requests"] == 6
    assert window["canary:errors"] == 0
    assert sum(v for k, v in window.items() if k.startswith("canary:lat:")) == 6


async def test_upstream_failures_count_as_errors(make_rig: RigFactory) -> None:
    rig = await make_rig(upstreams={"production": {"url": "http://127.0.0.1:9"}})
    since = time.time()
    await (await rig.client.get("/x")).read()
    await rig.gateway.arm_stats.flush()
    window = await rig.gateway.arm_stats.window(since)
    assert (window["production:requests"], window["production:errors"]) == (1, 1)


def test_latency_quantiles_and_slow_counts_from_buckets() -> None:
    window: Counter[str] = Counter({"production:requests": 100, "canary:requests": 100})
    window[f"production:lat:{latency_bucket(0.02)}"] = 99
    window[f"production:lat:{latency_bucket(0.3)}"] = 1
    window[f"canary:lat:{latency_bucket(0.02)}"] = 90
    window[f"canary:lat:{latency_bucket(3.0)}"] = 10
    assert quantile_bound(window, "production", 0.99) == 0.025
    assert quantile_bound(window, "canary", 0.99) == 5.0
    assert slow_count(window, "canary", 0.025 * 1.5) == 10
    assert slow_count(window, "production", 0.025 * 1.5) == 1


UNCONFIRMED = "shadowgate_arm_stats_unconfirmed_total"


async def test_counts_kept_after_a_refused_connection_are_flushed_once(
    stall_proxy: StallProxy, tmp_path: Path, redis_url: str
) -> None:
    metrics = Metrics()
    keys = Keys.for_prefix("t:")
    # Nothing listens on this socket yet: the connection is refused, nothing is sent.
    absent = StallProxy(target=redis_url.removeprefix("unix://"), path=tmp_path / "later.sock")
    client = connect(RedisConfig(socket_timeout_s=5), absent.url)
    stats = ArmStats(redis=client, keys=keys, metrics=metrics)
    since = time.time()
    stats.add({"canary:requests": 2, "canary:errors": 1})
    await stats.flush()
    await absent.start()
    try:
        await stats.flush()
        await stats.flush()
        window = await stats.window(since)
    finally:
        await client.aclose()
        await absent.close()
    assert (window["canary:requests"], window["canary:errors"]) == (2, 1)
    assert metrics.registry.get_sample_value(UNCONFIRMED) == 0


async def test_counts_whose_write_timed_out_after_reaching_redis_are_not_applied_twice(
    stall_proxy: StallProxy, redis_url: str
) -> None:
    metrics = Metrics()
    keys = Keys.for_prefix("t:")
    client = connect(RedisConfig(socket_timeout_s=0.3), stall_proxy.url)
    stats = ArmStats(redis=client, keys=keys, metrics=metrics)
    direct = connect(RedisConfig(), redis_url)
    reader = ArmStats(redis=direct, keys=keys)
    since = time.time()
    # The counts are held on the wire: the client times out waiting for the replies.
    stall_proxy.hold(b"HINCRBY")
    stats.add({"canary:requests": 2, "canary:errors": 1})
    await stats.flush()
    stall_proxy.release()
    try:
        async with asyncio.timeout(10):
            while not (await reader.window(since))["canary:requests"]:
                await asyncio.sleep(0.02)
        await stats.flush()
        window = await reader.window(since)
    finally:
        await client.aclose()
        await direct.aclose()
    assert (window["canary:requests"], window["canary:errors"]) == (2, 1)
    assert metrics.registry.get_sample_value(UNCONFIRMED) == 3


async def test_flush_cancelled_mid_write_keeps_no_connection_and_counts_unconfirmed(
    stall_proxy: StallProxy,
) -> None:
    metrics = Metrics()
    # A long socket timeout: only the cancellation can end the stalled write.
    client = connect(RedisConfig(socket_timeout_s=30), stall_proxy.url)
    stats = ArmStats(redis=client, keys=Keys.for_prefix("t:"), metrics=metrics)
    stall_proxy.hold(b"HINCRBY")
    stats.add({"production:requests": 4})
    flush = asyncio.create_task(stats.flush())
    await asyncio.wait_for(stall_proxy.holding.wait(), timeout=10)
    flush.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flush
    pool = client.connection_pool
    assert isinstance(pool, ConnectionPool)
    in_use = len(pool._in_use_connections)
    await client.aclose()
    assert in_use == 0
    assert metrics.registry.get_sample_value(UNCONFIRMED) == 4
