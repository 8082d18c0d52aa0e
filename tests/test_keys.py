"""Every Redis key comes from one `Keys` value: the names DESIGN.md fixes, and the ones each
writer and reader agree on (the review stats the verdict script counts are the ones the
queue's stats and the rollout judge read)."""

from __future__ import annotations

import dataclasses
import time

from gateway.config import RedisConfig, ReviewConfig, RolloutConfig
from gateway.keys import Keys
from gateway.proxy.arm_stats import ArmStats, bucket_key
from gateway.proxy.traffic import TrafficSplit, TrafficState
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from gateway.review.queue import ReviewQueue
from gateway.rollout.controller import RolloutController

# Every key under the default prefix, as the deployments running today name them.
NAMES = {
    "pairs": "shadowgate:pairs",
    "published": "shadowgate:pairs:published",
    "attempts": "shadowgate:pairs:attempts",
    "dead_letter": "shadowgate:pairs:dead",
    "scores": "shadowgate:scores",
    "aggregates": "shadowgate:aggregates",
    "review": "shadowgate:review",
    "review_queue": "shadowgate:review:queue",
    "review_items": "shadowgate:review:items",
    "review_expiry": "shadowgate:review:expiry",
    "review_priority": "shadowgate:review:priority",
    "review_tags": "shadowgate:review:tags",
    "review_stats": "shadowgate:review:stats",
    "review_agreement": "shadowgate:review:agreement",
    "review_durations": "shadowgate:review:durations",
    "verdicts": "shadowgate:verdicts",
    "traffic": "shadowgate:traffic",
    "rollout": "shadowgate:rollout",
    "rollout_lock": "shadowgate:rollout:lock",
    "rollout_epoch": "shadowgate:rollout:epoch",
    "workers": "shadowgate:workers",
    "judge_budget": "shadowgate:judge:budget",
}


def test_keys_of_the_default_prefix_are_the_names_the_design_fixes() -> None:
    keys = Keys.for_prefix(RedisConfig().key_prefix)
    # DESIGN.md: pairs, scores, review, verdicts and traffic under the prefix `shadowgate:`.
    design = {name: getattr(keys, name) for name in ("pairs", "scores", "review", "verdicts")}
    assert design == {name: f"shadowgate:{name}" for name in design}
    assert keys.traffic == "shadowgate:traffic"
    fields = {f.name: getattr(keys, f.name) for f in dataclasses.fields(keys) if f.name != "prefix"}
    assert fields == NAMES
    assert keys.worker("w1") == "shadowgate:workers:w1"
    assert keys.arm_bucket(1700000000) == "shadowgate:arms:1700000000"
    assert bucket_key(keys, 1700000009.5) == "shadowgate:arms:1700000000"


def test_keys_of_another_prefix_differ_only_by_the_prefix() -> None:
    keys = Keys.for_prefix("sg7:")
    for name, default in NAMES.items():
        assert getattr(keys, name) == "sg7:" + default.removeprefix("shadowgate:")
    assert keys.worker("w1") == "sg7:workers:w1"


async def test_review_stats_the_verdict_script_writes_are_what_queue_and_rollout_read(
    redis_url: str,
) -> None:
    keys = Keys.for_prefix("keys-test:")
    redis = connect(RedisConfig(), redis_url)
    queue = ReviewQueue(redis=redis, keys=keys, config=ReviewConfig())
    traffic = TrafficState(
        initial=TrafficSplit(), redis=redis, key=keys.traffic, poll_s=1.0, has_candidate=True
    )
    rollout = RolloutController(
        redis=redis,
        keys=keys,
        config=RolloutConfig(),
        traffic=traffic,
        arm_stats=ArmStats(redis=redis, keys=keys),
        replica="r1",
    )
    try:
        await queue.ensure_group()
        pair = PairRecord(
            id="p1",
            ts=time.time(),
            route="/v1/chat/completions",
            production=Exchange(status=200, text="Paris."),
            candidate=Exchange(status=200, text="Lyon."),
        )
        score = ScoreRecord(pair_id="p1", ts=pair.ts, route=pair.route, excess=0.4, queued=True)
        item = ReviewItem(pair=pair, score=score, priority=0.4)
        await redis.xadd(keys.review, {"data": item.to_json()})
        claimed = await queue.claim("ann")
        assert claimed is not None
        outcome = await queue.verdict("ann", claimed.id, label="regression", tags=[], note=None)
        assert outcome.final_label == "regression"

        written = await redis.hgetall(keys.review_stats)
        assert written[b"final:regression"] == b"1"
        stats = await queue.stats()
        assert stats["final_labels"] == {"regression": 1}
        assert stats["verdicts_by_route"] == {"/v1/chat/completions": {"regression": 1}}
        # A rollout step starts from the verdicts counted so far: it read the same hash.
        state = await rollout.start()
        assert state.baseline["verdict:final:regression"] == 1.0
        assert state.baseline["verdict:label:regression"] == 1.0
    finally:
        await redis.aclose()
