"""Gathers `shadowgate report`: what production, the canary and the shadow arm did over one
window, read from Redis alone: the per-arm buckets every replica flushes (all requests, and
what became of the mirrors), and the pairs, scores and verdicts streams (mirrored requests).
The result is a `model.Report`; rendering is `table.py`'s, `plots.py`'s and `html.py`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from gateway.config import Config, UpstreamConfig
from gateway.constants import (
    ARM_CANARY,
    ARM_PRODUCTION,
    ARM_SHADOW,
    KEY_PAIRS,
    KEY_SCORES,
    KEY_VERDICTS,
    STREAM_FIELD,
)
from gateway.keys import Keys
from gateway.proxy.arm_stats import (
    FIELD_MIRROR,
    FIELD_PAIRS_DEAD_LETTER,
    FIELD_PAIRS_DROPPED,
    FIELD_PAIRS_LOST,
    FIELD_PAIRS_PUBLISHED,
    LATENCY_BOUNDS,
    ArmStats,
    latency_bucket,
    prompt_counts,
)
from gateway.proxy.prompt_features import FEATURES
from gateway.records import Exchange, PairRecord, ScoreRecord
from gateway.report.model import (
    ArmReport,
    Divergence,
    DriftRow,
    FlagCounts,
    PairAccount,
    Quantiles,
    Report,
)
from gateway.rollout.controller import RolloutState
from scoring.backlog import BacklogMeter
from scoring.drift import feature_psi, samples
from scoring.heartbeat import alive_workers
from scoring.stats import wilson

_PAGE = 1000
_T = TypeVar("_T")


class _Verdict(BaseModel):
    label: str


def histogram_quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile of a LATENCY_BOUNDS histogram, interpolated linearly inside its bucket
    (as Prometheus' histogram_quantile); inf when it falls in the open last bucket."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for b, count in enumerate(counts):
        if count and seen + count >= rank:
            if b >= len(LATENCY_BOUNDS):
                return float("inf")
            lower = LATENCY_BOUNDS[b - 1] if b else 0.0
            return lower + (LATENCY_BOUNDS[b] - lower) * (rank - seen) / count
        seen += count
    return float("inf")


def _from_histogram(counts: Sequence[int]) -> Quantiles:
    p50, p95, p99 = (histogram_quantile(counts, q) for q in (0.5, 0.95, 0.99))
    return Quantiles(p50=p50, p95=p95, p99=p99)


def _from_values(values: Sequence[float]) -> Quantiles:
    if not values:
        return Quantiles()
    p50, p95, p99 = (float(v) for v in np.quantile(values, [0.5, 0.95, 0.99]))
    return Quantiles(p50=p50, p95=p95, p99=p99)


def _interval(errors: int, requests: int) -> tuple[float, float] | None:
    return wilson(errors, requests, 0.95) if requests else None


def _series(window: Counter[str], arm: str, kind: str) -> list[int]:
    return [window[f"{arm}:{kind}:{b}"] for b in range(len(LATENCY_BOUNDS) + 1)]


def _counted_arm(window: Counter[str], arm: str) -> ArmReport:
    requests, errors = window[f"{arm}:requests"], window[f"{arm}:errors"]
    latency = _series(window, arm, "lat")
    return ArmReport(
        arm=arm,
        source="all requests",
        requests=requests,
        errors=errors,
        error_interval=_interval(errors, requests),
        latency_s=_from_histogram(latency),
        ttfb_s=_from_histogram(_series(window, arm, "ttfb")),
        latency_buckets=latency,
    )


def _add_usage(
    report: ArmReport,
    exchanges: Iterable[tuple[str | None, Exchange]],
    upstream: UpstreamConfig | None,
) -> None:
    """Mean tokens and cost per request over the exchanges that reported usage; no cost
    unless every one of them has a price."""
    prompt = completion = 0
    cost, priced, n = 0.0, True, 0
    for model, exchange in exchanges:
        usage = exchange.usage
        if usage is None or usage.prompt_tokens is None or usage.completion_tokens is None:
            continue
        n += 1
        prompt += usage.prompt_tokens
        completion += usage.completion_tokens
        price = upstream.price(model) if upstream is not None else None
        if price is None:
            priced = False
        else:
            cost += price.cost_usd(usage.prompt_tokens, usage.completion_tokens)
    if n:
        report.usage_samples = n
        report.prompt_tokens, report.completion_tokens = prompt / n, completion / n
        report.cost_usd = cost / n if priced else None


def _is_error(exchange: Exchange) -> bool:
    return exchange.error is not None or exchange.status is None or exchange.status >= 500


def _shadow_arm(pairs: Sequence[PairRecord]) -> ArmReport:
    """The candidate's answers to mirrored requests."""
    answers = [p.candidate for p in pairs]
    errors = sum(1 for a in answers if _is_error(a))
    latencies = [a.latency_ms / 1000 for a in answers if a.latency_ms is not None]
    buckets = [0] * (len(LATENCY_BOUNDS) + 1)
    for seconds in latencies:
        buckets[latency_bucket(seconds)] += 1
    ttfb = [a.ttfb_ms / 1000 for a in answers if a.ttfb_ms is not None]
    return ArmReport(
        arm=ARM_SHADOW,
        source="mirrored requests",
        requests=len(answers),
        errors=errors,
        error_interval=_interval(errors, len(answers)),
        latency_s=_from_values(latencies),
        ttfb_s=_from_values(ttfb),
        latency_buckets=buckets,
    )


