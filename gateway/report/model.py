"""What `shadowgate report` shows, as plain models: per-arm traffic, latency and cost, the
divergence of scored pairs, what became of the mirrors, verdicts, input drift and the rollout.
`build.py` fills them from Redis; `table.py`, `plots.py` and `html.py` render them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.rollout.controller import RolloutState


class Quantiles(BaseModel):
    """p50, p95 and p99 (None without data; inf when past the last histogram bound)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class ArmReport(BaseModel):
    arm: str
    source: str
    """Where the numbers come from: every request, or the mirrored ones."""
    requests: int = 0
    errors: int = 0
    error_interval: tuple[float, float] | None = None
    """Wilson 95% interval of the error rate."""
    latency_s: Quantiles = Field(default_factory=Quantiles)
    ttfb_s: Quantiles = Field(default_factory=Quantiles)
    latency_buckets: list[int] = Field(default_factory=list)
    """Requests per latency bucket (upper bounds LATENCY_BOUNDS, then an open one)."""
    usage_samples: int = 0
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    cost_usd: float | None = None
    """Mean cost per request with usage, when prices are configured."""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class FlagCounts(BaseModel):
    candidate: int = 0
    production: int = 0
    new: int = 0
    """Pairs where the candidate raised the flag and production did not."""


class Divergence(BaseModel):
    scored: int = 0
    semantic: list[float] = Field(default_factory=list)
    """1 - cos(candidate, production) of each scored pair."""
    noise: list[float] = Field(default_factory=list)
    """1 - cos(noise sample, production), for pairs with a noise sample."""
    noise_floor: list[float] = Field(default_factory=list)
    excess: list[float] = Field(default_factory=list)
    threshold: float = 0.0
    queued: int = 0
    flags: dict[str, FlagCounts] = Field(default_factory=dict)


class PairAccount(BaseModel):
    """What became of the window's mirrors, each event counted when it happened, in the
    buckets every replica and worker adds to; `waiting` is now, whatever the window."""

    mirrors: dict[str, int] = Field(default_factory=dict)
    """By shadow outcome: sent, failed, timeout, and the dropped_* ones never sent."""
    published: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    """Pair records lost before they reached Redis, by reason."""
    dead_lettered: int = 0
    lost: dict[str, int] = Field(default_factory=dict)
    """Pairs published and never scored, by reason."""
    waiting: int | None = None
    oldest_age_s: float | None = None

    @property
    def mirrored(self) -> int:
        return sum(n for outcome, n in self.mirrors.items() if not outcome.startswith("dropped_"))

    @property
    def shed(self) -> dict[str, int]:
        return {o: n for o, n in self.mirrors.items() if o.startswith("dropped_")}


class DriftRow(BaseModel):
    feature: str
    canary_vs_production: float | None = None
    vs_previous_window: float | None = None


class Report(BaseModel):
    since: float
    until: float
    arms: list[ArmReport]
    timeline: list[tuple[int, dict[str, int]]] = Field(default_factory=list)
    """Per 10-second bucket: `<arm>:requests` and `<arm>:errors`."""
    divergence: Divergence = Field(default_factory=Divergence)
    pairs: PairAccount = Field(default_factory=PairAccount)
    verdicts: dict[str, int] = Field(default_factory=dict)
    drift: list[DriftRow] = Field(default_factory=list)
    drift_samples: dict[str, int] = Field(default_factory=dict)
    psi_threshold: float = 0.25
    rollout: RolloutState | None = None
    models: list[tuple[str, str, int]] = Field(default_factory=list)
    """Mirrored pairs per (production model, candidate model), most first."""
    capped: list[str] = Field(default_factory=list)
    """Streams with more records in the window than were read (the newest were kept)."""
    unreadable: dict[str, int] = Field(default_factory=dict)
    """Records per stream that did not parse, left out."""
    workers_alive: int = 0
    """Scoring workers with a live heartbeat when the report was made."""
