"""Aggregates of scoring kept in one Redis hash, so any number of workers add up and the
gateway's /metrics (and the rollout judge) read one place: counts, flag counts, and a
divergence histogram, in total and by route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.constants import JUDGE_LABELS, JUDGE_SKIPS
from gateway.records import ScoreRecord

# Upper bounds of the excess-divergence histogram buckets.
BUCKETS: Final = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


def _bucket(value: float) -> str:
    for bound in BUCKETS:
        if value <= bound:
            return f"{bound:g}"
    return "+Inf"


def aggregate_fields(score: ScoreRecord) -> dict[str, float]:
    """Hash fields to increment for one score."""
    fields: dict[str, float] = {"scored": 1, f"route:{score.route}:scored": 1}
    if score.queued:
        fields["queued"] = 1
        fields[f"route:{score.route}:queued"] = 1
    for flag in score.new_flags:
        fields[f"flag:{flag}"] = 1
    if score.judge is not None:
        verdict = score.judge
        fields[
            f"judge:verdict:{verdict.label}"
            if verdict.label
            else f"judge:skipped:{verdict.skipped}"
        ] = 1
        if verdict.cost_usd:
            fields["judge:cost_usd"] = round(verdict.cost_usd, 9)
    if score.excess is not None:
        fields[f"excess_bucket:{_bucket(score.excess)}"] = 1
        fields["excess_sum"] = round(score.excess, 6)
        fields["excess_count"] = 1
    return fields


async def load_snapshot(redis: Redis, key: str) -> dict[str, float]:
    """The aggregates hash as numbers."""
    raw = await redis.hgetall(key)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


def metric_families(snapshot: dict[str, float], review_depth: float | None) -> list[Metric]:
    """Prometheus metrics for a snapshot of the aggregates."""
    scored = CounterMetricFamily("shadowgate_scored", "Pairs scored, by route", labels=["route"])
    queued = CounterMetricFamily(
        "shadowgate_review_queued", "Pairs queued for review, by route", labels=["route"]
    )
    flags = CounterMetricFamily(
        "shadowgate_flags",
        "Behavioural flags the candidate raised and production did not",
        labels=["flag"],
    )
    for name, value in snapshot.items():
        parts = name.split(":")
        if parts[0] == "route" and parts[-1] == "scored":
            scored.add_metric([":".join(parts[1:-1])], value)
        elif parts[0] == "route" and parts[-1] == "queued":
            queued.add_metric([":".join(parts[1:-1])], value)
        elif parts[0] == "flag":
            flags.add_metric([parts[1]], value)
    dead = CounterMetricFamily(
        "shadowgate_scoring_dead_letter", "Pair records moved to the dead-letter stream"
    )
    dead.add_metric([], snapshot.get("dead_letter", 0.0))
    cumulative = 0.0
    buckets = []
    for bound in BUCKETS:
        cumulative += snapshot.get(f"excess_bucket:{bound:g}", 0.0)
        buckets.append((f"{bound:g}", cumulative))
    cumulative += snapshot.get("excess_bucket:+Inf", 0.0)
    buckets.append(("+Inf", cumulative))
    histogram = HistogramMetricFamily(
        "shadowgate_divergence_excess",
        "Semantic divergence above the noise floor of scored pairs",
        buckets=buckets,
        sum_value=snapshot.get("excess_sum", 0.0),
    )
    families: list[Metric] = [scored, queued, flags, dead, histogram, *_judge_families(snapshot)]
    if review_depth is not None:
        gauge = GaugeMetricFamily(
            "shadowgate_review_queue_depth", "Items in the review stream not yet acknowledged"
        )
        gauge.add_metric([], review_depth)
        families.append(gauge)
    return families


def _judge_families(snapshot: dict[str, float]) -> list[Metric]:
    """The LLM judge's verdicts, skips by reason and spend (zero while it is off)."""
    families: list[Metric] = []
    for name, doc, label, values, field in (
        (
            "verdicts",
            "Scored pairs the LLM judge gave a verdict, by label",
            "label",
            JUDGE_LABELS,
            "judge:verdict:",
        ),
        (
            "skipped",
            "Scored pairs the LLM judge gave no verdict, by reason",
            "reason",
            JUDGE_SKIPS,
            "judge:skipped:",
        ),
    ):
        family = CounterMetricFamily(f"shadowgate_judge_{name}", doc, labels=[label])
        for value in values:
            family.add_metric([value], snapshot.get(field + value, 0.0))
        families.append(family)
    cost = CounterMetricFamily("shadowgate_judge_cost_usd", "USD spent on LLM judge calls")
    cost.add_metric([], snapshot.get("judge:cost_usd", 0.0))
    return [*families, cost]


class SnapshotCollector(Collector):
    """Exposes the last snapshot a background refresh stored (collect() cannot do I/O)."""

    def __init__(self) -> None:
        self.snapshot: dict[str, float] = {}
        self.review_depth: float | None = None

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self.snapshot, self.review_depth)


async def review_depth(redis: Redis, stream: str, group: str) -> float:
    """Review items waiting or in review: pending in the group plus not yet delivered."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return 0.0  # no stream yet
    for info in groups:
        name = info["name"]
        if (name.decode() if isinstance(name, bytes) else name) != group:
            continue
        last = info["last-delivered-id"]
        last = last.decode() if isinstance(last, bytes) else last
        undelivered = await redis.xrange(stream, min=f"({last}", count=10_000) or []
        return float(info["pending"] + len(undelivered))
    return float(await redis.xlen(stream))
