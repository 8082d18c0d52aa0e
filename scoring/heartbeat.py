"""Scoring workers' heartbeats in Redis, and who reads them.

Each worker refreshes `{prefix}workers:{name}` every `scoring.heartbeat_s`, with a time to
live of three intervals, and lists its name in the set `{prefix}workers`. A worker is alive
while its key is: Redis's own clock decides, so workers on machines with skewed clocks are
counted alike. Readers (the gateway's /readyz and metrics, `shadowgate report`) drop names
whose key expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable

import orjson
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.keys import Keys
from gateway.redis_client import as_text as _text
from gateway.redis_client import raise_if_cancelled

log = logging.getLogger("shadowgate.heartbeat")

MISSED_BEATS = 3


class WorkerBeat(BaseModel):
    """What a worker says about itself at each beat."""

    schema_version: int = 1
    name: str
    host: str
    pid: int
    started: float
    scored: int


class Heartbeat:
    """Keeps one worker's heartbeat key alive until stopped; `clear()` removes it at once."""

    def __init__(self, *, redis: Redis, keys: Keys, name: str, interval_s: float) -> None:
        self._redis = redis
        self._set = keys.workers
        self._key = keys.worker(name)
        self._name = name
        self._interval_s = interval_s
        self._host = socket.gethostname()
        self._started = time.time()

    async def beat(self, scored: int) -> None:
        record = WorkerBeat(
            name=self._name, host=self._host, pid=os.getpid(), started=self._started, scored=scored
        )
        ttl_ms = int(self._interval_s * MISSED_BEATS * 1000)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._key, record.model_dump_json(), px=ttl_ms)
        pipe.sadd(self._set, self._name)
        await pipe.execute()

    async def run(self, scored: Callable[[], int]) -> None:
        """Beat every interval until cancelled; `scored()` gives the worker's count so far.
        A Redis outage skips beats (the worker is then dead to readers, which is the truth)."""
        while True:
            try:
                await self.beat(scored())
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                log.debug("heartbeat: redis unavailable (%s)", exc)
            await asyncio.sleep(self._interval_s)

    async def clear(self) -> None:
        """Remove this worker's heartbeat (a clean stop), best effort."""
        with contextlib.suppress(RedisError, OSError):
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._key)
            pipe.srem(self._set, self._name)
            await pipe.execute()


async def alive_workers(redis: Redis, keys: Keys) -> list[WorkerBeat]:
    """Workers whose heartbeat is live; names whose key expired are dropped from the set."""
    names = sorted(_text(n) for n in await redis.smembers(keys.workers))
    if not names:
        return []
    values = await redis.mget([keys.worker(name) for name in names])
    dead = [name for name, value in zip(names, values, strict=True) if value is None]
    if dead:
        await redis.srem(keys.workers, *dead)
    alive = []
    for value in values:
        if value is not None:
            with contextlib.suppress(ValueError):
                alive.append(WorkerBeat.model_validate(orjson.loads(value)))
    return alive
