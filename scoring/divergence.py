"""Divergence signals of one pair: semantic distance corrected for production's own noise,
behavioural flags (empty, refusal, error, truncation, invalid JSON, length), and the evidence
the content signals found (`scoring.signals`), gated by production's own noise."""

from __future__ import annotations

import re
import time
from collections import defaultdict, deque
from typing import Final

import numpy as np
import numpy.typing as npt
import orjson

from gateway.config import ScoringConfig
from gateway.records import SEVERITY_RANK, Exchange, PairRecord, ScoreRecord
from scoring.signals.detect import Detector
from scoring.signals.gate import NO_CONTENT, EvidenceNoise, PairSignals, flag_evidence, pair_signals

# Openings and phrases of refusals, as models commonly word them.
REFUSAL_PHRASES: Final = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'|no)t|am unable to|won't)",
    r"\bI can(?:'|no)t (?:help|assist|comply|provide|do that)",
    r"\bI(?:'m| am) (?:not able|unable) to (?:help|assist|comply|provide)",
    r"\bI won't be able to (?:help|assist)",
    r"\bAs an AI(?: language model)?, I (?:can(?:'|no)t|am unable|don't)",
    r"\bI must (?:decline|refuse)",
)


def cosine_distance(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """1 - cosine of two unit vectors, clipped to [0, 2]."""
    return float(min(2.0, max(0.0, 1.0 - float(np.dot(a, b)))))


class NoiseFloor:
    """A rolling per-route quantile of production-vs-production divergences."""

    def __init__(self, *, window: int, quantile: float) -> None:
        self._samples: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._quantile = quantile

    def add(self, route: str, value: float) -> None:
        self._samples[route].append(value)

    def floor(self, route: str) -> float:
        samples = self._samples.get(route)
        if not samples:
            return 0.0
        return float(np.quantile(np.fromiter(samples, dtype=np.float64), self._quantile))


class Flagger:
    """Behavioural flags of one side of a pair."""

    def __init__(self, config: ScoringConfig) -> None:
        self._refusal = re.compile("|".join((*REFUSAL_PHRASES, *config.refusal_patterns)), re.I)

    def flags(self, side: Exchange, *, wants_json: bool) -> list[str]:
        if side.error == "timeout":
            return ["timeout"]
        if side.error or side.status is None or side.status >= 400:
            return ["error"]
        text = (side.text or "").strip()
        flags = []
        if not text:
            flags.append("empty")
        elif self._refusal.search(text[:400]):
            flags.append("refusal")
        if side.finish_reason == "length":
            flags.append("truncated")
        if wants_json and text:
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                flags.append("invalid_json")
        return flags


def wants_json(request: object) -> bool:
    if not isinstance(request, dict):
        return False
    fmt = request.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def signals_of(pair: PairRecord, *, detector: Detector, flagger: Flagger) -> PairSignals:
    """What the content signals find in a pair (pure and CPU-bound: run it off the loop).
    After a refusal, an empty answer or an error only structure is compared."""
    json_wanted = wants_json(pair.request)
    flags = {
        *flagger.flags(pair.candidate, wants_json=json_wanted),
        *flagger.flags(pair.production, wants_json=json_wanted),
    }
    return pair_signals(
        pair, detector, wants_json=json_wanted, skip_content=bool(flags & NO_CONTENT)
    )


def _tokens(side: Exchange) -> int | None:
    return side.usage.completion_tokens if side.usage else None


def score_pair(
    pair: PairRecord,
    vectors: dict[str, npt.NDArray[np.float32]],
    *,
    config: ScoringConfig,
    flagger: Flagger,
    noise_floor: NoiseFloor,
    signals: PairSignals | None = None,
    evidence_noise: EvidenceNoise | None = None,
) -> ScoreRecord:
    """Score one pair from the embeddings of its texts (`production`, `candidate`, `noise`)
    and, when given, what the signals found in it (`scoring.signals.gate.pair_signals`)."""
    json_wanted = wants_json(pair.request)
    production_flags = flagger.flags(pair.production, wants_json=json_wanted)
    candidate_flags = flagger.flags(pair.candidate, wants_json=json_wanted)
    semantic = noise = None
    if "production" in vectors and "candidate" in vectors:
        semantic = cosine_distance(vectors["candidate"], vectors["production"])
    if "production" in vectors and "noise" in vectors:
        noise = cosine_distance(vectors["noise"], vectors["production"])
        noise_floor.add(pair.route, noise)
    floor = noise if noise is not None else noise_floor.floor(pair.route)
    excess = semantic - floor if semantic is not None else None
    prod_words = len((pair.production.text or "").split())
    cand_words = len((pair.candidate.text or "").split())
    length_ratio = cand_words / prod_words if prod_words else None
    low, high = config.length_ratio_bounds
    if length_ratio is not None and not low <= length_ratio <= high and cand_words:
        candidate_flags.append("length_ratio")
    latency_delta = (
        pair.candidate.latency_ms - pair.production.latency_ms
        if pair.candidate.latency_ms is not None and pair.production.latency_ms is not None
        else None
    )
    prod_tokens, cand_tokens = _tokens(pair.production), _tokens(pair.candidate)
    token_delta = (
        cand_tokens - prod_tokens if cand_tokens is not None and prod_tokens is not None else None
    )
    record = ScoreRecord(
        pair_id=pair.id,
        ts=time.time(),
        route=pair.route,
        model=pair.model,
        unit=pair.unit,
        semantic=semantic,
        noise=noise,
        noise_floor=floor,
        excess=excess,
        production_flags=production_flags,
        candidate_flags=candidate_flags,
        length_ratio=length_ratio,
        latency_delta_ms=latency_delta,
        token_delta=token_delta,
    )
    if signals is not None:
        found = evidence_noise.judge(pair.route, signals) if evidence_noise else signals.candidate
        record.evidence = flag_evidence(record.new_flags, pair.candidate.text) + found
    least = SEVERITY_RANK[config.detection.queue_severity]
    reasons = (
        [
            f"flag:{e.kind}"
            for e in record.evidence
            if e.kind in record.new_flags and SEVERITY_RANK[e.severity] >= least
        ]
        if signals is not None
        else [f"flag:{flag}" for flag in record.new_flags]
    )
    for kind in dict.fromkeys(
        e.kind
        for e in record.counted_evidence
        if SEVERITY_RANK[e.severity] >= least and e.kind not in record.new_flags
    ):
        reasons.append(f"evidence:{kind}")
    if excess is not None and excess > config.review_threshold:
        reasons.insert(0, f"excess {excess:.3f} > {config.review_threshold}")
    record.reasons = reasons
    record.queued = bool(reasons)
    return record


def priority(record: ScoreRecord) -> float:
    """Review order: pairs with evidence or new flags first, the most severe first (10 per
    severity step, so any of them outranks embedding-only divergence, which is at most 2),
    then by excess divergence. Within a severity, pairs the LLM judge called a regression
    come first."""
    rank = max((SEVERITY_RANK[e.severity] for e in record.counted_evidence), default=0)
    if record.new_flags:
        rank = max(rank, 1)
    judged = 5.0 if record.judge is not None and record.judge.label == "regression" else 0.0
    return 10.0 * rank + judged + (record.excess or 0.0)
