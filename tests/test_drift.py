"""The population stability index and the input-drift check built on it."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from scoring.drift import check_drift, feature_psi
from scoring.stats import psi


def test_identical_distributions_have_no_drift() -> None:
    counts = {"0-100": 120, "101-300": 60, "301-1000": 20}
    assert psi(counts, counts) == 0.0
    assert psi(counts, {k: 10 * v for k, v in counts.items()}) == pytest.approx(0.0, abs=1e-12)


def test_samples_of_one_distribution_stay_near_zero() -> None:
    rng = random.Random(5)
    bins = ["latin", "cyrillic", "cjk", "arabic"]
    weights = [0.7, 0.15, 0.1, 0.05]
    a = Counter(rng.choices(bins, weights, k=5000))
    b = Counter(rng.choices(bins, weights, k=5000))
    assert psi(a, b) < 0.01


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        # 50/50 -> 25/75: 0.25 ln 2 + 0.25 ln 1.5
        ({"a": 50, "b": 50}, {"a": 25, "b": 75}, 0.25 * math.log(2) + 0.25 * math.log(1.5)),
        # A bin empty in the reference counts as a share of 1e-4.
        ({"a": 100}, {"a": 50, "b": 50}, 0.4999 * math.log(0.5 / 1e-4) + 0.5 * math.log(2)),
        # Bins the two sides do not share are both floored: each adds its own term.
        ({"a": 10}, {"b": 10}, 2 * 0.9999 * math.log(1 / 1e-4)),
    ],
)
def test_known_shifts_give_their_known_index(
    reference: dict[str, int], current: dict[str, int], expected: float
) -> None:
    assert psi(reference, current) == pytest.approx(expected, rel=1e-9)
    assert psi(current, reference) == pytest.approx(expected, rel=1e-9)  # symmetric


def test_an_empty_side_has_no_index() -> None:
    with pytest.raises(ValueError, match="at least one count"):
        psi({"a": 3}, {})


def test_drift_check_names_the_feature_that_moved() -> None:
    reference = {"language": {"latin": 900, "cyrillic": 100}, "route": {"/v1/chat": 1000}}
    moved = {"language": {"latin": 500, "cyrillic": 500}, "route": {"/v1/chat": 1000}}
    check = check_drift(reference, moved, threshold=0.25, min_samples=200)
    assert check.outcome == "drift"
    assert check.psi["route"] == 0.0
    assert check.psi["language"] == pytest.approx(0.4 * math.log(5) + 0.4 * math.log(9 / 5))
    assert check.max_psi == check.psi["language"]
    assert check.evidence()["psi:language"] == check.psi["language"]
    assert (check.samples, check.reference_samples) == (1000, 1000)
    same = check_drift(reference, reference, threshold=0.25, min_samples=200)
    assert same.outcome == "pass"


def test_too_few_requests_on_either_side_are_inconclusive() -> None:
    reference = {"language": {"latin": 150}}
    current = {"language": {"cyrillic": 500}}
    check = check_drift(reference, current, threshold=0.25, min_samples=200)
    assert check.outcome == "inconclusive"
    assert check.psi["language"] > 0.25
    assert check_drift({}, current, threshold=0.25, min_samples=1).outcome == "inconclusive"
    assert feature_psi({}, current) == {}
