"""The configuration tree: YAML in, validated pydantic models out, built once at the entry point.

`${VAR}` and `${VAR:-default}` are substituted inside string values before validation, so a
missing variable is reported with the path of the field that asked for it.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from yarl import URL

from gateway.config_yaml import load_yaml
from gateway.constants import DEFAULT_SHADOW_PATHS
from gateway.errors import ConfigError

Percent = Annotated[float, Field(ge=0, le=100)]
Port = Annotated[int, Field(ge=0, le=65535)]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_UNIT_KEY = re.compile(r"^(auth|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|body:[A-Za-z0-9_-]+)$")


def _compiles(pattern: str, where: str = "") -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{where}invalid regular expression: {exc}") from None
    return pattern


def _http_url(value: str) -> str:
    try:
        url = URL(value)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, got {url.scheme or 'none'!r}")
    if not url.host:
        raise ValueError("URL has no host")
    if url.query_string or url.fragment:
        raise ValueError("URL must not carry a query or fragment")
    return str(url).rstrip("/")


def _conflict(message: str) -> PydanticCustomError:
    """An error between fields of one section, reported without the section's values (they
    may hold a secret)."""
    return PydanticCustomError("conflict", message)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Model):
    host: str = "0.0.0.0"
    port: Port = 8080
    backlog: PositiveInt = 1024
    # Slow clients: a request body up to `body_buffer_bytes` is read whole before an upstream
    # connection is taken, so a client trickling its body holds no pooled connection.
    body_buffer_bytes: PositiveInt = Field(
        default=1 << 20, description="request bodies up to this size are read before forwarding"
    )
    header_timeout_s: PositiveFloat = Field(
        default=10.0, description="from a request's first byte to the end of its headers; 408"
    )
    body_timeout_s: PositiveFloat = Field(
        default=30.0, description="longest silence between two reads of a request body; 408"
    )
    keepalive_timeout_s: PositiveFloat = Field(
        default=75.0, description="an idle client connection is closed after this"
    )
    shutdown_grace_s: Annotated[float, Field(ge=0)] = Field(
        default=30.0, description="at shutdown, in-flight requests may finish for this long"
    )


class ControlConfig(_Model):
    host: str = "127.0.0.1"
    port: Port = 8081
    admin_token: SecretStr | None = None
    reviewer_token: SecretStr | None = None
    reviewer_tokens: dict[str, SecretStr] = Field(default_factory=dict)


class TokenPrice(_Model):
    """USD per million tokens."""

    input_per_1m: Annotated[float, Field(ge=0)]
    output_per_1m: Annotated[float, Field(ge=0)]

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class UpstreamConfig(_Model):
    url: str
    api_key: SecretStr | None = None
    max_connections: PositiveInt = 256
    pool_timeout_s: PositiveFloat = Field(
        default=5.0, description="longest wait for a free pooled connection; then a 503"
    )
    max_streamed_bodies: PositiveInt | None = Field(
        default=None,
        description="connections that may carry a body larger than listen.body_buffer_bytes "
        "while it arrives; unset: a quarter of max_connections",
    )
    connect_timeout_s: PositiveFloat = 5.0
    first_byte_timeout_s: PositiveFloat = 300.0
    read_timeout_s: PositiveFloat = 120.0
    keepalive_s: PositiveFloat = 4.0
    prices: dict[str, TokenPrice] = Field(
        default_factory=dict, description="by model name; '*' for any other model"
    )

    @property
    def streamed_bodies_limit(self) -> int:
        """How many requests may stream their body over this upstream's connections at once."""
        return self.max_streamed_bodies or max(1, self.max_connections // 4)

    def price(self, model: str | None) -> TokenPrice | None:
        """The price of `model` on this upstream, if one is configured."""
        return (self.prices.get(model) if model else None) or self.prices.get("*")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class CandidateConfig(UpstreamConfig):
    """The candidate: an upstream that never sees a user's credentials, and may serve its own
    model name (`gpt-4.1` for production's `gpt-4o`, a vLLM `--served-model-name`)."""

    model: str | None = Field(
        default=None, description="the model name mirrors and canary requests carry"
    )
    model_map: dict[str, str] = Field(
        default_factory=dict,
        description="production model name -> the candidate's; takes precedence over `model`",
    )
    credential_headers: list[str] = Field(
        default_factory=list,
        description="request headers that carry a user's credentials, never sent to the "
        "candidate, on top of the built-in ones (Authorization, api-key, Cookie, ...)",
    )

    @field_validator("credential_headers")
    @classmethod
    def _check_header_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a header name")
        return value


class UpstreamsConfig(_Model):
    production: UpstreamConfig
    candidate: CandidateConfig | None = None


class TrafficConfig(_Model):
    shadow_percent: Percent = 0.0
    canary_percent: Percent = 0.0
    unit_key: list[str] = Field(default_factory=lambda: ["header:x-user-id", "body:user", "auth"])
    salt: str = "shadowgate"

    @field_validator("unit_key")
    @classmethod
    def _check_unit_key(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _UNIT_KEY.match(item):
                raise ValueError(f"unit key {item!r} must be 'auth', 'header:NAME' or 'body:FIELD'")
        return [item.lower() if item.startswith("header:") else item for item in value]


class ShadowConfig(_Model):
    paths: list[str] = Field(default_factory=lambda: list(DEFAULT_SHADOW_PATHS))
    max_body_bytes: PositiveInt = 1 << 20
    max_in_flight: PositiveInt = 64
    timeout_s: PositiveFloat = 120.0
    noise_percent: Percent = 10.0
    breaker_failures: PositiveInt = 5
    breaker_cooldown_s: PositiveFloat = 5.0
    max_backlog: PositiveInt = Field(
        default=10_000,
        description="pairs published and not yet scored past which new mirrors are shed",
    )
    shutdown_grace_s: Annotated[float, Field(ge=0)] = Field(
        default=5.0, description="at shutdown, after the data plane drained, mirrors may finish"
    )

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} must start with '/'")
        return value


class CaptureConfig(_Model):
    max_bytes: PositiveInt = 1 << 20


class PublishConfig(_Model):
    buffer_size: PositiveInt = 2000
    batch_size: PositiveInt = 64
    stream_maxlen: PositiveInt = 100_000
    max_backoff_s: PositiveFloat = 5.0
    shutdown_drain_s: Annotated[float, Field(ge=0)] = Field(
        default=2.0, description="at shutdown, the buffer may be written for this long"
    )


class RedisConfig(_Model):
    url: str | None = None
    key_prefix: str = "shadowgate:"
    socket_timeout_s: PositiveFloat = 1.0
    traffic_poll_s: PositiveFloat = 0.5
    scoring_poll_s: PositiveFloat = Field(
        default=2.0, description="how often a gateway reads the scoring aggregates and backlog"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if not value:  # "${REDIS_URL:-}" left empty means: use the embedded server
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class CustomPattern(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        return _compiles(value)


class ScrubConfig(_Model):
    custom: list[CustomPattern] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    pseudonym_key: SecretStr | None = None
    disable: list[str] = Field(
        default_factory=list, description="built-in entity types left unscrubbed, e.g. PERSON"
    )

    @field_validator("disable")
    @classmethod
    def _check_disable(cls, value: list[str]) -> list[str]:
        known = (
            "EMAIL",
            "PHONE",
            "CARD",
            "IBAN",
            "SSN",
            "IP",
            "MAC",
            "SECRET",
            "PERSON",
            "ADDRESS",
            "DOB",
        )
        for name in value:
            if name not in known:
                raise ValueError(f"unknown entity type {name!r}; one of {', '.join(known)}")
        return value


Precision = Literal["mixed-int8", "fp32"]
ExecutionProvider = Literal["CUDA", "TensorRT", "OpenVINO", "CPU"]
EXECUTION_PROVIDERS: tuple[ExecutionProvider, ...] = ("CUDA", "TensorRT", "OpenVINO", "CPU")


def _cpu_only() -> list[ExecutionProvider]:
    return ["CPU"]


def _default_compile_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shadowgate" / "models"


class DetectionConfig(_Model):
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


class JudgeSelection(_Model):
    """Which scored pairs are sent to the judge: either condition selects a pair."""

    flagged: bool = Field(
        default=True, description="pairs with evidence or new flags outside production's noise"
    )
    excess_above: Annotated[float, Field(ge=0, le=2)] | None = Field(
        default=None, description="pairs whose excess divergence is above this"
    )


class LlmJudgeConfig(_Model):
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
        return _http_url(value)

    @model_validator(mode="after")
    def _check_complete(self) -> LlmJudgeConfig:
        if not self.enabled:
            return self
        if self.url is None:
            raise _conflict("url: required when the judge is enabled")
        if not self.model:
            raise _conflict("model: required when the judge is enabled")
        if self.usd_per_day is not None and self.price is None:
            raise _conflict(
                "price: required to keep to usd_per_day (or set usd_per_day: null for no limit)"
            )
        return self


class ScoringConfig(_Model):
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
            _compiles(pattern, where=f"entry {i}: ")
        return value

    @model_validator(mode="after")
    def _check_claim_after_judge(self) -> ScoringConfig:
        # A batch waits for its judge calls before it is acknowledged; claimed sooner, it
        # would be scored (and judged, and paid for) twice.
        if self.judge.enabled and self.claim_idle_ms <= 2000 * self.judge.timeout_s:
            raise _conflict(
                f"claim_idle_ms: must be above twice judge.timeout_s ({self.claim_idle_ms} ms "
                f"<= 2 x {self.judge.timeout_s} s)"
            )
        return self


class ReviewConfig(_Model):
    lease_s: PositiveFloat = 600.0
    reviewers_per_item: Annotated[int, Field(ge=1, le=10)] = Field(
        default=1, description="an item is offered until this many different reviewers judged it"
    )
    mode: Literal["standard", "blind"] = Field(
        default="standard",
        description="blind: the answers are shown as A and B, never as production/candidate",
    )


class RolloutConfig(_Model):
    steps: list[Percent] = Field(default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0])
    interval_s: PositiveFloat = 60.0
    lock_ttl_s: PositiveFloat = 30.0
    min_samples: PositiveInt = 200
    min_verdicts: PositiveInt = 20
    error_margin: Annotated[float, Field(ge=0, le=1)] = 0.005
    latency_ratio: Annotated[float, Field(ge=1)] = 1.5
    slow_share: Annotated[float, Field(gt=0, lt=1)] = 0.02
    divergence_rate: Annotated[float, Field(gt=0, le=1)] = 0.10
    regression_share: Annotated[float, Field(gt=0, le=1)] = 0.20
    require_divergence: bool = False
    require_verdicts: bool = False
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    psi_threshold: PositiveFloat = Field(
        default=0.25, description="input drift: a feature's PSI above this is drift"
    )
    psi_action: Literal["report", "hold"] = Field(
        default="report", description="report drift only, or also hold the step on it"
    )
    psi_reference_s: PositiveFloat = Field(
        default=3600.0, description="the reference window: this long before the rollout began"
    )
    judge_regression_share: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="share of judged shadow pairs the LLM judge may call a "
        "regression; null: no judge guardrail",
    )
    judge_action: Literal["hold", "rollback"] = Field(
        default="hold", description="a judge breach holds the step, or also rolls it back"
    )

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, value: list[float]) -> list[float]:
        if not value or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("must be a non-empty, strictly increasing list of percentages")
        return value


