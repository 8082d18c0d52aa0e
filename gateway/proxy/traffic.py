"""The live traffic split, shared by every replica through one Redis hash.

Each replica keeps the last split it saw in memory (read on every request, no I/O) and polls
Redis for changes; a dead Redis leaves the last known split in force.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import Percent, format_validation_error
from gateway.errors import ConfigError
from gateway.proxy.arms import to_basis_points
from gateway.redis_client import as_text as _text
from gateway.redis_client import raise_if_cancelled

log = logging.getLogger("shadowgate.traffic")


class TrafficSplit(BaseModel):
    """Percentages of units shadowed and served by the canary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shadow_percent: Percent = 0.0
    canary_percent: Percent = 0.0

    @classmethod
    def parse(cls, data: object) -> TrafficSplit:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None


@dataclass(frozen=True, slots=True)
class LiveSplit:
    """The split in basis points, as the hot path reads it."""

    shadow_bp: int
    canary_bp: int
    split: TrafficSplit


def _live(split: TrafficSplit) -> LiveSplit:
    return LiveSplit(
        shadow_bp=to_basis_points(split.shadow_percent),
        canary_bp=to_basis_points(split.canary_percent),
        split=split,
    )


class TrafficState:
    """Holds the current split and keeps it in step with the shared Redis hash."""

    def __init__(
        self, *, initial: TrafficSplit, redis: Redis, key: str, poll_s: float, has_candidate: bool
    ) -> None:
        self.current = _live(initial)
        self._redis = redis
        self._key = key
        self._poll_s = poll_s
        self._has_candidate = has_candidate
        # Bumped by every local `set`: a poll that read Redis before it must not undo it.
        self._generation = 0

    def validate(self, split: TrafficSplit) -> None:
        if not self._has_candidate and (split.shadow_percent > 0 or split.canary_percent > 0):
            raise ConfigError("upstreams.candidate is not configured: percentages must stay 0")

    async def seed(self) -> None:
        """Write this replica's split unless another replica or an operator already did."""
        split = self.current.split
        try:
            created = await self._redis.hsetnx(self._key, "shadow_percent", split.shadow_percent)
            if created:
                await self._store(split, source="config")
            else:
                await self.refresh()
        except RedisError as exc:
            log.warning("traffic: redis unavailable at start, using the config's split: %s", exc)

    async def _store(self, split: TrafficSplit, *, source: str) -> None:
        await self._redis.hset(
            self._key,
            mapping={
                "shadow_percent": split.shadow_percent,
                "canary_percent": split.canary_percent,
                "updated_at": time.time(),
                "source": source,
            },
        )

    async def set(self, split: TrafficSplit, *, source: str) -> None:
        """Validate and publish a new split to every replica; raises ConfigError or RedisError."""
        self.validate(split)
        self._generation += 1
        await self._store(split, source=source)
        self.current = _live(split)
        log.info(
            "traffic set by %s: shadow %.2f%%, canary %.2f%%",
            source,
            split.shadow_percent,
            split.canary_percent,
        )

    async def refresh(self) -> None:
        generation = self._generation
        raw = await self._redis.hgetall(self._key)
        if not raw or generation != self._generation:
            return
        data = {_text(k): _text(v) for k, v in raw.items()}
        try:
            split = TrafficSplit.parse(
                {
                    "shadow_percent": float(data.get("shadow_percent", 0)),
                    "canary_percent": float(data.get("canary_percent", 0)),
                }
            )
            self.validate(split)
        except (ConfigError, ValueError) as exc:
            log.error("traffic: ignoring invalid split in redis: %s", exc)
            return
        if split != self.current.split:
            log.info("traffic changed: %s", split.model_dump())
            self.current = _live(split)

    async def run(self) -> None:
        """Poll for changes made by other replicas until cancelled."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh()
            except RedisError as exc:
                raise_if_cancelled()
                log.debug("traffic poll failed: %s", exc)
