"""Hands pair records to the Redis stream through a bounded local buffer.

`submit` never waits: a full buffer drops the record and counts it. One background task
drains the buffer in pipelined batches; while Redis is down it retries the batch in hand with
capped exponential backoff and the buffer absorbs (then drops) what arrives meanwhile. At
shutdown the buffer is written for a bounded time; only what surely was not written is counted
as dropped.

Each entry is stamped with `seq`, the stream's running count of pairs published, in the same
script that adds it: consecutive entries differ by one, so the scoring backlog is a
subtraction and pairs the stream cap trimmed before anyone scored them can be counted
(scoring/backlog.py).
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import PublishConfig
from gateway.constants import SEQ_FIELD, STREAM_FIELD
from gateway.metrics import Metrics
from gateway.records import PairRecord
from gateway.redis_client import connected_pipeline, raise_if_cancelled

log = logging.getLogger("shadowgate.publish")

# How long a stopped drain task may take to unwind its cancelled write (closing a socket).
_STOP_GRACE_S = 0.5

# KEYS: pairs stream, published counter. ARGV: maxlen, record json.
_PUBLISH = f"""
local seq = redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                  '{STREAM_FIELD}', ARGV[2], '{SEQ_FIELD}', seq)
"""


class PairPublisher:
    """Bounded, non-blocking publisher of pair records to `stream_key`."""

    def __init__(
        self,
        *,
        redis: Redis,
        stream_key: str,
        published_key: str,
        config: PublishConfig,
        metrics: Metrics,
    ) -> None:
        self._redis = redis
        self._keys = [stream_key, published_key]
        self._publish = redis.register_script(_PUBLISH)
        self._config = config
        self._metrics = metrics
        self._queue: asyncio.Queue[PairRecord] = asyncio.Queue(maxsize=config.buffer_size)
        self._task: asyncio.Task[None] | None = None
        self._in_hand = 0
        self._writing = False
        self._maybe_written = False
        self._closed = False
        self._failing = False

    @property
    def up(self) -> bool:
        """Running, and its last write (if any) went through."""
        return self._task is not None and not self._task.done() and not self._failing

    def submit(self, record: PairRecord) -> bool:
        """Queue a record for publishing; False (and counted) when the buffer is full."""
        if self._closed:
            self._metrics.pairs_dropped.labels("shutdown").inc()
            return False
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
        """Write the buffer for up to `drain_timeout_s`, then stop; what is left is counted.

        A batch already on its way to Redis is waited for (up to the same time again): stopped
        mid-write it might be in the stream and counted lost all the same. Returns within twice
        `drain_timeout_s` plus `_STOP_GRACE_S` whatever Redis does. A record ends counted once:
        published, `shutdown` (surely not in the stream) or `shutdown_unconfirmed` (a write
        that may have reached Redis was cut or failed unanswered)."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout_s
        while (self._queue.qsize() or self._in_hand) and not task.done():
            late = loop.time() - deadline
            if late >= 0 and (not self._writing or late >= drain_timeout_s):
                break
            await asyncio.sleep(0.02)
        await _stop(task, _STOP_GRACE_S)
        unconfirmed = self._in_hand if self._maybe_written else 0
        left = self._queue.qsize() + self._in_hand - unconfirmed
        if left:
            self._metrics.pairs_dropped.labels("shutdown").inc(left)
            log.warning("publish: %d pair records not written at shutdown", left)
        if unconfirmed:
            # Redis may or may not have taken them: neither published nor surely lost.
            self._metrics.pairs_dropped.labels("shutdown_unconfirmed").inc(unconfirmed)
            log.warning("publish: %d pair records cut mid-write at shutdown", unconfirmed)

    async def _write(self, batch: list[PairRecord]) -> None:
        async with connected_pipeline(self._redis) as pipe:
            # From here on part of the batch may reach Redis, however the write ends.
            self._maybe_written = True
            for record in batch:
                args: list[int | bytes] = [self._config.stream_maxlen, record.to_json()]
                await self._publish(keys=self._keys, args=args, client=pipe)
            await pipe.execute()

    async def _run(self) -> None:
        backoff_s = 0.05
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._config.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_hand = len(batch)
            while True:
                self._writing = True
                try:
                    await self._write(batch)
                except (RedisError, OSError) as exc:
                    self._writing = False
                    raise_if_cancelled()
                    self._failing = True
                    self._metrics.redis_up.set(0)
                    log.warning("publish: redis write failed (%s), retry in %.2f s", exc, backoff_s)
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, self._config.max_backoff_s)
                    continue
                self._writing = False
                self._failing = False
                self._metrics.redis_up.set(1)
                self._metrics.pairs_published.inc(len(batch))
                self._in_hand = 0
                self._maybe_written = False
                self._metrics.publish_buffer.set(self._queue.qsize())
                backoff_s = 0.05
                break


async def _stop(task: asyncio.Task[None], grace_s: float) -> None:
    """Cancel `task` and wait up to `grace_s` for it to end. A cancellation that redis-py turns
    into a connection error mid-command is cancelled again rather than awaited for ever."""
    loop = asyncio.get_running_loop()
    end = loop.time() + grace_s
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=max(0.0, min(0.05, end - loop.time())))
        if loop.time() >= end and not task.done():
            log.error("publish: drain task did not stop within %.2f s", grace_s)
            return
    if not task.cancelled() and task.exception() is not None:
        log.error("publish: drain task failed", exc_info=task.exception())
