"""Records that cross a process boundary, one schema each, serialised with orjson.

A pair record is what the gateway publishes for every mirrored request: the scrubbed request
and, per side (production, candidate, optional noise), what came back.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gateway.constants import PAIR_SCHEMA_VERSION, STREAM_FIELD


class Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class Exchange(BaseModel):
    """One upstream's answer to the request, reassembled and scrubbed."""

    status: int | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    streamed: bool = False
    truncated: bool = False
    error: str | None = None


class PairRecord(BaseModel):
    """A mirrored request with production's, the candidate's and optionally a noise answer."""

    schema_version: int = PAIR_SCHEMA_VERSION
    id: str
    ts: float
    route: str
    method: str = "POST"
    unit: str | None = Field(
        default=None, description="keyed hash of the unit key, never its value"
    )
    model: str | None = Field(default=None, description="the request's model: production's name")
    candidate_model: str | None = Field(
        default=None, description="the name the candidate was asked for (upstreams.candidate.model)"
    )
    request: Any = None
    production: Exchange
    candidate: Exchange
    noise: Exchange | None = None
    pii: dict[str, int] = Field(default_factory=dict)
    traceparent: str | None = Field(
        default=None, description="W3C traceparent of the mirror's span, when it was traced"
    )

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> PairRecord:
        return cls.model_validate(orjson.loads(data))


def pairs_from_entries(entries: Any) -> list[PairRecord]:
    """Pair records from the `(id, fields)` entries XRANGE or XREADGROUP return."""
    return [PairRecord.from_json(fields[STREAM_FIELD.encode()]) for _, fields in entries]
