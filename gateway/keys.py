"""Every Redis key of one deployment, computed once from `redis.key_prefix`.

The names relative to the prefix are constants.py's (DESIGN.md fixes some of them); a `Keys`
joins them with the prefix, and the processes pass it to whatever reads or writes Redis, so
no module builds a key of its own and every process agrees on each name.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.constants import (
    KEY_AGGREGATES,
    KEY_ARM_BUCKET,
    KEY_ATTEMPTS,
    KEY_DEAD_LETTER,
    KEY_JUDGE_BUDGET,
    KEY_PAIRS,
    KEY_PUBLISHED,
    KEY_REVIEW,
    KEY_REVIEW_AGREEMENT,
    KEY_REVIEW_DURATIONS,
    KEY_REVIEW_EXPIRY,
    KEY_REVIEW_ITEMS,
    KEY_REVIEW_PRIORITY,
    KEY_REVIEW_QUEUE,
    KEY_REVIEW_STATS,
    KEY_REVIEW_TAGS,
    KEY_ROLLOUT,
    KEY_ROLLOUT_EPOCH,
    KEY_ROLLOUT_LOCK,
    KEY_SCORES,
    KEY_TRAFFIC,
    KEY_VERDICTS,
    KEY_WORKER_HEARTBEAT,
    KEY_WORKERS,
)


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key under `prefix`: `Keys.for_prefix("sg:").pairs == "sg:pairs"`."""

    prefix: str
    pairs: str
    """Stream of scrubbed pair records: the publisher writes, the scoring workers read."""
    published: str
    """Running count of pairs published: the `seq` of the stream's newest entry."""
    attempts: str
    """Hash: how often scoring each pending entry failed."""
    dead_letter: str
    """Stream of entries that failed `scoring.max_attempts` times or could not be parsed."""
    scores: str
    """Stream of every score."""
    aggregates: str
    """Hash of the counts every worker adds up (fields in scoring/aggregates.py)."""
    review: str
    """Stream of review items, consumer group `reviewers`."""
    review_queue: str
    """Sorted set of the items on offer, by priority."""
    review_items: str
    """Hash: each item's review state (votes and leases) as JSON."""
    review_expiry: str
    """Sorted set of live leases (`id|reviewer`) by expiry."""
    review_priority: str
    """Hash: each item's priority."""
    review_tags: str
    """Hash: each item's filterable tags."""
    review_stats: str
    """Hash of verdict counts (fields in review/scripts.py); the rollout judge reads it."""
    review_agreement: str
    """Hash of the running sums behind the reviewers' agreement (kappa)."""
    review_durations: str
    """List of the latest claim-to-verdict times (ms)."""
    verdicts: str
    """Stream of every verdict: the golden set is exported from it."""
    traffic: str
    """Hash: the live split, shared by every replica."""
    rollout: str
    """The rollout's state (JSON)."""
    rollout_lock: str
    """The rollout leader's lock."""
    rollout_epoch: str
    """The fencing epoch of the rollout lock."""
    workers: str
    """Set of scoring worker names; each has a heartbeat key, `worker(name)`."""
    judge_budget: str
    """The LLM judge's shared budget; its minute and day counters hang below it."""

    @classmethod
    def for_prefix(cls, prefix: str) -> Keys:
        """Every key under `prefix` (`redis.key_prefix`)."""
        return cls(
            prefix=prefix,
            pairs=prefix + KEY_PAIRS,
            published=prefix + KEY_PUBLISHED,
            attempts=prefix + KEY_ATTEMPTS,
            dead_letter=prefix + KEY_DEAD_LETTER,
            scores=prefix + KEY_SCORES,
            aggregates=prefix + KEY_AGGREGATES,
            review=prefix + KEY_REVIEW,
            review_queue=prefix + KEY_REVIEW_QUEUE,
            review_items=prefix + KEY_REVIEW_ITEMS,
            review_expiry=prefix + KEY_REVIEW_EXPIRY,
            review_priority=prefix + KEY_REVIEW_PRIORITY,
            review_tags=prefix + KEY_REVIEW_TAGS,
            review_stats=prefix + KEY_REVIEW_STATS,
            review_agreement=prefix + KEY_REVIEW_AGREEMENT,
            review_durations=prefix + KEY_REVIEW_DURATIONS,
            verdicts=prefix + KEY_VERDICTS,
            traffic=prefix + KEY_TRAFFIC,
            rollout=prefix + KEY_ROLLOUT,
            rollout_lock=prefix + KEY_ROLLOUT_LOCK,
            rollout_epoch=prefix + KEY_ROLLOUT_EPOCH,
            workers=prefix + KEY_WORKERS,
            judge_budget=prefix + KEY_JUDGE_BUDGET,
        )

    def worker(self, name: str) -> str:
        """The heartbeat key of the scoring worker `name` (it expires when the beats stop)."""
        return self.prefix + KEY_WORKER_HEARTBEAT + name

    def arm_bucket(self, start: int) -> str:
        """The hash of per-arm counts of the 10-second bucket that begins at `start`."""
        return self.prefix + KEY_ARM_BUCKET + str(start)
