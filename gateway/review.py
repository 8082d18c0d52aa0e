"""The review queue: leases on items of the `review` stream, in priority order.

Items stay in the stream and its consumer group `reviewers` until a verdict acknowledges
them, so nothing is lost across restarts. New entries are taken in by an internal consumer
(`intake`) into a sorted set by priority; a claim pops the highest one and moves the entry to
the reviewer with XCLAIM, recording a lease. An unanswered lease is reaped by XAUTOCLAIM back
to `intake` and re-queued. Every state change is one Lua script, so two reviewers can never
hold the same item and a verdict on a lost lease is refused.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.constants import GROUP_REVIEWERS, KEY_REVIEW, KEY_VERDICTS

LABELS: Final = ("regression", "acceptable", "improvement")
INTAKE: Final = "intake"

# KEYS: stream, queue, leases, priorities, tags.
# ARGV: group, reviewer, now_ms, lease_ms, wanted tag ("" for any).
# A tag filter looks at the 500 highest items only: a filter for something rare may find
# nothing even though matching items wait further down.
_CLAIM = """
local function take(id)
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
  if #claimed > 0 then
    redis.call('HSET', KEYS[3], id, ARGV[2] .. '|' .. ARGV[3] .. '|' .. (ARGV[3] + ARGV[4]))
    return id
  end
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  return false
end
if ARGV[5] == '' then
  while true do
    local popped = redis.call('ZPOPMAX', KEYS[2])
    if #popped == 0 then return false end
    local id = take(popped[1])
    if id then return id end
  end
end
local wanted = '|' .. ARGV[5] .. '|'
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, 499)) do
  local tags = redis.call('HGET', KEYS[5], id) or ''
  if string.find(tags, wanted, 1, true) then
    redis.call('ZREM', KEYS[2], id)
    local taken = take(id)
    if taken then return taken end
  end
end
return false
"""

# KEYS: stream, leases, verdicts, stats, durations, priorities, queue, tags.
# ARGV: group, reviewer, id, now_ms, verdict json, label, route.
_VERDICT = """
local lease = redis.call('HGET', KEYS[2], ARGV[3])
if not lease then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
  if #pending == 0 then return 'done' end
  return 'not_held'
end
local holder, claimed, expires = string.match(lease, '^(.*)|(%d+)|(%d+)$')
if holder ~= ARGV[2] then return 'not_held' end
if tonumber(ARGV[4]) > tonumber(expires) then return 'expired' end
redis.call('XADD', KEYS[3], '*', 'data', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[3])
redis.call('HDEL', KEYS[8], ARGV[3])
redis.call('ZREM', KEYS[7], ARGV[3])
redis.call('HINCRBY', KEYS[4], 'label:' .. ARGV[6], 1)
redis.call('HINCRBY', KEYS[4], 'route:' .. ARGV[7] .. ':' .. ARGV[6], 1)
redis.call('LPUSH', KEYS[5], tonumber(ARGV[4]) - tonumber(claimed))
redis.call('LTRIM', KEYS[5], 0, 999)
return 'ok'
"""

# KEYS: stream, leases, queue, priorities. ARGV: group, reviewer, id.
_RELEASE = """
local lease = redis.call('HGET', KEYS[2], ARGV[3])
if not lease then return 'not_held' end
local holder = string.match(lease, '^(.*)|%d+|%d+$')
if holder ~= ARGV[2] then return 'not_held' end
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('XCLAIM', KEYS[1], ARGV[1], 'intake', 0, ARGV[3], 'JUSTID')
local priority = redis.call('HGET', KEYS[4], ARGV[3]) or '0'
redis.call('ZADD', KEYS[3], priority, ARGV[3])
return 'ok'
"""


class Verdict(BaseModel):
    """A reviewer's decision on one item; the golden set is made of these."""

    schema_version: int = 1
    item_id: str
    pair_id: str | None = None
    route: str | None = None
    label: str
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    reviewer: str
    claimed_at: float
    decided_at: float
    item: Any = None


