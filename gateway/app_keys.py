"""The typed keys under which an aiohttp app holds the shared resources its handlers use, one
per resource (`gateway.apps` sets them where it builds each app). The types are imported for
the type checker only: a handler module that reads two of these keys loads neither the others'
code nor the data plane's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gateway.config import Config
    from gateway.health import ComponentHealth, Readiness
    from gateway.metrics import Metrics
    from gateway.proxy.traffic import TrafficState
    from gateway.review.queue import ReviewQueue
    from gateway.rollout.controller import RolloutController
    from gateway.shadow.dispatcher import ShadowDispatcher

CONFIG: Final[web.AppKey[Config]] = web.AppKey("config")
METRICS: Final[web.AppKey[Metrics]] = web.AppKey("metrics")
READINESS: Final[web.AppKey[Readiness]] = web.AppKey("readiness")
HEALTH: Final[web.AppKey[ComponentHealth]] = web.AppKey("health")
REDIS: Final[web.AppKey[Redis]] = web.AppKey("redis")
TRAFFIC: Final[web.AppKey[TrafficState]] = web.AppKey("traffic")
# None without a candidate upstream; the admin API shows how many mirrors are in flight.
MIRRORS: Final[web.AppKey[ShadowDispatcher | None]] = web.AppKey("mirrors")
ROLLOUT: Final[web.AppKey[RolloutController]] = web.AppKey("rollout")
REVIEW_QUEUE: Final[web.AppKey[ReviewQueue]] = web.AppKey("review_queue")
