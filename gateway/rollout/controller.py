"""The canary rollout controller: moves `canary_percent` through `rollout.steps`, judging the
canary against production every `rollout.interval_s`, and rolls back on its own.

Every replica runs one; only the holder of a Redis lock (SET NX with expiry) acts. Taking
the lock increments a fencing epoch, and state is written only while the epoch is still the
holder's, so a replica that stalled past its lock cannot overwrite a newer leader's
decisions. The state (status, step, looks, history with evidence) lives in Redis.

Beside the guardrails, every look measures input drift: the PSI of the canary's prompt
features against production's in a reference window before the rollout began. Drift is
reported; with `psi_action: hold` it also keeps the step from being promoted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import RolloutConfig
from gateway.constants import ARM_CANARY, ARM_PRODUCTION, JUDGE_LABELS
from gateway.errors import ShadowgateError
from gateway.keys import Keys
from gateway.proxy.arm_stats import ArmStats, prompt_counts, quantile_bound, slow_count
from gateway.proxy.traffic import TrafficSplit, TrafficState
from gateway.redis_client import as_text as _text
from gateway.redis_client import raise_if_cancelled
from gateway.review.scripts import STAT_FINAL
from scoring.aggregates import AGG_JUDGE_VERDICT, AGG_QUEUED, AGG_SCORED
from scoring.drift import check_drift, feature_psi
from scoring.judge import Window, judge

log = logging.getLogger("shadowgate.rollout")

Status = Literal["idle", "running", "paused", "halted", "done"]

# A step's baseline holds the aggregates' fields as they are and the review stats' fields
# under this prefix (a stored rollout state carries it: keep it as it is).
_VERDICT = "verdict:"

# KEYS: state, epoch. ARGV: my epoch, state json. Writes only while the epoch is ours.
_FENCED_SET = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
# KEYS: lock, epoch. ARGV: replica, ttl ms. Takes a free lock and numbers it.
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch
"""
# KEYS: lock. ARGV: token, ttl ms. Renews only our own lock.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RolloutConflict(ShadowgateError):
    """An operator command the rollout's status refuses (pausing one that is not running)."""


class Decision(BaseModel):
    at: float
    step: float
    look: int
    decision: str
    reason: str = ""
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class RolloutState(BaseModel):
    status: Status = "idle"
    steps: list[float] = Field(default_factory=list)
    step_index: int = 0
    step_started_at: float = 0.0
    look: int = 1
    baseline: dict[str, float] = Field(default_factory=dict)
    reason: str = ""
    reference_since: float = 0.0
    reference_until: float = 0.0
    drift: dict[str, Any] = Field(default_factory=dict)
    """The last look's input-drift evidence."""
    history: list[Decision] = Field(default_factory=list)

    @property
    def percent(self) -> float:
        return self.steps[self.step_index] if self.steps else 0.0


