"""Statistics for the rollout guardrails: Wilson intervals, one-sided tests on a rate and on
the difference of two rates, Benjamini-Hochberg, an alpha-spending rule that keeps the
false-alarm rate bounded however many times the guardrails are checked, and the population
stability index for input drift."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Final

_NORMAL = NormalDist()


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial rate; (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf(1 - (1 - confidence) / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_above(successes: int, trials: int, limit: float) -> float:
    """p-value of H0: rate <= limit against rate > limit (exact binomial, one-sided)."""
    if trials <= 0:
        return 1.0
    # Imported here: SciPy costs the gateway process ~75 MiB, and only the judge needs it.
    from scipy import stats

    return float(stats.binomtest(successes, trials, limit, alternative="greater").pvalue)


def difference_above(
    k_canary: int, n_canary: int, k_base: int, n_base: int, margin: float
) -> float:
    """p-value of H0: p_canary - p_base <= margin against a larger difference (z-test with
    unpooled variance, continuity-free); 1.0 when either arm has no data."""
    if n_canary <= 0 or n_base <= 0:
        return 1.0
    p_c, p_b = k_canary / n_canary, k_base / n_base
    # A floor on the variance keeps a run of zero errors from making the test infinitely sure.
    variance = (
        max(p_c * (1 - p_c), 0.25 / n_canary) / n_canary
        + max(p_b * (1 - p_b), 0.25 / n_base) / n_base
    )
    z = (p_c - p_b - margin) / math.sqrt(variance)
    return _normal_sf(z)


def difference_upper_bound(
    k_canary: int, n_canary: int, k_base: int, n_base: int, alpha: float
) -> float:
    """One-sided upper confidence bound on p_canary - p_base (Newcombe's hybrid Wilson)."""
    if n_canary <= 0 or n_base <= 0:
        return 1.0
    confidence = 1 - 2 * alpha
    hi_c = wilson(k_canary, n_canary, confidence)[1]
    lo_b = wilson(k_base, n_base, confidence)[0]
    p_c, p_b = k_canary / n_canary, k_base / n_base
    return (p_c - p_b) + math.sqrt((hi_c - p_c) ** 2 + (p_b - lo_b) ** 2)


def benjamini_hochberg(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses to reject at false-discovery rate `alpha`, in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    cutoff = 0
    for rank, i in enumerate(order, start=1):
        if p_values[i] <= alpha * rank / m:
            cutoff = rank
    rejected = [False] * m
    for rank, i in enumerate(order, start=1):
        rejected[i] = rank <= cutoff
    return rejected


def spent_alpha(alpha: float, look: int) -> float:
    """The level for the `look`-th check (1, 2, ...): alpha * 6 / (pi**2 * look**2). The levels
    sum to alpha over any number of looks, so checking every interval keeps the false-alarm
    rate at most alpha (a union bound: conservative, and simple to audit)."""
    if look < 1:
        raise ValueError("looks are numbered from 1")
    return alpha * 6 / (math.pi**2 * look**2)


PSI_EPSILON: Final = 1e-4


def psi(
    reference: Mapping[str, float], current: Mapping[str, float], epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index of `current` against `reference`, both counts per bin: the
    sum over bins of (c - r) * ln(c / r) of their shares. A share of 0 counts as `epsilon`,
    so a bin that is empty on one side adds a large but finite term. Usual reading: under
    0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one."""
    reference_total, current_total = sum(reference.values()), sum(current.values())
    if reference_total <= 0 or current_total <= 0:
        raise ValueError("both distributions need at least one count")
    index = 0.0
    for bin_ in sorted(reference.keys() | current.keys()):
        r = max(reference.get(bin_, 0) / reference_total, epsilon)
        c = max(current.get(bin_, 0) / current_total, epsilon)
        index += (c - r) * math.log(c / r)
    return index
