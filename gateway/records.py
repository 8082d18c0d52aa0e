"""Records that cross a process boundary, one schema each, versioned, serialised with orjson.

The gateway publishes a pair record for every mirrored request; the scoring worker writes a
score for every pair and a review item for those a person should look at; a reviewer's
verdict keeps the item it judged; the export writes each judged item as a golden case, which
replay reads back. Each record carries its own schema version. Records written by earlier
versions still load: every field added since has a default.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from gateway.constants import STREAM_FIELD


class _Record(BaseModel):
    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        return cls.model_validate(orjson.loads(data))


PAIR_SCHEMA_VERSION: Final = 1


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


class PairRecord(_Record):
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


def pairs_from_entries(entries: Any) -> list[PairRecord]:
    """Pair records from the `(id, fields)` entries XRANGE or XREADGROUP return."""
    return [PairRecord.from_json(fields[STREAM_FIELD.encode()]) for _, fields in entries]


SCORE_SCHEMA_VERSION: Final = 1
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


class ScoreRecord(_Record):
    """How far the candidate's answer is from production's, and why that may matter."""

    schema_version: int = SCORE_SCHEMA_VERSION
    pair_id: str
    ts: float = Field(description="when the pair was scored (the pair's own ts: when published)")
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


# Items queued before review items had a version of their own carry the score's, also 1.
REVIEW_SCHEMA_VERSION: Final = 1


class ReviewItem(_Record):
    """A pair queued for reviewers, with its score and why it was queued."""

    schema_version: int = REVIEW_SCHEMA_VERSION
    pair: PairRecord
    score: ScoreRecord
    priority: float

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


# 1: one reviewer per item (its verdict is the final label); 2: several, with blind choices.
VERDICT_SCHEMA_VERSION: Final = 2


class Verdict(_Record):
    """One reviewer's decision on one item; the golden set is made of these."""

    schema_version: int = VERDICT_SCHEMA_VERSION
    item_id: str
    pair_id: str | None = None
    route: str | None = None
    label: str
    choice: str | None = None
    """The blind choice (A, B, tie, both_bad) the label was derived from."""
    sides: dict[str, str] | None = None
    """The blind side order: letter -> production | candidate."""
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    reviewer: str
    reviewers_per_item: int = 1
    claimed_at: float
    decided_at: float
    item: ReviewItem | None = None
    """The item judged; None when the review stream no longer held a readable one."""

    @field_serializer("item")
    def _item_as_queued(self, item: ReviewItem | None) -> Any:
        # Written as the review stream holds it (ReviewItem.to_json), not with nulls added.
        return None if item is None else item.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


GOLDEN_SCHEMA_VERSION: Final = 1


class GoldenVote(BaseModel):
    """One reviewer's verdict as a golden case keeps it."""

    reviewer: str
    label: str
    choice: str | None = None
    sides: dict[str, str] | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    decided_at: float | None = None

    @classmethod
    def of(cls, verdict: Verdict) -> GoldenVote:
        return cls.model_validate(verdict.model_dump(include=set(cls.model_fields)))


class GoldenCase(_Record):
    """One judged item of the golden set (`shadowgate review export`), replayed against a model
    under test (`shadowgate replay`). Lines written before golden cases had a version are 1;
    hand-written lines need only `request` and the approved answer."""

    schema_version: int = GOLDEN_SCHEMA_VERSION
    pair_id: str | None = None
    route: str | None = None
    request: Any = None
    production: str | None = Field(default=None, description="production's answer, scrubbed")
    candidate: str | None = Field(default=None, description="the candidate's answer, scrubbed")
    label: str | None = Field(default=None, description="the final label of the candidate")
    tied: bool = False
    complete: bool = Field(default=True, description="every verdict the item needs is in")
    agreement: float | None = Field(default=None, description="share of verdicts = label")
    tags: list[str] = Field(default_factory=list)
    verdicts: list[GoldenVote] = Field(default_factory=list)

    @property
    def approved(self) -> str | None:
        """The answer reviewers approved: the candidate's, unless they found it a regression."""
        return self.production if self.label == "regression" else self.candidate

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))
