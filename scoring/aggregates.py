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

# Fields of the aggregates hash. `aggregate_fields` writes the scoring ones (per route as
# `route:<route>:scored|queued`); the worker's scripts add dead letters and pairs lost by
# reason, the backlog meter's pairs trimmed unscored. /metrics and the rollout judge read them.
AGG_SCORED: Final = "scored"
AGG_QUEUED: Final = "queued"
AGG_ROUTE: Final = "route:"
AGG_FLAG: Final = "flag:"
AGG_JUDGE_VERDICT: Final = "judge:verdict:"
AGG_JUDGE_SKIPPED: Final = "judge:skipped:"
AGG_JUDGE_COST_USD: Final = "judge:cost_usd"
AGG_EXCESS_BUCKET: Final = "excess_bucket:"
AGG_EXCESS_SUM: Final = "excess_sum"
AGG_EXCESS_COUNT: Final = "excess_count"
AGG_DEAD_LETTER: Final = "dead_letter"
AGG_LOST: Final = "lost:"


def _bucket(value: float) -> str:
    for bound in BUCKETS:
        if value <= bound:
            return f"{bound:g}"
    return "+Inf"


def aggregate_fields(score: ScoreRecord) -> dict[str, float]:
    """Hash fields to increment for one score."""
    route = f"{AGG_ROUTE}{score.route}:"
    fields: dict[str, float] = {AGG_SCORED: 1, route + AGG_SCORED: 1}
    if score.queued:
        fields[AGG_QUEUED] = 1
        fields[route + AGG_QUEUED] = 1
    for flag in score.new_flags:
        fields[AGG_FLAG + flag] = 1
    if score.judge is not None:
        verdict = score.judge
        fields[
            f"{AGG_JUDGE_VERDICT}{verdict.label}"
            if verdict.label
            else f"{AGG_JUDGE_SKIPPED}{verdict.skipped}"
        ] = 1
        if verdict.cost_usd:
            fields[AGG_JUDGE_COST_USD] = round(verdict.cost_usd, 9)
    if score.excess is not None:
        fields[AGG_EXCESS_BUCKET + _bucket(score.excess)] = 1
        fields[AGG_EXCESS_SUM] = round(score.excess, 6)
        fields[AGG_EXCESS_COUNT] = 1
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
        if name.startswith(AGG_ROUTE):
            route, _, count = name.removeprefix(AGG_ROUTE).rpartition(":")
            if count == AGG_SCORED:
                scored.add_metric([route], value)
            elif count == AGG_QUEUED:
                queued.add_metric([route], value)
        elif name.startswith(AGG_FLAG):
            flags.add_metric([name.removeprefix(AGG_FLAG).split(":")[0]], value)
    dead = CounterMetricFamily(
        "shadowgate_scoring_dead_letter", "Pair records moved to the dead-letter stream"
    )
    dead.add_metric([], snapshot.get(AGG_DEAD_LETTER, 0.0))
    cumulative = 0.0
    buckets = []
    for bound in BUCKETS:
        cumulative += snapshot.get(f"{AGG_EXCESS_BUCKET}{bound:g}", 0.0)
        buckets.append((f"{bound:g}", cumulative))
    cumulative += snapshot.get(AGG_EXCESS_BUCKET + "+Inf", 0.0)
    buckets.append(("+Inf", cumulative))
    histogram = HistogramMetricFamily(
        "shadowgate_divergence_excess",
        "Semantic divergence above the noise floor of scored pairs",
        buckets=buckets,
        sum_value=snapshot.get(AGG_EXCESS_SUM, 0.0),
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
            AGG_JUDGE_VERDICT,
        ),
        (
            "skipped",
            "Scored pairs the LLM judge gave no verdict, by reason",
            "reason",
            JUDGE_SKIPS,
            AGG_JUDGE_SKIPPED,
        ),
    ):
        family = CounterMetricFamily(f"shadowgate_judge_{name}", doc, labels=[label])
        for value in values:
            family.add_metric([value], snapshot.get(field + value, 0.0))
        families.append(family)
    cost = CounterMetricFamily("shadowgate_judge_cost_usd", "USD spent on LLM judge calls")
    cost.add_metric([], snapshot.get(AGG_JUDGE_COST_USD, 0.0))
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
