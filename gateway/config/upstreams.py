"""The data plane's sections: `listen` (the port users call), `upstreams` (production and the
candidate, with their pools, timeouts and prices) and `traffic` (the shadow and canary shares
and the unit key that keeps a user in one arm)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from gateway.config._base import Model, Percent, Port, PositiveFloat, PositiveInt, http_url

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
# Decoded names, as `strip_credential_params` compares them: no separator of a query.
_PARAM_NAME = re.compile(r"^[^&=?#\s]+$")
_UNIT_KEY = re.compile(r"^(auth|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|body:[A-Za-z0-9_-]+)$")


class ListenConfig(Model):
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


class TokenPrice(Model):
    """USD per million tokens."""

    input_per_1m: Annotated[float, Field(ge=0)]
    output_per_1m: Annotated[float, Field(ge=0)]

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


class UpstreamConfig(Model):
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
        return http_url(value)


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
    credential_params: list[str] = Field(
        default_factory=list,
        description="query parameters that carry a user's credentials, never sent to the "
        "candidate, on top of the built-in ones (api-key, key, access_token, token, ...)",
    )

    @field_validator("credential_headers", "credential_params")
    @classmethod
    def _check_names(cls, value: list[str], info: ValidationInfo) -> list[str]:
        header = info.field_name == "credential_headers"
        pattern, kind = (_HEADER_NAME, "header") if header else (_PARAM_NAME, "query parameter")
        for name in value:
            if not pattern.match(name):
                raise ValueError(f"{name!r} is not a {kind} name")
        return value


class UpstreamsConfig(Model):
    production: UpstreamConfig
    candidate: CandidateConfig | None = None


class TrafficConfig(Model):
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
