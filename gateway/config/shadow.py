"""The mirror's sections: `shadow` (which requests are mirrored and how many at once),
`capture` (how much of an answer is kept), `scrub` (what is replaced before text leaves the
user's path), `publish` and `redis` (how pairs reach the scoring workers)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field, SecretStr, field_validator

from gateway.config._base import Model, Percent, PositiveFloat, PositiveInt, compiles
from gateway.constants import DEFAULT_SHADOW_PATHS

# The entity types the scrubber replaces; `scrub.disable` may name any of them.
PII_ENTITIES: Final = tuple("EMAIL PHONE CARD IBAN SSN IP MAC SECRET PERSON ADDRESS DOB".split())


class ShadowConfig(Model):
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


class CaptureConfig(Model):
    max_bytes: PositiveInt = 1 << 20


class PublishConfig(Model):
    buffer_size: PositiveInt = 2000
    batch_size: PositiveInt = 64
    stream_maxlen: PositiveInt = 100_000
    max_backoff_s: PositiveFloat = 5.0
    shutdown_drain_s: Annotated[float, Field(ge=0)] = Field(
        default=2.0, description="at shutdown, the buffer may be written for this long"
    )


class RedisConfig(Model):
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


class CustomPattern(Model):
    name: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        return compiles(value)


class ScrubConfig(Model):
    custom: list[CustomPattern] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    pseudonym_key: SecretStr | None = None
    disable: list[str] = Field(
        default_factory=list, description="built-in entity types left unscrubbed, e.g. PERSON"
    )

    @field_validator("disable")
    @classmethod
    def _check_disable(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PII_ENTITIES:
                raise ValueError(f"unknown entity type {name!r}; one of {', '.join(PII_ENTITIES)}")
        return value
