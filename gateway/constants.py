"""Names that other processes, dashboards and outside checks rely on, defined once."""

from typing import Final

# Headers.
ARM_HEADER: Final = "x-shadowgate-arm"
SHADOW_HEADER: Final = "x-shadowgate-shadow"
REQUEST_ID_HEADER: Final = "x-request-id"
REVIEWER_HEADER: Final = "x-reviewer"

# Arms as they appear in headers, metrics and records.
ARM_PRODUCTION: Final = "production"
ARM_CANARY: Final = "canary"
ARM_SHADOW: Final = "shadow"
ARM_NOISE: Final = "noise"

# Redis keys, relative to `redis.key_prefix` (default "shadowgate:").
KEY_PAIRS: Final = "pairs"
KEY_SCORES: Final = "scores"
KEY_REVIEW: Final = "review"
KEY_VERDICTS: Final = "verdicts"
KEY_TRAFFIC: Final = "traffic"
# The review queue's state beside its stream (review/scripts.py says what each holds).
KEY_REVIEW_QUEUE: Final = "review:queue"
KEY_REVIEW_ITEMS: Final = "review:items"
KEY_REVIEW_EXPIRY: Final = "review:expiry"
KEY_REVIEW_PRIORITY: Final = "review:priority"
KEY_REVIEW_TAGS: Final = "review:tags"
KEY_REVIEW_STATS: Final = "review:stats"
KEY_REVIEW_AGREEMENT: Final = "review:agreement"
KEY_REVIEW_DURATIONS: Final = "review:durations"
# The rollout's state, its leader lock and the lock's fencing epoch.
KEY_ROLLOUT: Final = "rollout"
KEY_ROLLOUT_LOCK: Final = "rollout:lock"
KEY_ROLLOUT_EPOCH: Final = "rollout:epoch"
# Per-arm counts in 10-second buckets: `arms:<bucket start, unix seconds>`.
KEY_ARM_BUCKET: Final = "arms:"
GROUP_REVIEWERS: Final = "reviewers"
GROUP_SCORERS: Final = "scorers"

# Metric names (the registry adds no prefix of its own).
METRIC_PREFIX: Final = "shadowgate_"

# Outcomes of one mirrored request, the label values of shadowgate_shadow_total.
SHADOW_SENT: Final = "sent"
SHADOW_DROPPED_SATURATED: Final = "dropped_saturated"
SHADOW_DROPPED_TOO_LARGE: Final = "dropped_too_large"
SHADOW_DROPPED_CIRCUIT_OPEN: Final = "dropped_circuit_open"
SHADOW_DROPPED_BACKLOG: Final = "dropped_backlog"
SHADOW_DROPPED_SHUTDOWN: Final = "dropped_shutdown"
SHADOW_FAILED: Final = "failed"
SHADOW_TIMEOUT: Final = "timeout"
# The candidate's answer ran past `capture.max_bytes`: read that far, then its connection closed.
SHADOW_TRUNCATED: Final = "truncated"

# Default routes that are mirrored: the OpenAI text-generation endpoints.
DEFAULT_SHADOW_PATHS: Final = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
)

# Every stream entry carries one field holding the record's JSON; entries of the pairs stream
# also carry their running number among all pairs published (see shadow/publish.py).
STREAM_FIELD: Final = "data"
SEQ_FIELD: Final = "seq"

# Scoring: entries that failed `scoring.max_attempts` times, per-entry attempt counts, and
# the aggregates the rollout judge and /metrics read.
KEY_DEAD_LETTER: Final = "pairs:dead"
KEY_ATTEMPTS: Final = "pairs:attempts"
KEY_AGGREGATES: Final = "aggregates"
KEY_PUBLISHED: Final = "pairs:published"

# Why a published pair was never scored, the label values of shadowgate_pairs_lost_total:
# the stream cap trimmed it before any worker read it, or while a worker that then died held
# it. Counted in the aggregates hash as `lost:<reason>`.
LOST_TRIMMED_UNSCORED: Final = "trimmed_unscored"
LOST_TRIMMED_PENDING: Final = "trimmed_pending"
# Scoring workers' heartbeats: the set of worker names, and one key per worker that expires
# when its heartbeat stops.
KEY_WORKERS: Final = "workers"
KEY_WORKER_HEARTBEAT: Final = "workers:"

# The LLM judge (`scoring.judge`): its spend and call counts, shared by every worker, live
# under this key; why a scored pair got no verdict is one of the JUDGE_SKIP_* reasons, the
# label values of shadowgate_judge_skipped_total.
KEY_JUDGE_BUDGET: Final = "judge:budget"
JUDGE_SKIP_NOT_SELECTED: Final = "not_selected"
JUDGE_SKIP_BUDGET_RATE: Final = "budget_rate"
JUDGE_SKIP_BUDGET_USD: Final = "budget_usd"
JUDGE_SKIP_ERROR: Final = "error"
JUDGE_SKIP_TIMEOUT: Final = "timeout"
JUDGE_SKIP_UNPARSEABLE: Final = "unparseable"
JUDGE_SKIPS: Final = (
    JUDGE_SKIP_NOT_SELECTED,
    JUDGE_SKIP_BUDGET_RATE,
    JUDGE_SKIP_BUDGET_USD,
    JUDGE_SKIP_ERROR,
    JUDGE_SKIP_TIMEOUT,
    JUDGE_SKIP_UNPARSEABLE,
)
JUDGE_LABELS: Final = ("regression", "acceptable", "improvement")
