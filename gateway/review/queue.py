"""The review queue: leases on items of the `review` stream, in priority order, each item
judged by `review.reviewers_per_item` different reviewers.

Items stay pending in the stream's consumer group `reviewers` until their last verdict
acknowledges them, so nothing is lost across restarts. New entries are taken in by an internal
consumer (`intake`) into a sorted set by priority; a claim leases the highest item the reviewer
has neither judged nor holds, and the item leaves the queue once its verdicts and live leases
add up to the number it needs. Every state change is one Lua script (review/scripts.py), so
reviewers never share a lease, nobody judges an item twice, and a verdict on a lost lease is
refused.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.config import ReviewConfig
from gateway.constants import GROUP_REVIEWERS
from gateway.errors import ShadowgateError
from gateway.keys import Keys
from gateway.records import ReviewItem, Verdict
from gateway.redis_client import as_text as _text
from gateway.redis_client import connected_pipeline
from gateway.review import blind as review_blind
from gateway.review import scripts as review_scripts
from gateway.review.agreement import LABELS, agreement, reviewers
from gateway.review.scripts import STAT_FINAL, STAT_FINAL_TIED, STAT_LABEL, STAT_ROUTE

__all__ = ["LABELS", "Claimed", "ReviewConflict", "ReviewQueue"]

INTAKE: Final = "intake"
# How many of the highest queued items a claim looks at for one it may take: a tag filter for
# something rare, or a reviewer who already judged or holds every item up there, may find
# nothing even though such items wait further down.
CLAIM_WINDOW: Final = 1000

_CONFLICTS: Final = {
    "done": "this item already has a verdict",
    "judged": "you already judged this item",
    "not_held": "you do not hold this item (claim it first)",
    "expired": "your lease on this item expired; claim it again",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded verdict, and the item's final label if this verdict completed it."""

    verdict: Verdict
    final_label: str | None = None
    tied: bool = False


