"""Per-arm outcomes reach Redis from every replica and add up for the rollout judge."""

from __future__ import annotations

import time
from collections import Counter

from gateway.proxy.arm_stats import latency_bucket, quantile_bound, slow_count
from tests.conftest import RigFactory


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