async def read_stream(
    redis: Redis, key: str, since: float, until: float, limit: int
) -> tuple[list[bytes], bool]:
    """Record payloads of a stream between two unix times, oldest first: the newest `limit`
    of them, and whether there were more."""
    payloads: list[bytes] = []
    top, bottom = str(int(until * 1000)), str(int(since * 1000))
    while (want := min(_PAGE, limit - len(payloads))) > 0:
        page: Any = await redis.xrevrange(key, max=top, min=bottom, count=want)
        payloads.extend(fields[STREAM_FIELD.encode()] for _, fields in page)
        if len(page) < want:
            return payloads[::-1], False
        last = page[-1][0]
        top = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    more = await redis.xrevrange(key, max=top, min=bottom, count=1)
    return payloads[::-1], bool(more)


def _parse(
    payloads: Iterable[bytes], parse: Callable[[bytes], _T], stream: str, unreadable: Counter[str]
) -> list[_T]:
    records: list[_T] = []
    for payload in payloads:
        try:
            records.append(parse(payload))
        except ValidationError:
            unreadable[stream] += 1
    return records


def _divergence(scores: Sequence[ScoreRecord], threshold: float) -> Divergence:
    flags: dict[str, FlagCounts] = {}
    for score in scores:
        for flag in score.candidate_flags:
            flags.setdefault(flag, FlagCounts()).candidate += 1
        for flag in score.production_flags:
            flags.setdefault(flag, FlagCounts()).production += 1
        for flag in score.new_flags:
            flags.setdefault(flag, FlagCounts()).new += 1
    return Divergence(
        scored=len(scores),
        semantic=[s.semantic for s in scores if s.semantic is not None],
        noise=[s.noise for s in scores if s.noise is not None],
        noise_floor=[s.noise_floor for s in scores if s.semantic is not None],
        excess=[s.excess for s in scores if s.excess is not None],
        threshold=threshold,
        queued=sum(1 for s in scores if s.queued),
        flags=dict(sorted(flags.items())),
    )


def _drift(window: Counter[str], previous: Counter[str]) -> tuple[list[DriftRow], dict[str, int]]:
    """PSI per prompt feature: the canary against production in the window, and all traffic
    in the window against the window just before it."""
    canary, production = prompt_counts(window, ARM_CANARY), prompt_counts(window, ARM_PRODUCTION)
    both = prompt_counts(window, ARM_CANARY, ARM_PRODUCTION)
    before = prompt_counts(previous, ARM_CANARY, ARM_PRODUCTION)
    beside, over_time = feature_psi(production, canary), feature_psi(before, both)
    rows = [
        DriftRow(feature=f, canary_vs_production=beside.get(f), vs_previous_window=over_time.get(f))
        for f in FEATURES
    ]
    counts = {
        "canary": samples(canary),
        "production": samples(production),
        "previous window": samples(before),
    }
    return rows, counts


