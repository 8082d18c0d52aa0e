"""The root of the configuration tree: one field per section, and the checks that span
sections (a candidate for any shadow or canary share; mirrors shed before the stream cap)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.config._base import Model
from gateway.config.control import ControlConfig, ReviewConfig, RolloutConfig
from gateway.config.scoring import ScoringConfig
from gateway.config.shadow import (
    CaptureConfig,
    PublishConfig,
    RedisConfig,
    ScrubConfig,
    ShadowConfig,
)
from gateway.config.upstreams import ListenConfig, TrafficConfig, UpstreamsConfig


class Config(Model):
    listen: ListenConfig = Field(default_factory=ListenConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    upstreams: UpstreamsConfig
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    scrub: ScrubConfig = Field(default_factory=ScrubConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    state_dir: Path = Path(".shadowgate")
    log_level: str = "info"

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _check_candidate(self) -> Config:
        needs_candidate = self.traffic.shadow_percent > 0 or self.traffic.canary_percent > 0
        if needs_candidate and self.upstreams.candidate is None:
            raise PydanticCustomError(
                "candidate_required",
                "required when traffic.shadow_percent or traffic.canary_percent is above 0",
                {"field": "upstreams.candidate"},
            )
        if self.shadow.max_backlog >= self.publish.stream_maxlen:
            raise PydanticCustomError(
                "backlog_above_cap",
                "must be below publish.stream_maxlen, so that mirrors are shed before the "
                "stream cap trims pairs nobody scored",
                {"field": "shadow.max_backlog"},
            )
        return self
