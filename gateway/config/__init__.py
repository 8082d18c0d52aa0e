"""The configuration tree: YAML in, validated pydantic models out, built once at the entry point
and passed down. One module per group of sections (`upstreams`, `shadow`, `scoring`,
`control`), the root `Config` in `root`, reading and substitution in `loader`; every name is
importable from `gateway.config`.
"""

from gateway.config._base import Percent, Port, PositiveFloat, PositiveInt
from gateway.config.control import ControlConfig, GuardrailLimits, ReviewConfig, RolloutConfig
from gateway.config.loader import (
    apply_environment,
    format_validation_error,
    load_config,
    parse_config,
)
from gateway.config.root import Config
from gateway.config.scoring import (
    EXECUTION_PROVIDERS,
    DetectionConfig,
    ExecutionProvider,
    JudgeSelection,
    LlmJudgeConfig,
    Precision,
    ScoringConfig,
)
from gateway.config.shadow import (
    PII_ENTITIES,
    CaptureConfig,
    CustomPattern,
    PublishConfig,
    RedisConfig,
    ScrubConfig,
    ShadowConfig,
)
from gateway.config.upstreams import (
    CandidateConfig,
    ListenConfig,
    TokenPrice,
    TrafficConfig,
    UpstreamConfig,
    UpstreamsConfig,
)

__all__ = [
    "EXECUTION_PROVIDERS",
    "PII_ENTITIES",
    "CandidateConfig",
    "CaptureConfig",
    "Config",
    "ControlConfig",
    "CustomPattern",
    "DetectionConfig",
    "ExecutionProvider",
    "GuardrailLimits",
    "JudgeSelection",
    "ListenConfig",
    "LlmJudgeConfig",
    "Percent",
    "Port",
    "PositiveFloat",
    "PositiveInt",
    "Precision",
    "PublishConfig",
    "RedisConfig",
    "ReviewConfig",
    "RolloutConfig",
    "ScoringConfig",
    "ScrubConfig",
    "ShadowConfig",
    "TokenPrice",
    "TrafficConfig",
    "UpstreamConfig",
    "UpstreamsConfig",
    "apply_environment",
    "format_validation_error",
    "load_config",
    "parse_config",
]
