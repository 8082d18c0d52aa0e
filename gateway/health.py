"""Whether this process takes users' traffic (`Readiness`), and how the gateway's helpers are
doing, for /readyz and `shadowgate_component_up`: whether Redis answers, how many scoring
workers have a live heartbeat, and whether the pair publisher is writing. None of the helpers
is needed to serve users: they decide whether mirrors get scored.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.keys import Keys
from gateway.metrics import Metrics
from gateway.redis_client import raise_if_cancelled
from gateway.shadow.publish import PairPublisher
from scoring.heartbeat import alive_workers

log = logging.getLogger("shadowgate.health")

COMPONENT_REDIS = "redis"
COMPONENT_WORKER = "worker"
COMPONENT_PUBLISHER = "publisher"


class Readiness:
    """What /readyz answers: not ready until the process's resources are open (and, with
    `--workers`, its data-plane processes listen), and never again once draining began, so
    that the load balancer stops sending before the data port closes."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def serving(self, ready: bool) -> None:
        """Ready or not from now on, unless shutdown already began."""
        if not self.draining:
            self.ready = ready

    def start_draining(self) -> None:
        """Shutdown began: /readyz answers 503 from now on, before the data port closes."""
        self.draining = True
        self.ready = False


class ComponentHealth:
    """Checks the components every `every_s`; `status` is the last result. /readyz answers
    from it without waiting: a Redis that does not answer must not slow readiness probes
    into timeouts and take a replica that serves users fine out of rotation."""

    def __init__(
        self, *, redis: Redis, keys: Keys, publisher: PairPublisher, metrics: Metrics
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._publisher = publisher
        self._metrics = metrics
        self.status: dict[str, Any] = {}

    async def check(self) -> None:
        """Refresh `status`, e.g. `{"redis": "up", "worker": "up", "workers_alive": 1,
        "publisher": "up"}`, and the gauges. Workers count as down while Redis is, since
        their heartbeats cannot be read."""
        try:
            await self._redis.ping()
            workers = len(await alive_workers(self._redis, self._keys))
            redis_up = True
        except (RedisError, OSError):
            raise_if_cancelled()
            redis_up, workers = False, 0
        up = {
            COMPONENT_REDIS: redis_up,
            COMPONENT_WORKER: workers > 0,
            COMPONENT_PUBLISHER: self._publisher.up,
        }
        for component, value in up.items():
            self._metrics.component_up.labels(component).set(int(value))
        self._metrics.workers_alive.set(workers)
        self.status = {
            **{component: "up" if value else "down" for component, value in up.items()},
            "workers_alive": workers,
        }

    async def run(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.check()