class ReviewConflict(ShadowgateError):
    """A verdict or release the reviewer may not make: `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    item: dict[str, Any]
    lease_expires_at: float
    candidate_side: str
    reviewers_per_item: int


def _review_item(fields: dict[bytes, bytes]) -> ReviewItem | None:
    """The review item of a stream entry; None when it has none or one that does not parse."""
    try:
        return ReviewItem.from_json(fields[b"data"])
    except (KeyError, ValueError, ValidationError):
        return None


def _tags(item: ReviewItem) -> str:
    """The filterable tags of a review item, delimited for an exact substring match."""
    flags = [f"flag:{f}" for f in item.score.new_flags]
    return "|" + "|".join([f"route:{item.pair.route}", *flags]) + "|"


class ReviewQueue:
    """Claims, verdicts, releases and stats on the review stream of one deployment's keys."""

    def __init__(self, *, redis: Redis, keys: Keys, config: ReviewConfig) -> None:
        self._redis = redis
        self._config = config
        self._stream = keys.review
        self._queue = keys.review_queue
        self._items = keys.review_items
        self._expiry = keys.review_expiry
        self._stats = keys.review_stats
        self._agreement = keys.review_agreement
        self._durations = keys.review_durations
        self._verdicts = keys.verdicts
        names = {
            "stream": self._stream,
            "queue": self._queue,
            "items": self._items,
            "expiry": self._expiry,
            "priorities": keys.review_priority,
            "tags": keys.review_tags,
            "verdicts": self._verdicts,
            "stats": self._stats,
            "agreement": self._agreement,
            "durations": self._durations,
        }
        self._keys = [names[k] for k in review_scripts.KEYS]
        self._lease_ms = int(config.lease_s * 1000)
        self._register = redis.register_script(review_scripts.REGISTER)
        self._claim = redis.register_script(review_scripts.CLAIM)
        self._verdict = redis.register_script(review_scripts.VERDICT)
        self._release = redis.register_script(review_scripts.RELEASE)
        self._reap = redis.register_script(review_scripts.REAP)
        self._recover = redis.register_script(review_scripts.RECOVER)

    @property
    def mode(self) -> str:
        return self._config.mode

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, GROUP_REVIEWERS, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _recovered(self) -> list[tuple[str, dict[bytes, bytes] | None]]:
        """Entries pending for a while that the queue does not know: read by an intake that
        stopped before registering them, or leased by an older version of the queue."""
        unknown: list[str] = []
        start = "0-0"
        while True:
            args: list[str | int] = [GROUP_REVIEWERS, INTAKE, self._lease_ms, start]
            reply: Any = await self._recover(keys=self._keys, args=args)
            start = _text(reply[0])
            unknown.extend(_text(i) for i in reply[1:])
            if start == "0-0":
                break
        out: list[tuple[str, dict[bytes, bytes] | None]] = []
        for entry_id in unknown:
            entries: Any = await self._redis.xrange(self._stream, min=entry_id, max=entry_id)
            out.append((entry_id, entries[0][1] if entries else None))
        return out

    async def _intake(self) -> None:
        """Register new entries and unknown pending ones, by priority."""
        entries: list[tuple[str, dict[bytes, bytes] | None]] = []
        while True:
            reply: Any = await self._redis.xreadgroup(
                GROUP_REVIEWERS, INTAKE, {self._stream: ">"}, count=500
            )
            batch = [(_text(i), f) for _, items in reply or [] for i, f in items]
            entries.extend(batch)
            if len(batch) < 500:
                break
        entries.extend(await self._recovered())
        if not entries:
            return
        async with connected_pipeline(self._redis) as pipe:
            for entry_id, fields in entries:
                if fields is None:  # deleted from the stream (trimmed): nothing to review
                    pipe.xack(self._stream, GROUP_REVIEWERS, entry_id)
                    continue
                item = _review_item(fields)
                priority, tags = (item.priority, _tags(item)) if item else (0.0, "")
                state: dict[str, Any] = {
                    "need": self._config.reviewers_per_item,
                    "candidate": review_blind.draw_candidate_side(),
                    "votes": {},
                    "held": {},
                }
                args: list[str | float | bytes] = [entry_id, priority, tags, orjson.dumps(state)]
                await self._register(keys=self._keys, args=args, client=pipe)
            await pipe.execute()

    async def _state(self, entry_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(self._items, entry_id)
        state: dict[str, Any] | None = orjson.loads(raw) if raw else None
        return state

    async def claim(self, reviewer: str, *, tag: str = "") -> Claimed | None:
        """Lease the highest-priority item `reviewer` has not judged, optionally only items
        with `tag` (`route:/v1/chat/completions`, `flag:refusal`); None when there is none."""
        await self._intake()
        now_ms = int(time.time() * 1000)
        args: list[str | int] = [
            GROUP_REVIEWERS,
            reviewer,
            now_ms,
            self._lease_ms,
            tag,
            CLAIM_WINDOW,
        ]
        entry_id = await self._claim(keys=self._keys, args=args)
        if entry_id is None:
            return None
        entry_id = _text(entry_id)
        entries: Any = await self._redis.xrange(self._stream, min=entry_id, max=entry_id)
        fields = entries[0][1] if entries else {}
        state = await self._state(entry_id) or {}
        return Claimed(
            id=entry_id,
            item=orjson.loads(fields.get(b"data", b"{}")),
            lease_expires_at=(now_ms + self._lease_ms) / 1000,
            candidate_side=state.get("candidate", "A"),
            reviewers_per_item=state.get("need", 1),
        )

    async def verdict(
        self,
        reviewer: str,
        entry_id: str,
        *,
        label: str | None = None,
        choice: str | None = None,
        tags: list[str],
        note: str | None,
    ) -> Outcome:
        """Record a verdict (a label, or a blind choice) on an item `reviewer` holds; raises
        ReviewConflict otherwise."""
        entries: Any = await self._redis.xrange(self._stream, min=entry_id, max=entry_id)
        if not entries:
            raise ReviewConflict("no such item")
        item = _review_item(entries[0][1])
        # Without a state the script refuses the verdict; the record below is never written.
        state = await self._state(entry_id) or {}
        candidate_side = state.get("candidate", "A")
        if choice is not None:
            label = review_blind.label_for(choice, candidate_side)
        if label is None:
            raise ValueError("a verdict needs a label or a choice")
        claimed_ms = ((state.get("held") or {}).get(reviewer) or [0])[0]
        now = time.time()
        record = Verdict(
            item_id=entry_id,
            pair_id=item.pair.id if item else None,
            route=item.pair.route if item else None,
            label=label,
            choice=choice,
            sides=review_blind.sides(candidate_side) if choice is not None else None,
            tags=tags,
            note=note,
            reviewer=reviewer,
            reviewers_per_item=state.get("need", 1),
            claimed_at=claimed_ms / 1000,
            decided_at=now,
            item=item,
        )
        args: list[str | bytes | int] = [
            GROUP_REVIEWERS,
            reviewer,
            entry_id,
            int(now * 1000),
            record.to_json(),
            label,
            record.route or "unknown",
        ]
        reply: Any = await self._verdict(keys=self._keys, args=args)
        outcome = [_text(part) for part in reply]
        if outcome[0] == "finished":
            return Outcome(verdict=record, final_label=outcome[1], tied=outcome[2] == "1")
        if outcome[0] != "ok":
            raise ReviewConflict(_CONFLICTS[outcome[0]])
        return Outcome(verdict=record)

    async def release(self, reviewer: str, entry_id: str) -> None:
        """Give an item back to the queue; raises ReviewConflict if `reviewer` does not hold it."""
        args: list[str | int] = [GROUP_REVIEWERS, reviewer, entry_id, int(time.time() * 1000)]
        outcome = _text(await self._release(keys=self._keys, args=args))
        if outcome != "ok":
            raise ReviewConflict("you do not hold this item")

    async def stats(self, reviewer: str | None = None) -> dict[str, Any]:
        """Queue depth, verdicts by label and route, final labels, agreement between
        reviewers, and per-reviewer counts (`you`: those of `reviewer`)."""
        await self._intake()
        now_ms = int(time.time() * 1000)
        await self._reap(keys=self._keys, args=[now_ms])
        queued = await self._redis.zcard(self._queue)
        in_review = await self._redis.zcount(self._expiry, now_ms, "+inf")
        done = await self._redis.xlen(self._verdicts)
        counters = {_text(k): int(v) for k, v in (await self._redis.hgetall(self._stats)).items()}
        durations = [int(v) for v in await self._redis.lrange(self._durations, 0, -1)]
        by_label = {
            k.removeprefix(STAT_LABEL): v for k, v in counters.items() if k.startswith(STAT_LABEL)
        }
        final = {x: counters[STAT_FINAL + x] for x in LABELS if STAT_FINAL + x in counters}
        by_route: dict[str, dict[str, int]] = {}
        for key, value in counters.items():
            if key.startswith(STAT_ROUTE):
                route, label = key.removeprefix(STAT_ROUTE).rsplit(":", 1)
                by_route.setdefault(route, {})[label] = value
        raw_agreement = await self._redis.hgetall(self._agreement)
        per_reviewer = reviewers(raw_agreement)
        empty = {"verdicts": 0, "finished": 0, "with_majority": 0, "agreement_with_majority": None}
        return {
            "mode": self._config.mode,
            "reviewers_per_item": self._config.reviewers_per_item,
            "queued": queued,
            "in_review": in_review,
            "done": done,
            "verdicts": by_label,
            "verdicts_by_route": by_route,
            "median_seconds_to_verdict": statistics.median(durations) / 1000 if durations else None,
            "finished": sum(final.values()),
            "final_labels": final,
            "final_ties": counters.get(STAT_FINAL_TIED, 0),
            "agreement": agreement(raw_agreement, self._config.reviewers_per_item),
            "reviewers": per_reviewer,
            "you": per_reviewer.get(reviewer, empty) if reviewer else None,
        }
