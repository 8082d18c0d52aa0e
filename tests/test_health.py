"""Readiness and component health: /readyz answers 200 while users can be served, and its
body and `shadowgate_component_up` say how Redis, the scoring workers and the publisher are."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from gateway.config import RedisConfig
from gateway.keys import Keys
from gateway.redis_client import connect
from scoring.heartbeat import Heartbeat, alive_workers
from tests.conftest import Rig, RigFactory


async def test_readyz_is_200_without_redis_and_names_what_is_down(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = await make_rig(redis_at=f"unix://{tmp_path}/none.sock")
    assert await readyz(rig) == {
        "ready": True, "redis": "down", "worker": "down", "workers_alive": 0, "publisher": "up",
    }  # fmt: skip
    assert rig.metric("shadowgate_component_up", component="redis") == 0
    assert rig.metric("shadowgate_component_up", component="publisher") == 1


async def readyz(rig: Rig) -> dict[str, Any]:
    resp = await rig.control.get("/readyz")
    assert resp.status == 200
    body: dict[str, Any] = orjson.loads(await resp.read())
    return body


async def wait_for_readyz(rig: Rig, **expected: Any) -> dict[str, Any]:
    """/readyz once it shows `expected` (it answers from a check made every second)."""
    async with asyncio.timeout(10):
        while True:
            body = await readyz(rig)
            if all(body[k] == v for k, v in expected.items()):
                return body
            await asyncio.sleep(0.05)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(RedisConfig(), redis_url)
    yield client
    await client.aclose()


async def test_worker_heartbeats_are_counted_until_they_stop(
    make_rig: RigFactory, redis: Redis
) -> None:
    rig = await make_rig()
    prefix = rig.gateway.config.redis.key_prefix
    keys = Keys.for_prefix(prefix)
    beating = Heartbeat(redis=redis, keys=keys, name="w1", interval_s=0.1)
    stopping = Heartbeat(redis=redis, keys=keys, name="w2", interval_s=60)
    task = asyncio.create_task(beating.run(lambda: 3))
    try:
        await stopping.beat(scored=0)
        await wait_for_readyz(rig, worker="up", workers_alive=2)
        assert rig.metric("shadowgate_component_up", component="worker") == 1
        assert rig.metric("shadowgate_scoring_workers_alive") == 2
    finally:
        task.cancel()  # w1 dies: its key expires three beats later
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await stopping.clear()  # w2 stops cleanly
    await wait_for_readyz(rig, worker="down", workers_alive=0)
    assert rig.metric("shadowgate_component_up", component="worker") == 0
    assert await alive_workers(redis, keys) == []
    assert await redis.smembers(prefix + "workers") == set()
