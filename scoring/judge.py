"""The rollout judge: compares the canary arm with production on one window and says, per
guardrail, `pass`, `breach` or `inconclusive`, with the evidence.

Breaches are one-sided tests at the look's spent alpha, corrected across guardrails with
Benjamini-Hochberg; a pass needs enough samples and a confidence bound inside the limit.
Promotion needs every guardrail to pass; one breach rolls back (the LLM judge's guardrail,
off by default, only holds unless `judge_action` is rollback); anything else holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.config import GuardrailLimits
from scoring.stats import (
    benjamini_hochberg,
    difference_above,
    difference_upper_bound,
    rate_above,
    spent_alpha,
    wilson,
)

Outcome = Literal["pass", "breach", "inconclusive"]
# Guardrails on verdicts (of reviewers, of the LLM judge): they pass on `min_verdicts`.
_VERDICT_GUARDRAILS = frozenset({"reviewer_regressions", "judge_regressions"})
Decision = Literal["promote", "rollback", "hold"]
# What the canary may not exceed: the rollout config's guardrail fields, one definition.
Limits = GuardrailLimits


@dataclass(frozen=True)
class Window:
    """Counts of one evaluation window (the current step so far)."""

    canary_requests: int = 0
    canary_errors: int = 0
    production_requests: int = 0
    production_errors: int = 0
    canary_slow: int = 0
    """Canary requests slower than production's p99 x latency_ratio in the same window."""
    scored: int = 0
    divergent: int = 0
    verdicts: int = 0
    regressions: int = 0
    judged: int = 0
    """Shadow pairs the LLM judge gave a verdict."""
    judge_regressions: int = 0


@dataclass
class Verdict:
    guardrail: str
    outcome: Outcome
    p_value: float
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass
class Judgement:
    decision: Decision
    look: int
    alpha: float
    verdicts: list[Verdict]


def judge(window: Window, limits: Limits, *, look: int) -> Judgement:
    """Evaluate every guardrail on `window` at the `look`-th check of the current step."""
    alpha = spent_alpha(limits.alpha, look)
    w, lim = window, limits
    checks: list[tuple[str, int, float, bool, dict[str, float]]] = []

    p = difference_above(
        w.canary_errors,
        w.canary_requests,
        w.production_errors,
        w.production_requests,
        lim.error_margin,
    )
    bound = difference_upper_bound(
        w.canary_errors, w.canary_requests, w.production_errors, w.production_requests, alpha
    )
    checks.append(
        (
            "error_rate",
            min(w.canary_requests, w.production_requests),
            p,
            bound <= lim.error_margin,
            {
                "canary": _rate(w.canary_errors, w.canary_requests),
                "production": _rate(w.production_errors, w.production_requests),
                "difference_upper_bound": bound,
            },
        )
    )
    rates = [("latency_p99", w.canary_slow, w.canary_requests, lim.slow_share)]
    if w.scored or lim.require_divergence:
        rates.append(("divergence", w.divergent, w.scored, lim.divergence_rate))
    if w.verdicts or lim.require_verdicts:
        rates.append(("reviewer_regressions", w.regressions, w.verdicts, lim.regression_share))
    if lim.judge_regression_share is not None and w.judged:
        rates.append(
            ("judge_regressions", w.judge_regressions, w.judged, lim.judge_regression_share)
        )
    for name, k, n, limit in rates:
        upper = wilson(k, n, 1 - 2 * alpha)[1]
        checks.append(
            (
                name,
                n,
                rate_above(k, n, limit),
                upper <= limit,
                {"rate": _rate(k, n), "upper_bound": upper, "limit": limit},
            )
        )

    rejected = benjamini_hochberg([c[2] for c in checks], alpha)
    verdicts = []
    for (name, n, p_value, within, evidence), breach in zip(checks, rejected, strict=True):
        evidence = {**evidence, "samples": float(n)}
        if breach:
            outcome: Outcome = "breach"
        elif n >= (lim.min_verdicts if name in _VERDICT_GUARDRAILS else lim.min_samples) and (
            within
        ):
            outcome = "pass"
        else:
            outcome = "inconclusive"
        verdicts.append(Verdict(name, outcome, p_value, evidence))
    # The LLM judge is never the only gate: by default its breach holds the step (the other
    # guardrails must pass as well to promote) and only rolls back when configured to.
    held_only = "judge_regressions" if lim.judge_action == "hold" else None
    if any(v.outcome == "breach" and v.guardrail != held_only for v in verdicts):
        decision: Decision = "rollback"
    elif all(v.outcome == "pass" for v in verdicts):
        decision = "promote"
    else:
        decision = "hold"
    return Judgement(decision=decision, look=look, alpha=alpha, verdicts=verdicts)


def _rate(k: int, n: int) -> float:
    return k / n if n else 0.0
