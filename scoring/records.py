"""Records the scoring worker writes: a score for every pair, and review items for the pairs
a person should look at. One schema each, versioned, serialised with orjson."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from gateway.constants import SCORE_SCHEMA_VERSION
from gateway.records import PairRecord

Severity = Literal["low", "medium", "high"]
JudgeLabel = Literal["regression", "acceptable", "improvement"]
JudgeSkip = Literal["not_selected", "budget_rate", "budget_usd", "error", "timeout", "unparseable"]
SEVERITY_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}


class Evidence(BaseModel):
    """One thing the candidate's answer asserts differently from production's, with where it is
    in both answers (character offsets into each side's `text`) so a page can highlight it."""

    kind: str = Field(description="number, date, time, negation, modality, entity, ...")
    severity: Severity
    message: str = Field(description="a sentence for reviewers: 'dose 500 mg -> 5 g'")
    production: str | None = Field(default=None, description="production's value, as written")
    candidate: str | None = Field(default=None, description="the candidate's value, as written")
    production_span: tuple[int, int] | None = None
    candidate_span: tuple[int, int] | None = None
    path: str | None = Field(default=None, description="JSON path or tool call and argument")
    within_noise: bool = Field(
        default=False, description="production's own re-runs change this kind as often"
    )


class JudgeVerdict(BaseModel):
    """What the LLM judge (`scoring.judge`) said of a pair, or why it was not asked or not
    understood: exactly one of `label` and `skipped` is set."""

    label: JudgeLabel | None = None
    reason: str | None = Field(default=None, description="the judge's one-line reason")
    skipped: JudgeSkip | None = None
    model: str | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None


class ScoreRecord(BaseModel):
    """How far the candidate's answer is from production's, and why that may matter."""

    schema_version: int = SCORE_SCHEMA_VERSION
    pair_id: str
    ts: float
    route: str
    model: str | None = None
    unit: str | None = None
    semantic: float | None = Field(
        default=None, description="1 - cosine(candidate, production); None if either is missing"
    )
    noise: float | None = Field(default=None, description="1 - cosine(noise, production)")
    noise_floor: float = 0.0
    excess: float | None = Field(default=None, description="semantic - noise floor")
    production_flags: list[str] = Field(default_factory=list)
    candidate_flags: list[str] = Field(default_factory=list)
    length_ratio: float | None = None
    latency_delta_ms: float | None = None
    token_delta: int | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    queued: bool = False
    reasons: list[str] = Field(default_factory=list)
    judge: JudgeVerdict | None = Field(
        default=None, description="set when the LLM judge is enabled: its verdict or why none"
    )

    @property
    def new_flags(self) -> list[str]:
        """Flags the candidate raised that production did not."""
        return [f for f in self.candidate_flags if f not in self.production_flags]

    @property
    def counted_evidence(self) -> list[Evidence]:
        """Evidence outside production's own noise."""
        return [e for e in self.evidence if not e.within_noise]

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class ReviewItem(BaseModel):
    """A pair queued for reviewers, with its score and why it was queued."""

    schema_version: int = SCORE_SCHEMA_VERSION
    pair: PairRecord
    score: ScoreRecord
    priority: float

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> ReviewItem:
        raw: Any = orjson.loads(data)
        return cls.model_validate(raw)
