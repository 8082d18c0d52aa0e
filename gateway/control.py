"""The control plane: health, readiness, Prometheus metrics and the admin traffic and rollout
API. Each handler reads the resources it needs from the app's keys (`gateway.app_keys`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError

from gateway.app_keys import CONFIG, HEALTH, METRICS, MIRRORS, READINESS, ROLLOUT, TRAFFIC
from gateway.auth import check_token, http_error, json_object, json_response
from gateway.config import RolloutConfig, format_validation_error
from gateway.errors import ConfigError
from gateway.proxy.traffic import TrafficSplit
from gateway.rollout.controller import RolloutConflict


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the data plane can serve users; the body says how the components that
    only mirroring and scoring need were at the last check (Redis, workers, publisher)."""
    ready = request.app[READINESS].ready
    status = 200 if ready else 503
    return json_response({"ready": ready, **request.app[HEALTH].status}, status=status)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _check_admin(request: web.Request) -> None:
    check_token(request, request.app[CONFIG].control.admin_token, what="admin")


def _traffic_view(app: web.Application) -> dict[str, Any]:
    split = app[TRAFFIC].current.split
    mirrors = app[MIRRORS]
    return {
        "shadow_percent": split.shadow_percent,
        "canary_percent": split.canary_percent,
        "shadow_in_flight": mirrors.in_flight if mirrors else 0,
    }


async def get_traffic(request: web.Request) -> web.Response:
    _check_admin(request)
    return json_response(_traffic_view(request.app))


async def put_traffic(request: web.Request) -> web.Response:
    _check_admin(request)
    update = await json_object(request)
    if not update:
        raise http_error(
            400, "body must be a JSON object with shadow_percent and/or canary_percent"
        )
    traffic = request.app[TRAFFIC]
    merged = traffic.current.split.model_dump() | update
    try:
        split = TrafficSplit.parse(merged)
        await traffic.set(split, source="admin-api")
    except ConfigError as exc:
        raise http_error(400, str(exc)) from None
    except (RedisError, OSError):
        raise http_error(503, "redis unavailable: the split was not changed") from None
    return json_response(_traffic_view(request.app))


async def get_rollout(request: web.Request) -> web.Response:
    _check_admin(request)
    state = await request.app[ROLLOUT].state()
    return json_response({**state.model_dump(mode="json"), "canary_percent": state.percent})


async def post_rollout(request: web.Request) -> web.Response:
    _check_admin(request)
    if request.app[CONFIG].upstreams.candidate is None:
        raise http_error(400, "upstreams.candidate is not configured: nothing to roll out")
    rollout = request.app[ROLLOUT]
    action = request.match_info["action"]
    body = await json_object(request, empty_ok=True)
    try:
        if action == "start":
            state = await rollout.start(_steps(body))
        elif action in ("pause", "resume", "abort"):
            state = await getattr(rollout, action)()
        else:
            raise http_error(404, f"unknown rollout action {action!r}")
    except RolloutConflict as exc:
        raise http_error(409, str(exc)) from None
    return json_response(state.model_dump(mode="json"))


def _steps(body: dict[str, Any]) -> list[float] | None:
    """The steps a start command names, if any; invalid ones are a 400 that says why."""
    steps = body.get("steps")
    if steps is None:
        return None
    try:
        return RolloutConfig(steps=steps).steps
    except ValidationError as exc:
        raise http_error(400, format_validation_error(exc)) from None


def add_routes(app: web.Application) -> None:
    """Register the control-plane routes; the app must hold every key the handlers read."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/traffic", get_traffic)
    app.router.add_put("/admin/traffic", put_traffic)
    app.router.add_get("/admin/rollout", get_rollout)
    app.router.add_post("/admin/rollout/{action}", post_rollout)
