"""Readiness and component health: /readyz answers 200 while users can be served, and its
body and `shadowgate_component_up` say how Redis, the scoring workers and the publisher are."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from gateway.config import RedisConfig
from gateway.redis_client import connect
from scoring.heartbeat import Heartbeat, alive_workers
from tests.conftest import RigFactory


async def test_readyz_is_200_without_redis_and_names_what_is_down(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = await make_rig(redis_at=f"unix://{tmp_path}/none.sock")
    resp = await rig.control.get("/readyz")
    assert resp.status == 200
    body = orjson.loads(await resp.read())
    assert body == {
        "ready": True, "redis": "down", "worker": "down", "workers_alive": 0, "publisher": "up",
    }  # fmt: skip
    assert rig.metric("shadowgate_component_up", component="redis") == 0
    assert rig.metric("shadowgate_component_up", component="publisher") == 1


async def test_worker_heartbeats_are_counted_until_they_stop(
    make_rig: RigFactory, redis_url: str
) -> None:
    rig = await make_rig()
    prefix = rig.gateway.config.redis.key_prefix
    redis = connect(RedisConfig(), redis_url)
    one = Heartbeat(redis=redis, prefix=prefix, name="w1", interval_s=0.1)
    two = Heartbeat(redis=redis, prefix=prefix, name="w2", interval_s=60)
    await one.beat(scored=3)
    await two.beat(scored=0)
    body = orjson.loads(await (await rig.control.get("/readyz")).read())
    assert (body["worker"], body["workers_alive"]) == ("up", 2)
    assert rig.metric("shadowgate_component_up", component="worker") == 1
    assert rig.metric("shadowgate_scoring_workers_alive") == 2
    await two.clear()  # a clean stop
    await asyncio.sleep(0.4)  # w1 missed three beats
    body = orjson.loads(await (await rig.control.get("/readyz")).read())
    assert (body["worker"], body["workers_alive"]) == ("down", 0)
    assert rig.metric("shadowgate_component_up", component="worker") == 0
    assert await alive_workers(redis, prefix) == []
    assert await redis.smembers(prefix + "workers") == set()
    await redis.aclose()
