"""Evidence judged against production's own noise: on the pair (its noise answer changes the
same value) and on the route (production's re-runs change that kind about as often)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import DetectionConfig, ScoringConfig
from gateway.records import Exchange, PairRecord
from scoring.divergence import Flagger, NoiseFloor, score_pair, signals_of
from scoring.embedder import default_tokenizer_path
from scoring.signals.detect import Detector, load_vocabulary
from scoring.signals.gate import EvidenceNoise

ROUTE = "/v1/chat/completions"
BUDGET = "Here is an example: rent $600, groceries $250 and leisure $80."
WARNING = "Take it with food. Do not drive after taking it."


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(vocabulary=load_vocabulary(default_tokenizer_path()))


def record(candidate: str, production: str = BUDGET, noise: str | None = None) -> PairRecord:
    def side(text: str) -> Exchange:
        return Exchange(status=200, text=text, finish_reason="stop")

    return PairRecord(
        id="p", ts=0.0, route=ROUTE, production=side(production), candidate=side(candidate),
        noise=side(noise) if noise is not None else None,
    )  # fmt: skip


def score(pair: PairRecord, detector: Detector, gate: EvidenceNoise) -> Any:
    config = ScoringConfig()
    flagger = Flagger(config)
    return score_pair(
        pair, {}, config=config, flagger=flagger, noise_floor=NoiseFloor(window=10, quantile=0.9),
        signals=signals_of(pair, detector=detector, flagger=flagger), evidence_noise=gate,
    )  # fmt: skip


def test_a_value_production_changes_on_its_own_rerun_is_within_noise(detector: Detector) -> None:
    gate = EvidenceNoise(DetectionConfig())
    changed = BUDGET.replace("$600", "$700")
    result = score(record(changed, noise=BUDGET.replace("$600", "$550")), detector, gate)
    assert [e.within_noise for e in result.evidence if e.kind == "number"] == [True]
    assert not result.queued


def test_a_value_the_rerun_keeps_still_counts(detector: Detector) -> None:
    gate = EvidenceNoise(DetectionConfig())
    changed = BUDGET.replace("$600", "$700")
    result = score(record(changed, noise=BUDGET.replace("$80", "$60")), detector, gate)
    assert [e.within_noise for e in result.evidence if e.kind == "number"] == [False]
    assert "evidence:number" in result.reasons


def test_a_kind_production_changes_as_often_on_the_route_does_not_count(
    detector: Detector,
) -> None:
    gate = EvidenceNoise(DetectionConfig(noise_min_samples=20))
    for n in range(40):  # production's re-runs change a number every other time
        noise = BUDGET.replace("$250", f"${300 + n}") if n % 2 else BUDGET
        candidate = BUDGET.replace("$80", f"${90 + n}") if n % 2 else BUDGET
        score(record(candidate, noise=noise), detector, gate)
    noise_rate, candidate_rate, samples = gate.rates(ROUTE, "number")
    assert (noise_rate, candidate_rate, samples) == (0.5, 0.5, 40)
    result = score(record(BUDGET.replace("$600", "$900")), detector, gate)
    assert [e.within_noise for e in result.evidence if e.kind == "number"] == [True]
    assert not result.queued


def test_a_kind_production_never_changes_always_counts(detector: Detector) -> None:
    gate = EvidenceNoise(DetectionConfig(noise_min_samples=20))
    for _ in range(40):
        score(record(WARNING, production=WARNING, noise=WARNING), detector, gate)
    flipped = WARNING.replace("Take it with food.", "Do not take it with food.")
    result = score(record(flipped, production=WARNING), detector, gate)
    assert [e.kind for e in result.counted_evidence] == ["negation"]
    assert result.queued


def test_without_detection_the_record_has_no_evidence(detector: Detector) -> None:
    config = ScoringConfig()
    result = score_pair(
        record(BUDGET.replace("$600", "$700")), {}, config=config, flagger=Flagger(config),
        noise_floor=NoiseFloor(window=10, quantile=0.9),
    )  # fmt: skip
    assert result.evidence == []
    assert not result.queued