def _fields(window: Counter[str], prefix: str) -> dict[str, int]:
    return {name[len(prefix) :]: n for name, n in sorted(window.items()) if name.startswith(prefix)}


def _pair_account(window: Counter[str]) -> PairAccount:
    return PairAccount(
        mirrors=_fields(window, FIELD_MIRROR),
        published=window[FIELD_PAIRS_PUBLISHED],
        dropped=_fields(window, FIELD_PAIRS_DROPPED),
        dead_lettered=window[FIELD_PAIRS_DEAD_LETTER],
        lost=_fields(window, FIELD_PAIRS_LOST),
    )


async def gather_report(
    redis: Redis, *, config: Config, since: float, until: float, max_records: int = 10_000
) -> Report:
    """Everything the report shows for the window [since, until] (unix times)."""
    keys = Keys.for_prefix(config.redis.key_prefix)
    # First, so that pairs trimmed unscored since the gateways last looked are counted.
    backlog = await BacklogMeter(redis=redis, keys=keys).measure()
    arm_stats = ArmStats(redis=redis, keys=keys)
    buckets = await arm_stats.buckets(since, until)
    window: Counter[str] = Counter()
    for _, counts in buckets:
        window.update(counts)
    first = buckets[0][0] if buckets else int(since)
    previous = await arm_stats.window(first - (until - since), first - 1)
    capped = []
    streams = {}
    for name, key in (
        (KEY_PAIRS, keys.pairs),
        (KEY_SCORES, keys.scores),
        (KEY_VERDICTS, keys.verdicts),
    ):
        streams[name], more = await read_stream(redis, key, since, until, max_records)
        if more:
            capped.append(name)
    unreadable: Counter[str] = Counter()
    pairs = _parse(streams[KEY_PAIRS], PairRecord.model_validate_json, KEY_PAIRS, unreadable)
    scores = _parse(streams[KEY_SCORES], ScoreRecord.model_validate_json, KEY_SCORES, unreadable)
    verdicts = _parse(streams[KEY_VERDICTS], _Verdict.model_validate_json, KEY_VERDICTS, unreadable)
    labels = Counter(v.label for v in verdicts)

    arms = [_counted_arm(window, ARM_PRODUCTION), _counted_arm(window, ARM_CANARY)]
    arms.append(_shadow_arm(pairs))
    upstreams = config.upstreams
    _add_usage(arms[0], ((p.model, p.production) for p in pairs), upstreams.production)
    _add_usage(
        arms[2], ((p.candidate_model or p.model, p.candidate) for p in pairs), upstreams.candidate
    )
    models = Counter((p.model or "-", p.candidate_model or p.model or "-") for p in pairs)
    arm_names = (ARM_PRODUCTION, ARM_CANARY)
    timeline = [
        (
            start,
            {
                f"{arm}:{kind}": counts[f"{arm}:{kind}"]
                for arm in arm_names
                for kind in ("requests", "errors")
            },
        )
        for start, counts in buckets
    ]
    drift, drift_samples = _drift(window, previous)
    account = _pair_account(window)
    account.waiting, account.oldest_age_s = backlog.waiting, backlog.oldest_age_s
    raw_state = await redis.get(keys.rollout)
    workers = await alive_workers(redis, keys)
    return Report(
        since=since,
        until=until,
        arms=arms,
        timeline=timeline,
        divergence=_divergence(scores, config.scoring.review_threshold),
        pairs=account,
        verdicts=dict(sorted(labels.items())),
        drift=drift,
        drift_samples=drift_samples,
        psi_threshold=config.rollout.psi_threshold,
        rollout=RolloutState.model_validate(orjson.loads(raw_state)) if raw_state else None,
        models=[(prod, cand, n) for (prod, cand), n in models.most_common()],
        capped=capped,
        unreadable=dict(unreadable),
        workers_alive=len(workers),
    )
