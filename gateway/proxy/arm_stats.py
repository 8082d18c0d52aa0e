"""Per-arm request outcomes and prompt features shared by every replica, for the rollout
judge, its input-drift check and the report.

The hot path only bumps counters in a local dict; a background task adds them every
`flush_s` into Redis hashes of 10-second buckets (`arms:<bucket>`), so any replica can sum
a window across all replicas. Latencies and times to first byte go into fixed histogram
buckets; a rate of slow requests is read off them. Prompt features are counted per bin
(`<arm>:prompt:<feature>:<bin>`), the gateway's own error answers per reason
(`<arm>:upstream_error:<kind>`).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.proxy.prompt_features import PromptFeatures
from gateway.redis_client import connected_pipeline, raise_if_cancelled

log = logging.getLogger("shadowgate.arm_stats")

BUCKET_S: Final = 10
RETENTION_S: Final = 2 * 24 * 3600
# Upper bounds (seconds) of the latency buckets; the last bucket is open.
LATENCY_BOUNDS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
# Fields that other writers add to the buckets, for the report's account of mirrors and pairs:
# mirror outcomes and pairs published or dropped (shadow/ledger.py), pairs dead-lettered and
# lost by reason (the scoring worker's and the backlog meter's scripts).
FIELD_MIRROR: Final = "mirror:"
FIELD_PAIRS_PUBLISHED: Final = "pairs:published"
FIELD_PAIRS_DROPPED: Final = "pairs:dropped:"
FIELD_PAIRS_DEAD_LETTER: Final = "pairs:dead_letter"
FIELD_PAIRS_LOST: Final = "pairs:lost:"


def latency_bucket(seconds: float) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS, seconds)


def bucket_key(keys: Keys, at: float) -> str:
    """The hash of the 10-second bucket holding unix time `at`; other writers (the scoring
    side's loss counts) add to the same buckets so a report window sums them alike."""
    return keys.arm_bucket(int(at) // BUCKET_S * BUCKET_S)


class ArmStats:
    """Local counters of one replica, flushed to Redis in the background."""

    def __init__(
        self, *, redis: Redis, keys: Keys, metrics: Metrics | None = None, flush_s: float = 1.0
    ) -> None:
        self._redis = redis
        self._metrics = metrics
        self._keys = keys
        self._flush_s = flush_s
        self._pending: Counter[str] = Counter()

    def record(
        self, arm: str, status: int | None, latency_s: float, ttfb_ms: float | None = None
    ) -> None:
        """Count one finished request (hot path: dictionary increments only)."""
        pending = self._pending
        pending[f"{arm}:requests"] += 1
        if status is None or status >= 500:
            pending[f"{arm}:errors"] += 1
        pending[f"{arm}:lat:{latency_bucket(latency_s)}"] += 1
        if ttfb_ms is not None:
            pending[f"{arm}:ttfb:{latency_bucket(ttfb_ms / 1000)}"] += 1

    def record_upstream_error(self, arm: str, kind: str) -> None:
        """Count why the gateway answered for an arm's upstream (`connect`, `timeout`, ...)."""
        self._pending[f"{arm}:upstream_error:{kind}"] += 1

    def record_prompt(self, arm: str, features: PromptFeatures) -> None:
        """Count one request's prompt features (hot path: dictionary increments only)."""
        pending = self._pending
        pending[f"{arm}:prompt:length:{features.length}"] += 1
        pending[f"{arm}:prompt:language:{features.language}"] += 1
        pending[f"{arm}:prompt:route:{features.route}"] += 1
        pending[f"{arm}:prompt:max_tokens:{features.max_tokens}"] += 1

    def add(self, counts: Mapping[str, int]) -> None:
        """Count other events of this replica in the same buckets (flushed with the rest)."""
        self._pending.update(counts)

    async def flush(self) -> None:
        """Add the pending counts to Redis. Counts that surely did not reach it (no connection)
        wait for the next flush; counts whose write may have been applied (a timeout, a
        connection lost mid-reply, a cancellation) are dropped and counted unconfirmed rather
        than sent again, which could count them twice."""
        if not self._pending:
            return
        pending, self._pending = self._pending, Counter()
        key = bucket_key(self._keys, time.time())
        sent = False
        try:
            async with connected_pipeline(self._redis) as pipe:
                sent = True
                for field, count in pending.items():
                    pipe.hincrby(key, field, count)
                pipe.expire(key, RETENTION_S)
                await pipe.execute()
        except BaseException as exc:
            if not sent:
                self._pending.update(pending)
            elif self._metrics is not None:
                self._metrics.arm_stats_unconfirmed.inc(pending.total())
            if not isinstance(exc, (RedisError, OSError)):
                raise
            raise_if_cancelled()
            log.debug("arm stats flush failed (sent: %s): %s", sent, exc)

    async def run(self, before_flush: Callable[[], None] | None = None) -> None:
        """Flush every `flush_s`; `before_flush` may add the replica's other counts first."""
        while True:
            await asyncio.sleep(self._flush_s)
            if before_flush is not None:
                before_flush()
            await self.flush()

    async def buckets(
        self, since: float, until: float | None = None
    ) -> list[tuple[int, Counter[str]]]:
        """Each bucket's counts of all replicas from `since` (unix time) to `until`, with the
        bucket's start time; whole buckets, so the first may begin before `since`."""
        end = int(until if until is not None else time.time())
        starts = range(int(since) // BUCKET_S * BUCKET_S, end + 1, BUCKET_S)
        pipe = self._redis.pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(self._keys.arm_bucket(start))
        series = []
        for start, fields in zip(starts, await pipe.execute(), strict=True):
            counts: Counter[str] = Counter()
            for name, value in fields.items():
                counts[name.decode() if isinstance(name, bytes) else name] += int(value)
            series.append((start, counts))
        return series

    async def window(self, since: float, until: float | None = None) -> Counter[str]:
        """Counts of all replicas from `since` (unix time) to `until`, in whole buckets."""
        total: Counter[str] = Counter()
        for _, counts in await self.buckets(since, until):
            total.update(counts)
        return total


def prompt_counts(window: Counter[str], *arms: str) -> dict[str, Counter[str]]:
    """Prompt-feature counts of `arms` (summed) in a window: feature -> bin -> requests."""
    features: dict[str, Counter[str]] = {}
    for name, count in window.items():
        parts = name.split(":", 3)  # a route bin may itself hold colons: it comes last
        if len(parts) == 4 and parts[1] == "prompt" and parts[0] in arms:
            features.setdefault(parts[2], Counter())[parts[3]] += count
    return features


def slow_count(window: Counter[str], arm: str, threshold_s: float) -> int:
    """Requests of `arm` in buckets entirely above `threshold_s` (a lower bound)."""
    first = bisect.bisect_left(LATENCY_BOUNDS, threshold_s) + 1
    return sum(window[f"{arm}:lat:{b}"] for b in range(first, len(LATENCY_BOUNDS) + 1))


def quantile_bound(window: Counter[str], arm: str, q: float) -> float:
    """Upper bound of the bucket holding the q-quantile latency of `arm`."""
    total = window[f"{arm}:requests"]
    if not total:
        return 0.0
    seen = 0
    for b in range(len(LATENCY_BOUNDS) + 1):
        seen += window[f"{arm}:lat:{b}"]
        if seen >= q * total:
            return LATENCY_BOUNDS[b] if b < len(LATENCY_BOUNDS) else float("inf")
    return float("inf")
