"""The gateway's shared resources, opened once and closed once: upstream sessions, the Redis
client, the live traffic split, the publisher and the shadow dispatcher, the rollout
controller, and the tasks that keep them running. No handler sees this object: `gateway.apps`
hands each app the resources it uses under typed keys (`gateway.app_keys`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from gateway.config import Config
from gateway.constants import GROUP_REVIEWERS, LOST_TRIMMED_UNSCORED
from gateway.health import ComponentHealth, Readiness
from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.proxy.arm_stats import ArmStats
from gateway.proxy.arms import ArmAssigner
from gateway.proxy.handler import ProxyHandler
from gateway.proxy.headers import credential_headers
from gateway.proxy.model_names import ModelNames
from gateway.proxy.query_credentials import credential_params
from gateway.proxy.traffic import TrafficSplit, TrafficState
from gateway.proxy.upstream import Upstream
from gateway.redis_client import connect, raise_if_cancelled
from gateway.rollout.controller import RolloutController
from gateway.rollout.metrics import RolloutCollector
from gateway.scrub.scrubber import Scrubber
from gateway.shadow.dispatcher import ShadowDispatcher
from gateway.shadow.ledger import CounterLedger
from gateway.shadow.mirror_session import MirrorSession
from gateway.shadow.publish import PairPublisher
from scoring.aggregates import SnapshotCollector, load_snapshot, review_depth
from scoring.backlog import Backlog, BacklogCollector, BacklogMeter

if TYPE_CHECKING:
    from gateway.tracing.spans import Tracing

log = logging.getLogger("shadowgate.runtime")


class Gateway:
    """Owns every long-lived resource of one gateway process; use as an async context."""

    def __init__(
        self,
        *,
        config: Config,
        redis_url: str,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.redis_url = redis_url
        self.metrics = metrics or Metrics()
        self.readiness = Readiness()
        self.keys = keys = Keys.for_prefix(config.redis.key_prefix)
        self.production = Upstream(name="production", config=config.upstreams.production)
        candidate_config = config.upstreams.candidate
        self.candidate = (
            Upstream(
                name="candidate",
                config=candidate_config,
                strip_headers=credential_headers(candidate_config.credential_headers),
                strip_params=credential_params(candidate_config.credential_params),
            )
            if candidate_config
            else None
        )
        # Mirrors get a pool of their own so they can never take the user's connections.
        self.shadow_pool = (
            MirrorSession(config=candidate_config, max_connections=config.shadow.max_in_flight * 2)
            if candidate_config
            else None
        )
        self.redis = connect(config.redis, redis_url)
        self.traffic = TrafficState(
            initial=TrafficSplit(
                shadow_percent=config.traffic.shadow_percent,
                canary_percent=config.traffic.canary_percent,
            ),
            redis=self.redis,
            key=keys.traffic,
            poll_s=config.redis.traffic_poll_s,
            has_candidate=self.candidate is not None,
        )
        self.publisher = PairPublisher(
            redis=self.redis,
            stream_key=keys.pairs,
            published_key=keys.published,
            config=config.publish,
            metrics=self.metrics,
        )
        self.scrubber = Scrubber(config.scrub)
        assigner = ArmAssigner(unit_key=config.traffic.unit_key, salt=config.traffic.salt)
        self.dispatcher = (
            ShadowDispatcher(
                config=config.shadow,
                capture=config.capture,
                candidate=self.candidate,
                production=self.production,
                assigner=assigner,
                models=ModelNames.for_candidate(candidate_config),
                session=self.shadow_pool,
                scrubber=self.scrubber,
                publisher=self.publisher,
                metrics=self.metrics,
                tracing=tracing,
            )
            if self.candidate is not None and self.shadow_pool is not None
            else None
        )
        self.arm_stats = ArmStats(redis=self.redis, keys=keys, metrics=self.metrics)
        self.proxy = ProxyHandler(
            config=config,
            production=self.production,
            candidate=self.candidate,
            assigner=assigner,
            traffic=self.traffic,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            arm_stats=self.arm_stats,
            tracing=tracing,
        )
        self.rollout = RolloutController(
            redis=self.redis,
            keys=keys,
            config=config.rollout,
            traffic=self.traffic,
            arm_stats=self.arm_stats,
            replica=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}",
        )
        self.health = ComponentHealth(
            redis=self.redis, keys=keys, publisher=self.publisher, metrics=self.metrics
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.scoring = SnapshotCollector()
        self.metrics.registry.register(self.scoring)
        self.rollout_view = RolloutCollector(self.traffic)
        self.metrics.registry.register(self.rollout_view)
        self.backlog_meter = BacklogMeter(redis=self.redis, keys=keys)
        self.backlog = BacklogCollector()
        self.metrics.registry.register(self.backlog)
        self.ledger = CounterLedger(metrics=self.metrics, arm_stats=self.arm_stats)

    def upstreams(self) -> list[Upstream | MirrorSession]:
        return [u for u in (self.production, self.candidate, self.shadow_pool) if u is not None]

    async def __aenter__(self) -> Gateway:
        for upstream in self.upstreams():
            await upstream.open()
        await self.traffic.seed()
        await self._check_redis()
        self.publisher.start()
        await self.health.check()
        self._tasks.append(asyncio.create_task(self.health.run(), name="component-health"))
        self._tasks.append(asyncio.create_task(self.traffic.run(), name="traffic-poller"))
        self._tasks.append(asyncio.create_task(self._refresh_scoring(), name="scoring-metrics"))
        self._tasks.append(
            asyncio.create_task(self.arm_stats.run(before_flush=self.ledger.copy), name="arm-stats")
        )
        self.readiness.serving(True)
        return self

    async def _check_redis(self) -> None:
        """Set `redis_up` from a PING, so that it says the truth before the first publish."""
        await self._watch_redis(self.redis.ping(), "redis unavailable at start", logging.WARNING)

    async def _watch_redis(self, call: Awaitable[object], failure: str, level: int) -> None:
        """Await a Redis call; whether it got through is what `redis_up` says next."""
        try:
            await call
        except (RedisError, OSError) as exc:
            raise_if_cancelled()
            log.log(level, "%s: %s", failure, exc)
            self.metrics.redis_up.set(0)
        else:
            self.metrics.redis_up.set(1)

    async def _load_scoring(self) -> None:
        self._track_backlog(await self.backlog_meter.measure())
        self.scoring.snapshot = await load_snapshot(self.redis, self.keys.aggregates)
        self.scoring.review_depth = await review_depth(
            self.redis, self.keys.review, GROUP_REVIEWERS
        )
        self.rollout_view.state = await self.rollout.state()

    async def _refresh_scoring(self) -> None:
        """Copy the workers' aggregates, the backlog and the rollout state from Redis for
        /metrics (collectors cannot await) and for shedding mirrors; whether that worked keeps
        `redis_up` current while no pair is published."""
        while True:
            await self._watch_redis(
                self._load_scoring(), "scoring metrics refresh failed", logging.DEBUG
            )
            await asyncio.sleep(self.config.redis.scoring_poll_s)

    def _track_backlog(self, backlog: Backlog) -> None:
        previous, self.backlog.last = self.backlog.last, backlog
        trimmed = backlog.lost[LOST_TRIMMED_UNSCORED]
        if previous is not None and trimmed > previous.lost[LOST_TRIMMED_UNSCORED]:
            log.warning(
                "%d pairs were trimmed from the stream before any worker read them "
                "(publish.stream_maxlen %d); counted lost (%s)",
                trimmed - previous.lost[LOST_TRIMMED_UNSCORED],
                self.config.publish.stream_maxlen,
                LOST_TRIMMED_UNSCORED,
            )
        if self.dispatcher is None:
            return
        bound = self.config.shadow.max_backlog
        was_shedding = self.dispatcher.backlog >= bound
        self.dispatcher.backlog = backlog.waiting
        if (backlog.waiting >= bound) != was_shedding:
            log.warning(
                "%d pairs wait to be scored (shadow.max_backlog %d): mirrors %s",
                backlog.waiting,
                bound,
                "resume" if was_shedding else "are shed until the workers catch up",
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.readiness.serving(False)
        # Mirrors first: the pairs they finish still go through the publisher's buffer.
        if self.dispatcher is not None:
            await self.dispatcher.close(grace_s=self.config.shadow.shutdown_grace_s)
        await self.publisher.close(drain_timeout_s=self.config.publish.shutdown_drain_s)
        await cancel_all(self._tasks)
        self._tasks.clear()
        self.ledger.copy()
        await self.arm_stats.flush()
        for upstream in self.upstreams():
            await upstream.close()
        await self.redis.aclose()


async def cancel_all(tasks: list[asyncio.Task[None]], grace_s: float = 0.2) -> None:
    """Cancel background loops and wait for them. A cancellation that lands inside a Redis
    command can be turned into a connection error by the client and swallowed by a retry
    loop; such a task is cancelled again once it is back at its sleep."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace_s)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())
