"""The `scoring` section: the embedding model and how it runs, the worker's batches, the
divergence threshold for review, and its `detection` and LLM `judge` subsections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config._base import Model, PositiveFloat, PositiveInt, compiles, conflict, http_url
from gateway.config.upstreams import TokenPrice

Precision = Literal["mixed-int8", "fp32"]
ExecutionProvider = Literal["CUDA", "TensorRT", "OpenVINO", "CPU"]
EXECUTION_PROVIDERS: tuple[ExecutionProvider, ...] = ("CUDA", "TensorRT", "OpenVINO", "CPU")


def _cpu_only() -> list[ExecutionProvider]:
    return ["CPU"]


def _default_compile_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shadowgate" / "models"


class DetectionConfig(Model):
    """Signals that compare what the answers assert, and how production's noise gates them."""

    enabled: bool = True
    queue_severity: Literal["low", "medium", "high"] = Field(
        default="medium", description="evidence at or above this severity queues the pair"
    )
    noise_window: PositiveInt = Field(
        default=500, description="pairs per route remembered for evidence rates"
    )
    noise_min_samples: PositiveInt = Field(
        default=30, description="noise samples a route needs before its rates gate evidence"
    )
    noise_relative_margin: Annotated[float, Field(ge=0)] = 0.2
    noise_absolute_margin: Annotated[float, Field(ge=0, le=1)] = 0.03


class JudgeSelection(Model):
    """Which scored pairs are sent to the judge: either condition selects a pair."""

    flagged: bool = Field(
        default=True, description="pairs with evidence or new flags outside production's noise"
    )
    excess_above: Annotated[float, Field(ge=0, le=2)] | None = Field(
        default=None, description="pairs whose excess divergence is above this"
    )


class LlmJudgeConfig(Model):
    """An OpenAI-compatible model asked whether the candidate's answer is a regression."""

    enabled: bool = False
    url: str | None = Field(
        default=None, description="base URL as the openai client takes it: https://host/v1"
    )
    model: str = ""
    api_key: SecretStr | None = None
    timeout_s: PositiveFloat = Field(default=20.0, description="one call, connect to last byte")
    max_concurrency: PositiveInt = Field(default=4, description="judge calls in flight at once")
    max_batches_in_flight: PositiveInt = Field(
        default=4,
        description="scored batches waiting for their judge calls before the worker "
        "stops reading new pairs",
    )
    select: JudgeSelection = Field(default_factory=JudgeSelection)
    calls_per_minute: PositiveInt = 60
    usd_per_day: Annotated[float, Field(ge=0)] | None = Field(
        default=5.0, description="spend per UTC day across all workers; null: no USD limit"
    )
    price: TokenPrice | None = Field(default=None, description="the judge model's token prices")
    max_answer_chars: PositiveInt = Field(
        default=4000, description="each answer is cut to this many characters in the prompt"
    )
    max_tokens: PositiveInt = Field(default=200, description="cap on the judge's answer")
    json_mode: bool = Field(
        default=True,
        description="ask for response_format json_object (off for servers "
        "that reject it; the answer is parsed defensively either way)",
    )
    queue_regressions: bool = Field(
        default=True, description="a pair the judge calls a regression is queued for review"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        return http_url(value)

    @model_validator(mode="after")
    def _check_complete(self) -> LlmJudgeConfig:
        if not self.enabled:
            return self
        if self.url is None:
            raise conflict("url: required when the judge is enabled")
        if not self.model:
            raise conflict("model: required when the judge is enabled")
        if self.usd_per_day is not None and self.price is None:
            raise conflict(
                "price: required to keep to usd_per_day (or set usd_per_day: null for no limit)"
            )
        return self


class ScoringConfig(Model):
    model: Path | None = Field(
        default=None, description="ONNX model file; unset: the int8 all-MiniLM-L6-v2"
    )
    tokenizer: Path | None = Field(default=None, description="tokenizer.json; unset: bundled")
    precision: Precision = "mixed-int8"
    fp32_layers: Annotated[int, Field(ge=0)] = 3
    int8_min_tokens: Annotated[int, Field(ge=0)] = 48
    compile_cache: Path | None = Field(
        default_factory=_default_compile_cache,
        description="where compiled models are kept; null: compile at every start",
    )
    providers: list[ExecutionProvider] = Field(
        default_factory=_cpu_only,
        description="onnxruntime execution providers, first preferred: CUDA, TensorRT, "
        "OpenVINO, CPU",
    )
    threads: PositiveInt = 2
    max_tokens: Annotated[int, Field(ge=16, le=512)] = 256
    window_stride: PositiveInt = Field(
        default=224, description="most tokens between window starts in a long text"
    )
    batch_size: PositiveInt | None = Field(
        default=None, description="pairs per worker read; unset: 32 on the CPU, 256 on a GPU"
    )
    inference_batch_size: PositiveInt | None = Field(
        default=None, description="sequences per model call; unset: 1 on the CPU, 64 on a GPU"
    )
    max_wait_ms: PositiveInt = 50
    cache_size: Annotated[int, Field(ge=0)] = 4096
    review_threshold: Annotated[float, Field(ge=0, le=2)] = 0.15
    noise_quantile: Annotated[float, Field(gt=0, lt=1)] = 0.9
    noise_window: PositiveInt = 500
    claim_idle_ms: PositiveInt = 60_000
    max_attempts: PositiveInt = 3
    heartbeat_s: PositiveFloat = Field(
        default=2.0, description="how often a worker says it is alive; dead after 3 misses"
    )
    scores_maxlen: PositiveInt = 100_000
    review_maxlen: PositiveInt = 50_000
    refusal_patterns: list[str] = Field(default_factory=list)
    length_ratio_bounds: tuple[float, float] = (0.33, 3.0)
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    judge: LlmJudgeConfig = Field(default_factory=LlmJudgeConfig)

    @field_validator("providers", mode="before")
    @classmethod
    def _check_providers(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        names = {name.lower(): name for name in EXECUTION_PROVIDERS}
        canonical = [names.get(v.lower(), v) if isinstance(v, str) else v for v in value]
        if not canonical:
            raise ValueError("must name at least one provider")
        if len(set(map(str, canonical))) != len(canonical):
            raise ValueError("names a provider twice")
        return canonical

    @field_validator("refusal_patterns")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            compiles(pattern, where=f"entry {i}: ")
        return value

    @model_validator(mode="after")
    def _check_claim_after_judge(self) -> ScoringConfig:
        # A batch waits for its judge calls before it is acknowledged; claimed sooner, it
        # would be scored (and judged, and paid for) twice.
        if self.judge.enabled and self.claim_idle_ms <= 2000 * self.judge.timeout_s:
            raise conflict(
                f"claim_idle_ms: must be above twice judge.timeout_s ({self.claim_idle_ms} ms "
                f"<= 2 x {self.judge.timeout_s} s)"
            )
        return self
