"""Builds the gateway's servers and gives each app the resources its handlers use, one typed
key per resource (`gateway.app_keys`): the data plane around a Gateway's proxy, the control
plane, and the review API, which needs no more than a Redis client and the config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import control
from gateway.app_keys import (
    CONFIG,
    HEALTH,
    METRICS,
    MIRRORS,
    READINESS,
    REDIS,
    REVIEW_QUEUE,
    ROLLOUT,
    TRAFFIC,
)
from gateway.config import Config
from gateway.http_log import server_log
from gateway.keys import Keys
from gateway.proxy.data_server import DataServer
from gateway.review import api as review_api
from gateway.review.queue import ReviewQueue
from gateway.runtime import Gateway, cancel_all

log = logging.getLogger("shadowgate.apps")


def build_data_server(gateway: Gateway) -> DataServer:
    """The data plane: every method and path goes to the proxy.

    aiohttp's low-level server, not an Application: with one route that matches everything,
    the router, match info and middleware chain were per-request cost and nothing else.
    Request bodies are not decompressed: they go upstream as sent, with their own
    Content-Encoding and Content-Length. Needs a running event loop."""
    return DataServer(gateway.proxy.handle, listen=gateway.config.listen, metrics=gateway.metrics)


def build_control_app(gateway: Gateway) -> web.Application:
    """The control-plane app: health, metrics, admin and review routes, on `gateway`'s
    resources. It runs what only the control plane does: the review queue, and with a
    candidate the rollout controller's loop; a data-plane process of `serve --workers N` has
    no control app, so its parent runs them once for all."""
    app = build_review_app(config=gateway.config, redis=gateway.redis)
    app[METRICS] = gateway.metrics
    app[READINESS] = gateway.readiness
    app[HEALTH] = gateway.health
    app[TRAFFIC] = gateway.traffic
    app[MIRRORS] = gateway.dispatcher
    app[ROLLOUT] = gateway.rollout
    app.cleanup_ctx.append(_rollout_loop)
    control.add_routes(app)
    return app


def build_review_app(*, config: Config, redis: Redis) -> web.Application:
    """The reviewers' API and page alone, on a Redis client that the caller closes."""
    app = web.Application(handler_args={"logger": server_log})
    app[CONFIG] = config
    app[REDIS] = redis
    app.cleanup_ctx.append(_review_queue)
    review_api.add_routes(app)
    return app


async def _review_queue(app: web.Application) -> AsyncIterator[None]:
    """The review queue; its consumer group is made at start (the scoring workers make it as
    well, so a Redis that is down at start costs a warning here)."""
    config = app[CONFIG]
    keys = Keys.for_prefix(config.redis.key_prefix)
    queue = ReviewQueue(redis=app[REDIS], keys=keys, config=config.review)
    try:
        await queue.ensure_group()
    except (RedisError, OSError) as exc:
        log.warning("review: redis unavailable at start: %s", exc)
    app[REVIEW_QUEUE] = queue
    yield


async def _rollout_loop(app: web.Application) -> AsyncIterator[None]:
    """The rollout controller's loop, from start to cleanup, when there is a candidate."""
    if app[CONFIG].upstreams.candidate is None:
        yield
        return
    task = asyncio.create_task(app[ROLLOUT].run(), name="rollout")
    yield
    await cancel_all([task])
