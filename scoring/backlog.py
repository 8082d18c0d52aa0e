"""What became of every pair published to the pairs stream: scored, dead-lettered, still
waiting for a worker (undelivered, or pending in the `scorers` group), or lost under a reason.

Pairs that the stream cap trimmed before any worker read them leave no trace of their own,
so their count follows from that sum. It is exact because one script reads every term at
once, and cheap because each entry carries its running number among all pairs published
(`seq`, shadow/publish.py): the undelivered pairs are a subtraction, not a scan. The count is kept
in the aggregates hash as a ratchet (it only grows), so any number of gateways and
`shadowgate report` may run the script; what a run newly finds is also added to the current
10-second bucket, where the report sums its window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis

from gateway.constants import GROUP_SCORERS, LOST_TRIMMED_PENDING, LOST_TRIMMED_UNSCORED, SEQ_FIELD
from gateway.keys import Keys
from gateway.proxy.arm_stats import FIELD_PAIRS_LOST, RETENTION_S, bucket_key
from scoring.aggregates import AGG_DEAD_LETTER, AGG_LOST, AGG_SCORED

LOST_REASONS: Final = (LOST_TRIMMED_UNSCORED, LOST_TRIMMED_PENDING)

# KEYS: pairs, published counter, aggregates, current bucket. ARGV: group, bucket ttl (s).
_MEASURE = f"""
local function seq_of(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == '{SEQ_FIELD}' then return tonumber(fields[i + 1]) end
  end
  return nil
end
local last, pending, oldest_pending = '0-0', 0, false
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {{}}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == ARGV[1] then
      last, pending = info['last-delivered-id'], info['pending']
    end
  end
  if pending > 0 then oldest_pending = redis.call('XPENDING', KEYS[1], ARGV[1])[2] end
end
local undelivered, oldest_new = 0, false
local head = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)[1]
if head then
  oldest_new = head[1]
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  local first, newest = seq_of(head), seq_of(tail)
  if first and newest then
    undelivered = newest - first + 1
  else
    -- Entries the publisher did not number: at most the whole stream is waiting.
    undelivered = redis.call('XLEN', KEYS[1])
  end
end
local published = tonumber(redis.call('GET', KEYS[2]) or '0')
local counts = redis.call('HMGET', KEYS[3], '{AGG_SCORED}', '{AGG_DEAD_LETTER}',
                          '{AGG_LOST}{LOST_TRIMMED_PENDING}', '{AGG_LOST}{LOST_TRIMMED_UNSCORED}')
local scored, dead = tonumber(counts[1] or '0'), tonumber(counts[2] or '0')
local lost_pending, lost_unscored = tonumber(counts[3] or '0'), tonumber(counts[4] or '0')
local missing = published - scored - dead - lost_pending - pending - undelivered
if missing > lost_unscored then
  local found = missing - lost_unscored
  redis.call('HINCRBY', KEYS[3], '{AGG_LOST}{LOST_TRIMMED_UNSCORED}', found)
  redis.call('HINCRBY', KEYS[4], '{FIELD_PAIRS_LOST}{LOST_TRIMMED_UNSCORED}', found)
  redis.call('EXPIRE', KEYS[4], ARGV[2])
  lost_unscored = missing
end
local now = redis.call('TIME')
return {{published, scored, dead, lost_pending, lost_unscored, pending, undelivered,
        oldest_pending, oldest_new, now[1], now[2]}}
"""


def _id_seconds(entry_id: Any) -> float | None:
    if entry_id is None:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-", 1)[0]) / 1000


@dataclass(frozen=True, slots=True)
class Backlog:
    """One consistent reading of the pairs stream's accounts (counts since Redis began)."""

    published: int
    scored: int
    dead_lettered: int
    pending: int
    """Delivered to a worker and not acknowledged (trimmed ones included until claimed)."""
    undelivered: int
    oldest_age_s: float | None
    """Age of the oldest pair not yet scored, by its stream id; None when none waits."""
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        """Pairs published and not yet scored, dead-lettered or counted lost."""
        return self.pending + self.undelivered


class BacklogMeter:
    """Measures the backlog of one deployment's pairs stream (see the module docstring)."""

    def __init__(self, *, redis: Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = redis.register_script(_MEASURE)

    async def measure(self) -> Backlog:
        k = self._keys
        keys = [k.pairs, k.published, k.aggregates, bucket_key(k, time.time())]
        reply = await self._script(keys=keys, args=[GROUP_SCORERS, RETENTION_S])
        published, scored, dead, lost_pending, lost_unscored, pending, undelivered = (
            int(v) for v in reply[:7]
        )
        now = int(reply[9]) + int(reply[10]) / 1e6
        starts = [s for s in (_id_seconds(reply[7]), _id_seconds(reply[8])) if s is not None]
        return Backlog(
            published=published,
            scored=scored,
            dead_lettered=dead,
            pending=pending,
            undelivered=undelivered,
            oldest_age_s=max(0.0, now - min(starts)) if starts else None,
            lost={LOST_TRIMMED_UNSCORED: lost_unscored, LOST_TRIMMED_PENDING: lost_pending},
        )


class BacklogCollector(Collector):
    """Exposes the last reading a background refresh stored (collect() cannot do I/O)."""

    def __init__(self) -> None:
        self.last: Backlog | None = None

    def collect(self) -> Iterator[Metric]:
        backlog = self.last
        if backlog is None:
            return
        waiting = GaugeMetricFamily(
            "shadowgate_scoring_backlog", "Pairs published and not yet scored"
        )
        waiting.add_metric([], backlog.waiting)
        age = GaugeMetricFamily(
            "shadowgate_scoring_backlog_oldest_age_seconds",
            "Age of the oldest pair not yet scored (0 when none waits)",
        )
        age.add_metric([], backlog.oldest_age_s or 0.0)
        lost = CounterMetricFamily(
            "shadowgate_pairs_lost",
            "Pairs published and never scored or dead-lettered, by reason",
            labels=["reason"],
        )
        for reason in LOST_REASONS:
            lost.add_metric([reason], backlog.lost.get(reason, 0))
        yield from (waiting, age, lost)
