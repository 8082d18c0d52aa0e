"""Input drift: do the prompts of one window look like those of a reference window? One
population stability index per prompt feature (length, script, route, tokens requested), so
a change in traffic is told apart from a change in the model.

A drift check never calls the candidate worse: PSI says the traffic moved, not that the
answers did. The rollout controller reports it, and when configured holds the step on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from scoring.stats import psi

Outcome = Literal["pass", "drift", "inconclusive"]
Distributions = Mapping[str, Mapping[str, int]]
"""feature -> bin -> requests."""


def samples(distributions: Distributions) -> int:
    """Requests behind a set of feature distributions (every request has each feature)."""
    return max((sum(bins.values()) for bins in distributions.values()), default=0)


def feature_psi(reference: Distributions, current: Distributions) -> dict[str, float]:
    """PSI of every feature that has counts on both sides."""
    return {
        feature: psi(reference[feature], bins)
        for feature, bins in sorted(current.items())
        if sum(bins.values()) and sum(reference.get(feature, {}).values())
    }


@dataclass(frozen=True)
class DriftCheck:
    outcome: Outcome
    psi: dict[str, float]
    samples: int
    reference_samples: int
    threshold: float

    @property
    def max_psi(self) -> float | None:
        return max(self.psi.values(), default=None)

    def evidence(self) -> dict[str, Any]:
        """Flat numbers for a decision record: the largest PSI and each feature's."""
        return {
            "psi_max": self.max_psi,
            **{f"psi:{feature}": value for feature, value in self.psi.items()},
            "threshold": self.threshold,
            "samples": float(self.samples),
            "reference_samples": float(self.reference_samples),
        }


def check_drift(
    reference: Distributions, current: Distributions, *, threshold: float, min_samples: int
) -> DriftCheck:
    """`drift` when any feature's PSI passes `threshold`; `inconclusive` while either window
    has fewer than `min_samples` requests (small samples inflate PSI)."""
    n, n_ref = samples(current), samples(reference)
    values = feature_psi(reference, current)
    if min(n, n_ref) < min_samples:
        outcome: Outcome = "inconclusive"
    elif any(value > threshold for value in values.values()):
        outcome = "drift"
    else:
        outcome = "pass"
    return DriftCheck(outcome, values, n, n_ref, threshold)