class RolloutController:
    """One replica's controller; `run()` acts only while this replica holds the lock."""

    def __init__(
        self,
        *,
        redis: Redis,
        keys: Keys,
        config: RolloutConfig,
        traffic: TrafficState,
        arm_stats: ArmStats,
        replica: str,
    ) -> None:
        self._redis = redis
        self._config = config
        self._traffic = traffic
        self._arm_stats = arm_stats
        self._state_key = keys.rollout
        self._lock_key = keys.rollout_lock
        self._epoch_key = keys.rollout_epoch
        self._aggregates_key = keys.aggregates
        self._verdict_stats_key = keys.review_stats
        self._replica = replica
        self._epoch: str | None = None
        self._reference: tuple[tuple[float, float], dict[str, Counter[str]]] | None = None
        self._fenced_set = redis.register_script(_FENCED_SET)
        self._renew = redis.register_script(_RENEW)
        self._acquire = redis.register_script(_ACQUIRE)

    @property
    def is_leader(self) -> bool:
        """Whether this replica held the lock at its last check."""
        return self._epoch is not None

    @property
    def _token(self) -> str:
        return f"{self._replica}:{self._epoch}"

    async def lead(self) -> bool:
        """Take or keep the lock; True while this replica is the leader."""
        ttl_ms = int(self._config.lock_ttl_s * 1000)
        if self._epoch is not None and await self._renew(
            keys=[self._lock_key], args=[self._token, ttl_ms]
        ):
            return True
        epoch = await self._acquire(
            keys=[self._lock_key, self._epoch_key], args=[self._replica, ttl_ms]
        )
        if epoch is None:
            self._epoch = None
            return False
        self._epoch = str(epoch)
        log.info("rollout: %s leads (epoch %s)", self._replica, self._epoch)
        return True

    async def state(self) -> RolloutState:
        raw = await self._redis.get(self._state_key)
        return RolloutState.model_validate(orjson.loads(raw)) if raw else RolloutState()

    async def _save(self, state: RolloutState, *, fenced: bool = True) -> bool:
        state.history = state.history[-50:]
        payload = orjson.dumps(state.model_dump(mode="json"))
        if not fenced:  # operator commands: they must work with or without a leader
            await self._redis.set(self._state_key, payload)
            return True
        written = await self._fenced_set(
            keys=[self._state_key, self._epoch_key], args=[self._epoch or "", payload]
        )
        return bool(written)

    async def _baseline(self) -> dict[str, float]:
        aggregates = await self._redis.hgetall(self._aggregates_key)
        verdicts = await self._redis.hgetall(self._verdict_stats_key)
        values = {_text(k): float(v) for k, v in aggregates.items()}
        values.update({_VERDICT + _text(k): float(v) for k, v in verdicts.items()})
        return values

    async def _window(self, state: RolloutState, counts: Counter[str]) -> Window:
        now = await self._baseline()
        base = state.baseline

        def delta(name: str) -> int:
            return max(0, int(now.get(name, 0.0) - base.get(name, 0.0)))

        def final(label: str) -> int:
            return delta(_VERDICT + STAT_FINAL + label)

        threshold = quantile_bound(counts, ARM_PRODUCTION, 0.99) * self._config.latency_ratio
        # Final labels: an item counts once, when its last reviewer has judged it.
        regressions = final("regression")
        return Window(
            canary_requests=counts[f"{ARM_CANARY}:requests"],
            canary_errors=counts[f"{ARM_CANARY}:errors"],
            production_requests=counts[f"{ARM_PRODUCTION}:requests"],
            production_errors=counts[f"{ARM_PRODUCTION}:errors"],
            canary_slow=slow_count(counts, ARM_CANARY, threshold) if threshold else 0,
            scored=delta(AGG_SCORED),
            divergent=delta(AGG_QUEUED),
            verdicts=regressions + final("acceptable") + final("improvement"),
            regressions=regressions,
            judged=sum(delta(AGG_JUDGE_VERDICT + label) for label in JUDGE_LABELS),
            judge_regressions=delta(AGG_JUDGE_VERDICT + "regression"),
        )

    async def _reference_prompts(self, state: RolloutState) -> dict[str, Counter[str]]:
        """Production's prompt features in the reference window (fixed, so read once)."""
        span = (state.reference_since, state.reference_until)
        if not state.reference_until:
            return {}
        if self._reference is None or self._reference[0] != span:
            counts = await self._arm_stats.window(*span)
            self._reference = (span, prompt_counts(counts, ARM_PRODUCTION))
        return self._reference[1]

    async def _drift(self, state: RolloutState, counts: Counter[str]) -> dict[str, Any]:
        canary = prompt_counts(counts, ARM_CANARY)
        c = self._config
        reference = await self._reference_prompts(state)
        check = check_drift(reference, canary, threshold=c.psi_threshold, min_samples=c.min_samples)
        beside = feature_psi(prompt_counts(counts, ARM_PRODUCTION), canary)
        return {
            "guardrail": "input_drift",
            "outcome": check.outcome,
            "action": c.psi_action,
            **check.evidence(),
            "vs_production_psi_max": max(beside.values(), default=None),
        }

    async def tick(self) -> RolloutState:
        """One evaluation as the leader: promote, roll back or hold."""
        state = await self.state()
        if state.status != "running":
            return state
        counts = await self._arm_stats.window(state.step_started_at)
        result = judge(await self._window(state, counts), self._config, look=state.look)
        state.drift = await self._drift(state, counts)
        evidence = [
            {"guardrail": v.guardrail, "outcome": v.outcome, "p_value": v.p_value, **v.evidence}
            for v in result.verdicts
        ]
        evidence.append(state.drift)
        decision = result.decision
        # Drift never rolls back (the candidate did not cause it) and never overrides a
        # rollback; with psi_action hold it keeps a step from being promoted on traffic
        # unlike the reference.
        held = state.drift["outcome"] == "drift" and self._config.psi_action == "hold"
        if held and decision == "promote":
            decision = "hold"
        judge_held = decision == "hold" and any(
            v.guardrail == "judge_regressions" and v.outcome == "breach" for v in result.verdicts
        )
        reason = "input_drift" if held and decision == "hold" else ""
        record = Decision(
            at=time.time(),
            step=state.percent,
            look=state.look,
            decision=decision,
            evidence=evidence,
            reason=reason or ("judge_regressions" if judge_held else ""),
        )
        if decision == "rollback":
            breached = [v.guardrail for v in result.verdicts if v.outcome == "breach"]
            record.reason = "breached: " + ", ".join(breached)
            await self._traffic.set(self._split(0.0), source="rollout-rollback")
            state.status, state.reason = "halted", record.reason
        elif decision == "promote" and state.step_index + 1 >= len(state.steps):
            state.status, state.reason = "done", "every step passed"
        elif decision == "promote":
            state.step_index += 1
            state.reason = ""
            await self._begin_step(state)
        else:
            state.look += 1
            state.reason = record.reason
        state.history.append(record)
        if not await self._save(state):
            log.warning("rollout: lost the lead before saving; decision not recorded")
        log.info("rollout: %s at %.1f%% (look %d)", decision, record.step, record.look)
        return state

    def _split(self, canary: float) -> TrafficSplit:
        current = self._traffic.current.split
        return TrafficSplit(shadow_percent=current.shadow_percent, canary_percent=canary)

    async def _begin_step(self, state: RolloutState) -> None:
        await self._traffic.set(self._split(state.percent), source="rollout")
        await self._arm_stats.flush()
        state.step_started_at = time.time()
        state.look = 1
        state.baseline = await self._baseline()

    async def run(self) -> None:
        """Evaluate every interval while leading; outages are logged and waited out."""
        while True:
            try:
                if await self.lead():
                    await self.tick()
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                log.warning("rollout: redis unavailable: %s", exc)
            await asyncio.sleep(self._config.interval_s)

    # Operator commands (admin API and CLI).

    async def start(self, steps: list[float] | None = None) -> RolloutState:
        state = RolloutState(status="running", steps=steps or list(self._config.steps))
        self._pin_reference(state)
        await self._begin_step(state)
        state.history.append(Decision(at=time.time(), step=state.percent, look=0, decision="start"))
        await self._save(state, fenced=False)
        return state

    async def pause(self) -> RolloutState:
        return await self._set_status(
            "paused", action="pause", from_={"running"}, reason="paused by operator"
        )

    async def resume(self) -> RolloutState:
        state = await self.state()
        if state.status not in ("paused", "halted"):
            raise RolloutConflict(f"cannot resume a rollout that is {state.status}")
        state.status, state.reason = "running", ""
        self._pin_reference(state)
        await self._begin_step(state)
        await self._save(state, fenced=False)
        return state

    def _pin_reference(self, state: RolloutState) -> None:
        """The drift reference: the traffic of the `psi_reference_s` before (re)starting, so
        an operator who accepts a changed traffic mix resumes to make it the reference."""
        state.reference_until = time.time()
        state.reference_since = state.reference_until - self._config.psi_reference_s

    async def abort(self) -> RolloutState:
        await self._traffic.set(self._split(0.0), source="rollout-abort")
        return await self._set_status(
            "halted",
            action="abort",
            from_={"running", "paused", "done"},
            reason="aborted by operator",
        )

    async def _set_status(
        self, status: Status, *, action: str, from_: set[str], reason: str
    ) -> RolloutState:
        state = await self.state()
        if state.status not in from_:
            raise RolloutConflict(f"cannot {action} a rollout that is {state.status}")
        state.status, state.reason = status, reason
        state.history.append(
            Decision(
                at=time.time(), step=state.percent, look=state.look, decision=status, reason=reason
            )
        )
        await self._save(state, fenced=False)
        return state