class ReviewConflict(Exception):
    """A verdict or release the reviewer may not make: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    item: dict[str, Any]
    lease_expires_at: float


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _tags(item: dict[str, Any]) -> str:
    """The filterable tags of a review item, delimited for an exact substring match."""
    route = (item.get("pair") or {}).get("route", "")
    score = item.get("score") or {}
    production = set(score.get("production_flags") or [])
    flags = [f for f in score.get("candidate_flags") or [] if f not in production]
    return "|" + "|".join([f"route:{route}", *(f"flag:{f}" for f in flags)]) + "|"


class ReviewQueue:
    """Claims, verdicts, releases and stats on the review stream of one key prefix."""

    def __init__(self, *, redis: Redis, prefix: str, lease_s: float) -> None:
        self._redis = redis
        self._stream = prefix + KEY_REVIEW
        self._queue = prefix + "review:queue"
        self._leases = prefix + "review:leases"
        self._priorities = prefix + "review:priority"
        self._tags = prefix + "review:tags"
        self._stats = prefix + "review:stats"
        self._durations = prefix + "review:durations"
        self._verdicts = prefix + KEY_VERDICTS
        self._lease_ms = int(lease_s * 1000)
        self._claim = redis.register_script(_CLAIM)
        self._verdict = redis.register_script(_VERDICT)
        self._release = redis.register_script(_RELEASE)

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP_REVIEWERS, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _intake(self) -> None:
        """Queue new entries and entries whose lease ran out, by priority."""
        entries: list[tuple[str, dict[bytes, bytes] | None]] = []
        while True:
            reply: Any = await self._redis.xreadgroup(
                GROUP_REVIEWERS, INTAKE, {self._stream: ">"}, count=500
            )
            batch = [(_text(i), f) for _, items in reply or [] for i, f in items]
            entries.extend(batch)
            if len(batch) < 500:
                break
        start = "0-0"
        while True:
            reclaimed: Any = await self._redis.xautoclaim(
                self._stream, GROUP_REVIEWERS, INTAKE, self._lease_ms, start_id=start, count=500
            )
            entries.extend((_text(i), f) for i, f in reclaimed[1])
            start = _text(reclaimed[0])
            if start == "0-0":
                break
        if not entries:
            return
        pipe = self._redis.pipeline(transaction=False)
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream (trimmed): nothing to review
                pipe.xack(self._stream, GROUP_REVIEWERS, entry_id)
                continue
            priority, tags = 0.0, ""
            with contextlib.suppress(KeyError, ValueError, AttributeError, TypeError):
                item = orjson.loads(fields[b"data"])
                priority = float(item.get("priority", 0.0))
                tags = _tags(item)
            pipe.hset(self._priorities, entry_id, priority)
            pipe.hset(self._tags, entry_id, tags)
            pipe.zadd(self._queue, {entry_id: priority}, nx=True)
        await pipe.execute()

    async def claim(self, reviewer: str, *, tag: str = "") -> Claimed | None:
        """Lease the highest-priority item to `reviewer`, optionally only items with `tag`
        (`route:/v1/chat/completions`, `flag:refusal`); None when nothing matches."""
        await self._intake()
        now_ms = int(time.time() * 1000)
        keys = [self._stream, self._queue, self._leases, self._priorities, self._tags]
        entry_id = await self._claim(
            keys=keys, args=[GROUP_REVIEWERS, reviewer, now_ms, self._lease_ms, tag]
        )
        if entry_id is None:
            return None
        entry_id = _text(entry_id)
        entries: Any = await self._redis.xrange(self._stream, min=entry_id, max=entry_id)
        fields = entries[0][1] if entries else {}
        item = orjson.loads(fields.get(b"data", b"{}"))
        return Claimed(id=entry_id, item=item, lease_expires_at=(now_ms + self._lease_ms) / 1000)

    async def verdict(
        self, reviewer: str, entry_id: str, *, label: str, tags: list[str], note: str | None
    ) -> Verdict:
        """Record a verdict on an item `reviewer` holds; raises ReviewConflict otherwise."""
        entries: Any = await self._redis.xrange(self._stream, min=entry_id, max=entry_id)
        if not entries:
            raise ReviewConflict("no such item")
        item = orjson.loads(entries[0][1].get(b"data", b"{}"))
        lease = _text(await self._redis.hget(self._leases, entry_id) or b"")
        claimed_ms = int(lease.rsplit("|", 2)[1]) if lease.count("|") >= 2 else 0
        now = time.time()
        pair = item.get("pair") or {}
        record = Verdict(
            item_id=entry_id,
            pair_id=pair.get("id"),
            route=pair.get("route"),
            label=label,
            tags=tags,
            note=note,
            reviewer=reviewer,
            claimed_at=claimed_ms / 1000,
            decided_at=now,
            item=item,
        )
        keys = [
            self._stream, self._leases, self._verdicts, self._stats, self._durations,
            self._priorities, self._queue, self._tags,
        ]  # fmt: skip
        args: list[str | bytes | int] = [
            GROUP_REVIEWERS, reviewer, entry_id, int(now * 1000),
            orjson.dumps(record.model_dump(mode="json")), label, record.route or "unknown",
        ]  # fmt: skip
        outcome = _text(await self._verdict(keys=keys, args=args))
        if outcome != "ok":
            raise ReviewConflict(
                {
                    "done": "this item already has a verdict",
                    "not_held": "you do not hold this item (claim it first)",
                    "expired": "your lease on this item expired; claim it again",
                }[outcome]
            )
        return record

    async def release(self, reviewer: str, entry_id: str) -> None:
        """Give an item back to the queue; raises ReviewConflict if `reviewer` does not hold it."""
        keys = [self._stream, self._leases, self._queue, self._priorities]
        outcome = _text(await self._release(keys=keys, args=[GROUP_REVIEWERS, reviewer, entry_id]))
        if outcome != "ok":
            raise ReviewConflict("you do not hold this item")

    async def stats(self) -> dict[str, Any]:
        await self._intake()
        queued = await self._redis.zcard(self._queue)
        now_ms = time.time() * 1000
        leases = (await self._redis.hgetall(self._leases)).values()
        in_review = sum(1 for lease in leases if int(_text(lease).rsplit("|", 1)[1]) > now_ms)
        done = await self._redis.xlen(self._verdicts)
        counters = {_text(k): int(v) for k, v in (await self._redis.hgetall(self._stats)).items()}
        durations = [int(v) for v in await self._redis.lrange(self._durations, 0, -1)]
        by_label = {k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("label:")}
        by_route: dict[str, dict[str, int]] = {}
        for key, value in counters.items():
            if key.startswith("route:"):
                route, label = key[len("route:") :].rsplit(":", 1)
                by_route.setdefault(route, {})[label] = value
        return {
            "queued": queued,
            "in_review": in_review,
            "done": done,
            "verdicts": by_label,
            "verdicts_by_route": by_route,
            "median_seconds_to_verdict": statistics.median(durations) / 1000 if durations else None,
        }
