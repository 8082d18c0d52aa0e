"""Divergence signals: behavioural flags, the noise floor and the queueing decision."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gateway.config import ScoringConfig
from gateway.records import Exchange, PairRecord, Usage
from scoring.divergence import Flagger, NoiseFloor, priority, score_pair, signals_of
from scoring.embedder import default_tokenizer_path
from scoring.signals.detect import Detector, load_vocabulary
from scoring.signals.gate import EvidenceNoise, PairSignals

CONFIG = ScoringConfig(review_threshold=0.15)


def exchange(text: str | None = "A fine answer.", **fields: Any) -> Exchange:
    return Exchange(
        **{"status": 200, "text": text, "finish_reason": "stop", "latency_ms": 100.0, **fields}
    )


def pair(candidate: Exchange, production: Exchange | None = None, **fields: Any) -> PairRecord:
    return PairRecord(
        id="p1",
        ts=0.0,
        route="/v1/chat/completions",
        production=production or exchange(),
        candidate=candidate,
        **fields,
    )


def unit(angle: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


def score(p: PairRecord, vectors: dict[str, Any], floor: NoiseFloor | None = None) -> Any:
    return score_pair(
        p,
        vectors,
        config=CONFIG,
        flagger=Flagger(CONFIG),
        noise_floor=floor or NoiseFloor(window=10, quantile=0.9),
    )


@pytest.mark.parametrize(
    ("candidate", "flag"),
    [
        (exchange(""), "empty"),
        (exchange("I'm sorry, but I can't help with that."), "refusal"),
        (exchange(finish_reason="length"), "truncated"),
        (Exchange(status=500, error=None), "error"),
        (Exchange(error="timeout"), "timeout"),
    ],
)
def test_behavioural_flags_queue_the_pair(candidate: Exchange, flag: str) -> None:
    result = score(pair(candidate), {"production": unit(0), "candidate": unit(0)})
    assert flag in result.candidate_flags
    assert result.queued
    assert f"flag:{flag}" in result.reasons


def test_flags_production_shares_do_not_queue() -> None:
    refusal = exchange("I'm sorry, but I can't help with that.")
    result = score(pair(refusal, production=refusal), {"production": unit(0), "candidate": unit(0)})
    assert result.candidate_flags == ["refusal"]
    assert not result.queued


def test_invalid_json_only_matters_when_json_was_asked_for() -> None:
    request = {"response_format": {"type": "json_object"}}
    asked = score(pair(exchange("not json"), request=request), {})
    not_asked = score(pair(exchange("not json")), {})
    assert "invalid_json" in asked.candidate_flags
    assert "invalid_json" not in not_asked.candidate_flags


def test_excess_subtracts_the_pairs_own_noise_sample() -> None:
    vectors = {"production": unit(0), "candidate": unit(0.8), "noise": unit(0.7)}
    result = score(pair(exchange(), noise=exchange()), vectors)
    assert result.semantic == pytest.approx(1 - np.cos(0.8), abs=1e-5)
    assert result.noise == pytest.approx(1 - np.cos(0.7), abs=1e-5)
    assert result.excess == pytest.approx(np.cos(0.7) - np.cos(0.8), abs=1e-5)
    assert not result.queued  # production disagrees with itself almost as much


def test_without_a_noise_sample_the_rolling_route_floor_is_used() -> None:
    floor = NoiseFloor(window=100, quantile=0.5)
    for value in (0.1, 0.2, 0.3):
        floor.add("/v1/chat/completions", value)
    result = score(pair(exchange()), {"production": unit(0), "candidate": unit(1.2)}, floor)
    assert result.noise_floor == pytest.approx(0.2)
    assert result.excess == pytest.approx(1 - np.cos(1.2) - 0.2, abs=1e-5)
    assert result.queued
    assert result.reasons[0].startswith("excess")


def test_deltas_and_priority() -> None:
    candidate = exchange("word " * 40, usage=Usage(completion_tokens=40), latency_ms=250.0)
    production = exchange("word " * 10, usage=Usage(completion_tokens=10))
    result = score(pair(candidate, production=production), {})
    assert result.length_ratio == 4.0
    assert "length_ratio" in result.candidate_flags
    assert result.latency_delta_ms == 150.0
    assert result.token_delta == 30
    assert priority(result) >= 10


def test_evidence_queues_a_pair_and_outranks_embedding_only_divergence() -> None:
    detector = Detector(vocabulary=load_vocabulary(default_tokenizer_path()))
    flagger = Flagger(CONFIG)
    production = exchange("Take 500 mg every 4 hours, at most 4 g a day.")
    dose = pair(exchange("Take 5 g every hour."), production=production)
    close = {"production": unit(0), "candidate": unit(0.2)}  # excess 0.02: embedding says fine
    far = {"production": unit(0), "candidate": unit(1.2)}  # excess 0.64
    with_evidence = score_pair(
        dose, close, config=CONFIG, flagger=flagger,
        noise_floor=NoiseFloor(window=10, quantile=0.9),
        signals=signals_of(dose, detector=detector, flagger=flagger),
        evidence_noise=EvidenceNoise(CONFIG.detection),
    )  # fmt: skip
    embedding_only = score(pair(exchange("A different answer.")), far)
    assert with_evidence.queued and embedding_only.queued
    assert "evidence:number" in with_evidence.reasons
    assert not any(r.startswith("excess") for r in with_evidence.reasons)
    assert priority(with_evidence) > priority(embedding_only) >= 0.6


def test_new_flags_are_evidence_items() -> None:
    refusal = pair(exchange("I'm sorry, but I can't help with that."))
    result = score_pair(
        refusal, {}, config=CONFIG, flagger=Flagger(CONFIG),
        noise_floor=NoiseFloor(window=10, quantile=0.9), signals=PairSignals([]),
    )  # fmt: skip
    assert [(e.kind, e.severity) for e in result.evidence] == [("refusal", "high")]
    assert priority(result) >= 30