class Config(_Model):
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


def _substitute(value: Any, path: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path}: environment variable {name} is not set")

    return _ENV_REF.sub(replace, value)


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or error.get("ctx", {}).get(
            "field", "config"
        )
        if error["type"] == "extra_forbidden":
            parts.append(f"{field}: unknown field")
        elif error["type"] == "missing":
            parts.append(f"{field}: required field is missing")
        elif error["type"] in ("candidate_required", "backlog_above_cap", "conflict"):
            parts.append(f"{field}: {error['msg']}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {message} (got {error.get('input')!r})")
    return "; ".join(parts)


def parse_config(data: Any, env: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed YAML document (a mapping) into a Config."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("config: the top level must be a mapping of fields")
    data = _substitute(data, "", os.environ if env is None else env)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a YAML config file; every failure is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_config(data, env)


def apply_environment(config: Config, env: Mapping[str, str] | None = None) -> Config:
    """Fill the control tokens from SHADOWGATE_ADMIN_TOKEN / SHADOWGATE_REVIEWER_TOKEN when
    the file leaves them unset. Called once, at the entry point."""
    env = os.environ if env is None else env
    control = config.control
    updates: dict[str, Any] = {}
    if control.admin_token is None and env.get("SHADOWGATE_ADMIN_TOKEN"):
        updates["admin_token"] = SecretStr(env["SHADOWGATE_ADMIN_TOKEN"])
    if control.reviewer_token is None and env.get("SHADOWGATE_REVIEWER_TOKEN"):
        updates["reviewer_token"] = SecretStr(env["SHADOWGATE_REVIEWER_TOKEN"])
    if not updates:
        return config
    return config.model_copy(update={"control": control.model_copy(update=updates)})
