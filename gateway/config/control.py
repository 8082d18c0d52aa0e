"""The control plane's sections: `control` (its port and tokens), `review` (the queue's
leases and how many reviewers judge an item) and `rollout` (the canary's steps and the
guardrails that promote, hold or roll it back)."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from gateway.config._base import Model, Percent, Port, PositiveFloat, PositiveInt


class ControlConfig(Model):
    host: str = "127.0.0.1"
    port: Port = 8081
    admin_token: SecretStr | None = None
    reviewer_token: SecretStr | None = None
    reviewer_tokens: dict[str, SecretStr] = Field(default_factory=dict)


class ReviewConfig(Model):
    lease_s: PositiveFloat = 600.0
    reviewers_per_item: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1, description="an item is offered until this many different reviewers judged it"
    )
    mode: Literal["standard", "blind"] = Field(
        default="standard",
        description="blind: the answers are shown as A and B, never as production/candidate",
    )


class GuardrailLimits(Model):
    """What the canary may not exceed: the rollout judge (`scoring.judge`) reads these."""

    min_samples: PositiveInt = Field(
        default=200, description="requests (or scored pairs) a guardrail needs before it can pass"
    )
    min_verdicts: PositiveInt = Field(
        default=20,
        description="verdicts the reviewer (or LLM judge) guardrail needs before it can pass",
    )
    error_margin: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.005,
        description="extra error rate (5xx and timeouts) tolerated over production, absolute",
    )
    latency_ratio: Annotated[float, Field(ge=1)] = 1.5
    slow_share: Annotated[float, Field(gt=0, lt=1)] = Field(
        default=0.02,
        description="share of canary requests slower than production's p99 x latency_ratio",
    )
    divergence_rate: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.10,
        description="share of scored shadow pairs queued for high divergence or new flags",
    )
    regression_share: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.20, description="share of reviewed items whose final label is regression"
    )
    require_divergence: bool = Field(
        default=False,
        description="without it, a window with no scored shadow pairs skips the divergence "
        "guardrail",
    )
    require_verdicts: bool = Field(
        default=False,
        description="without it, a window with no verdicts skips the reviewer guardrail",
    )
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    judge_regression_share: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="share of judged shadow pairs the LLM judge may call a "
        "regression; null: no judge guardrail",
    )
    judge_action: Literal["hold", "rollback"] = Field(
        default="hold", description="a judge breach holds the step, or also rolls it back"
    )


class RolloutConfig(GuardrailLimits):
    """The canary's steps, how often it is judged, and the input-drift check."""

    steps: list[Percent] = Field(default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0])
    interval_s: PositiveFloat = 60.0
    lock_ttl_s: PositiveFloat = 30.0
    psi_threshold: PositiveFloat = Field(
        default=0.25, description="input drift: a feature's PSI above this is drift"
    )
    psi_action: Literal["report", "hold"] = Field(
        default="report", description="report drift only, or also hold the step on it"
    )
    psi_reference_s: PositiveFloat = Field(
        default=3600.0, description="the reference window: this long before the rollout began"
    )

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, value: list[float]) -> list[float]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("must be a non-empty, strictly increasing list of percentages")
        return value
