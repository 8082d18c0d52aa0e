"""The control plane: health, readiness, Prometheus metrics and the admin traffic API."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError

from gateway.auth import check_token, http_error, json_object, json_response
from gateway.config import RolloutConfig, format_validation_error
from gateway.errors import ConfigError
from gateway.proxy.traffic import TrafficSplit
from gateway.runtime import GATEWAY_KEY, Gateway


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the data plane can serve users; the body says how the components that
    only mirroring and scoring need were at the last check (Redis, workers, publisher)."""
    gateway = request.app[GATEWAY_KEY]
    status = 200 if gateway.ready else 503
    return json_response({"ready": gateway.ready, **gateway.health.status}, status=status)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[GATEWAY_KEY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _traffic_view(gateway: Gateway) -> dict[str, Any]:
    split = gateway.traffic.current.split
    return {
        "shadow_percent": split.shadow_percent,
        "canary_percent": split.canary_percent,
        "shadow_in_flight": gateway.dispatcher.in_flight if gateway.dispatcher else 0,
    }


async def get_traffic(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    check_token(request, gateway.config.control.admin_token, what="admin")
    return json_response(_traffic_view(gateway))


async def put_traffic(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    check_token(request, gateway.config.control.admin_token, what="admin")
    update = await json_object(request)
    if not update:
        raise http_error(
            400, "body must be a JSON object with shadow_percent and/or canary_percent"
        )
    merged = gateway.traffic.current.split.model_dump() | update
    try:
        split = TrafficSplit.parse(merged)
        await gateway.traffic.set(split, source="admin-api")
    except ConfigError as exc:
        raise http_error(400, str(exc)) from None
    except (RedisError, OSError):
        raise http_error(503, "redis unavailable: the split was not changed") from None
    return json_response(_traffic_view(gateway))


async def get_rollout(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    check_token(request, gateway.config.control.admin_token, what="admin")
    state = await gateway.rollout.state()
    return json_response({**state.model_dump(mode="json"), "canary_percent": state.percent})


async def post_rollout(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    check_token(request, gateway.config.control.admin_token, what="admin")
    if gateway.candidate is None:
        raise http_error(400, "upstreams.candidate is not configured: nothing to roll out")
    action = request.match_info["action"]
    body = await json_object(request, empty_ok=True)
    try:
        if action == "start":
            steps = body.get("steps")
            if steps is not None:
                steps = RolloutConfig(steps=steps).steps
            state = await gateway.rollout.start(steps)
        elif action in ("pause", "resume", "abort"):
            state = await getattr(gateway.rollout, action)()
        else:
            raise http_error(404, f"unknown rollout action {action!r}")
    except ValidationError as exc:
        raise http_error(400, format_validation_error(exc)) from None
    except ValueError as exc:
        raise http_error(409, str(exc)) from None
    return json_response(state.model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    """Register the control-plane routes; the app must hold the gateway under GATEWAY_KEY."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/traffic", get_traffic)
    app.router.add_put("/admin/traffic", put_traffic)
    app.router.add_get("/admin/rollout", get_rollout)
    app.router.add_post("/admin/rollout/{action}", post_rollout)
