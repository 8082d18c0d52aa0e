"""The review queue against Redis itself: a claim cut mid-write leaves the pool clean."""

from __future__ import annotations

import asyncio

from redis.asyncio import ConnectionPool, Redis

from gateway.config import RedisConfig, ReviewConfig
from gateway.keys import Keys
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from gateway.review.queue import ReviewQueue
from tests.stall_proxy import StallProxy


async def enqueue(client: Redis, keys: Keys, n: int) -> None:
    for i in range(n):
        pair = PairRecord(
            id=f"pair-{i}", ts=0.0, route="/v1/chat/completions",
            production=Exchange(status=200, text="Paris."),
            candidate=Exchange(status=200, text="Lyon."),
        )  # fmt: skip
        score = ScoreRecord(pair_id=pair.id, ts=0.0, route=pair.route, excess=1.0, queued=True)
        item = ReviewItem(pair=pair, score=score, priority=1.0)
        await client.xadd(keys.review, {"data": item.to_json()})


async def test_claim_cut_while_loading_its_scripts_keeps_no_connection(
    stall_proxy: StallProxy,
) -> None:
    keys = Keys.for_prefix("t:")
    # A long socket timeout: only the cancellation can end the stalled write.
    client = connect(RedisConfig(socket_timeout_s=30), stall_proxy.url)
    queue = ReviewQueue(redis=client, keys=keys, config=ReviewConfig())
    await queue.ensure_group()
    await enqueue(client, keys, 1)
    assert await queue.claim("ann") is not None  # connected, every script loaded
    await enqueue(client, keys, 3)
    # The intake's pipeline checks its script is loaded (SCRIPT EXISTS) before it executes.
    stall_proxy.hold(b"SCRIPT")
    claim = asyncio.create_task(queue.claim("ann"))
    async with asyncio.timeout(10):
        await stall_proxy.holding.wait()
    claim.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(claim, return_exceptions=True)
    assert claim.cancelled()
    pool = client.connection_pool
    assert isinstance(pool, ConnectionPool)
    in_use = len(pool._in_use_connections)
    stall_proxy.release()
    await client.aclose()
    assert in_use == 0
