"""Hands pair records to the Redis stream through a bounded local buffer.

`submit` never waits: a full buffer drops the record and counts it. One background task
drains the buffer in pipelined batches; while Redis is down it retries the batch in hand with
capped exponential backoff and the buffer absorbs (then drops) what arrives meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import PublishConfig
from gateway.constants import STREAM_FIELD
from gateway.metrics import Metrics
from gateway.records import PairRecord
from gateway.redis_client import raise_if_cancelled

log = logging.getLogger("shadowgate.publish")


class PairPublisher:
    """Bounded, non-blocking publisher of pair records to `stream_key`."""

    def __init__(
        self, *, redis: Redis, stream_key: str, config: PublishConfig, metrics: Metrics
    ) -> None:
        self._redis = redis
        self._stream_key = stream_key
        self._config = config
        self._metrics = metrics
        self._queue: asyncio.Queue[PairRecord] = asyncio.Queue(maxsize=config.buffer_size)
        self._task: asyncio.Task[None] | None = None
        self._in_hand = 0
        self._failing = False

    @property
    def up(self) -> bool:
        """Running, and its last write (if any) went through."""
        return self._task is not None and not self._task.done() and not self._failing

    def submit(self, record: PairRecord) -> bool:
        """Queue a record for publishing; False (and counted) when the buffer is full."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._metrics.pairs_dropped.labels("buffer_full").inc()
            return False
        self._metrics.publish_buffer.set(self._queue.qsize())
        return True

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pair-publisher")

    async def close(self, drain_timeout_s: float = 2.0) -> None:
        """Give the buffer a moment to drain, then stop; what is left is counted as dropped."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout_s):
                while not self._queue.empty() and not self._task.done():
                    await asyncio.sleep(0.02)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        left = self._queue.qsize() + self._in_hand
        if left:
            self._metrics.pairs_dropped.labels("shutdown").inc(left)
            log.warning("publish: %d pair records not written at shutdown", left)

    async def _write(self, batch: list[PairRecord]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for record in batch:
            pipe.xadd(
                self._stream_key,
                {STREAM_FIELD: record.to_json()},
                maxlen=self._config.stream_maxlen,
                approximate=True,
            )
        await pipe.execute()

    async def _run(self) -> None:
        backoff_s = 0.05
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._config.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_hand = len(batch)
            while True:
                try:
                    await self._write(batch)
                except (RedisError, OSError) as exc:
                    raise_if_cancelled()
                    self._failing = True
                    self._metrics.redis_up.set(0)
                    log.warning("publish: redis write failed (%s), retry in %.2f s", exc, backoff_s)
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, self._config.max_backoff_s)
                    continue
                self._failing = False
                self._metrics.redis_up.set(1)
                self._metrics.pairs_published.inc(len(batch))
                self._in_hand = 0
                self._metrics.publish_buffer.set(self._queue.qsize())
                backoff_s = 0.05
                break
