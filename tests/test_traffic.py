"""The live split: a poll that read Redis before a local change must not undo it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from redis.asyncio import Redis

from gateway.proxy.traffic import TrafficSplit, TrafficState


class _SlowReadRedis:
    """Answers HGETALL with what the hash held when the read was sent, once released."""

    def __init__(self) -> None:
        self.hash: dict[str, Any] = {}
        self.release = asyncio.Event()

    async def hgetall(self, key: str) -> dict[str, Any]:
        snapshot = dict(self.hash)
        await self.release.wait()
        return snapshot

    async def hset(self, key: str, mapping: dict[str, Any]) -> int:
        self.hash.update(mapping)
        return len(mapping)


async def test_a_poll_that_read_before_a_set_does_not_undo_it() -> None:
    redis = _SlowReadRedis()
    redis.hash = {"shadow_percent": "5", "canary_percent": "0"}
    state = TrafficState(
        initial=TrafficSplit(shadow_percent=5),
        redis=cast(Redis, redis),
        key="shadowgate:traffic",
        poll_s=0.5,
        has_candidate=True,
    )
    poll = asyncio.create_task(state.refresh())
    await asyncio.sleep(0)  # the poll's read is in flight with the old split
    await state.set(TrafficSplit(shadow_percent=5, canary_percent=20), source="test")
    redis.release.set()
    await poll
    assert state.current.canary_bp == 2000
    await state.refresh()  # a later poll reads the new split
    assert state.current.canary_bp == 2000
