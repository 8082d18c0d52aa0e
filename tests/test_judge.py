"""The rollout judge and its statistics: intervals, tests, multiplicity, sequential looks."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from scoring.judge import Limits, Window, judge
from scoring.stats import (
    benjamini_hochberg,
    difference_above,
    difference_upper_bound,
    rate_above,
    spent_alpha,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (50, 1000, 0.0382, 0.0653)],
)
def test_wilson_interval_matches_reference_values(k: int, n: int, low: float, high: float) -> None:
    assert wilson(k, n) == pytest.approx((low, high), abs=1e-3)


def test_benjamini_hochberg_rejects_the_step_up_set() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    assert benjamini_hochberg(p, 0.05) == [True, True, True, True, False]
    assert benjamini_hochberg([0.02, 0.5, 0.6], 0.05) == [False, False, False]


def test_spent_alpha_sums_to_at_most_alpha_over_any_number_of_looks() -> None:
    assert sum(spent_alpha(0.05, k) for k in range(1, 100_000)) < 0.05
    assert spent_alpha(0.05, 1) == pytest.approx(0.05 * 6 / math.pi**2)
    with pytest.raises(ValueError, match="from 1"):
        spent_alpha(0.05, 0)


def test_one_sided_tests_point_the_right_way() -> None:
    assert rate_above(30, 100, 0.1) < 1e-6
    assert rate_above(5, 100, 0.1) > 0.5
    assert difference_above(60, 1000, 10, 1000, 0.005) < 1e-6
    assert difference_above(10, 1000, 10, 1000, 0.005) > 0.5
    assert difference_upper_bound(10, 1000, 10, 1000, 0.05) < 0.015


def window(canary_error: float, n: int, seed: int, *, divergent: float = 0.02) -> Window:
    rng = np.random.default_rng(seed)
    return Window(
        canary_requests=n,
        canary_errors=int(rng.binomial(n, canary_error)),
        production_requests=n * 4,
        production_errors=int(rng.binomial(n * 4, 0.01)),
        canary_slow=int(rng.binomial(n, 0.005)),
        scored=n,
        divergent=int(rng.binomial(n, divergent)),
        verdicts=50,
        regressions=int(rng.binomial(50, 0.05)),
    )


def test_a_good_candidate_is_promoted() -> None:
    result = judge(window(0.01, 5000, seed=1), Limits(), look=1)
    assert result.decision == "promote", result.verdicts


def test_a_candidate_failing_three_percent_more_is_rolled_back() -> None:
    result = judge(window(0.04, 3000, seed=2), Limits(), look=1)
    assert result.decision == "rollback"
    (breach,) = [v for v in result.verdicts if v.outcome == "breach"]
    assert breach.guardrail == "error_rate"
    assert breach.evidence["canary"] > breach.evidence["production"]


def test_a_candidate_diverging_too_often_is_rolled_back() -> None:
    result = judge(window(0.01, 3000, seed=3, divergent=0.3), Limits(), look=1)
    assert result.decision == "rollback"
    assert [v.guardrail for v in result.verdicts if v.outcome == "breach"] == ["divergence"]


def test_too_few_samples_hold_the_step() -> None:
    result = judge(window(0.01, 50, seed=4), Limits(), look=1)
    assert result.decision == "hold"
    outcomes = {v.guardrail: v.outcome for v in result.verdicts}
    assert outcomes["error_rate"] == outcomes["latency_p99"] == outcomes["divergence"]
    assert outcomes["divergence"] == "inconclusive"


def test_guardrails_without_data_are_skipped_unless_required() -> None:
    quiet = Window(canary_requests=5000, production_requests=5000)
    assert "reviewer_regressions" not in {
        v.guardrail for v in judge(quiet, Limits(), look=1).verdicts
    }
    required = judge(quiet, Limits(require_verdicts=True), look=1)
    assert required.decision == "hold"


def test_aa_rollouts_rarely_raise_a_false_alarm_over_many_looks() -> None:
    # Candidate = production: every guardrail's rate at most its limit. Ten looks per
    # rollout on growing windows; the share of rollouts with any breach must stay under
    # alpha (plus three standard errors of this simulation).
    runs, looks, alpha = 300, 10, 0.05
    limits = Limits(alpha=alpha)
    false_alarms = 0
    rng = np.random.default_rng(7)
    for _ in range(runs):
        totals = dict.fromkeys(Window.__dataclass_fields__, 0)
        for look in range(1, looks + 1):
            n = 300
            totals["canary_requests"] += n
            totals["canary_errors"] += int(rng.binomial(n, 0.01))
            totals["production_requests"] += n
            totals["production_errors"] += int(rng.binomial(n, 0.01))
            totals["canary_slow"] += int(rng.binomial(n, 0.01))
            totals["scored"] += n
            totals["divergent"] += int(rng.binomial(n, 0.05))
            totals["verdicts"] += 10
            totals["regressions"] += int(rng.binomial(10, 0.1))
            if judge(Window(**totals), limits, look=look).decision == "rollback":
                false_alarms += 1
                break
    assert false_alarms / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


@pytest.mark.parametrize(("action", "decision"), [("hold", "hold"), ("rollback", "rollback")])
def test_the_llm_judge_guardrail_holds_by_default_and_rolls_back_only_when_configured(
    action: str, decision: str
) -> None:
    bad = replace(window(0.01, 5000, seed=1), judged=100, judge_regressions=60)
    limits = Limits(judge_regression_share=0.3, judge_action=action)  # type: ignore[arg-type]
    result = judge(bad, limits, look=1)
    assert result.decision == decision
    outcomes = {v.guardrail: v.outcome for v in result.verdicts}
    assert outcomes["judge_regressions"] == "breach"
    assert [g for g, o in outcomes.items() if o == "breach"] == ["judge_regressions"]


def test_the_llm_judge_guardrail_is_off_by_default_and_never_gates_alone() -> None:
    bad = replace(window(0.01, 5000, seed=1), judged=100, judge_regressions=60)
    assert "judge_regressions" not in {v.guardrail for v in judge(bad, Limits(), look=1).verdicts}
    # A clean judge does not promote a candidate the other guardrails hold back.
    clean = replace(window(0.01, 50, seed=4), judged=100, judge_regressions=1)
    result = judge(clean, Limits(judge_regression_share=0.3), look=1)
    assert {v.guardrail: v.outcome for v in result.verdicts}["judge_regressions"] == "pass"
    assert result.decision == "hold"
    # A judge that was asked nothing in the window is not a guardrail then.
    quiet = replace(window(0.01, 5000, seed=1), judged=0)
    result = judge(quiet, Limits(judge_regression_share=0.3), look=1)
    assert result.decision == "promote"
    assert "judge_regressions" not in {v.guardrail for v in result.verdicts}
