"""The reviewers' HTTP API on the control port: claim, verdict, release, stats.

Reviewers authenticate with the shared reviewer token and name themselves in `x-reviewer`,
or with a token of their own from `control.reviewer_tokens` (the name comes with it).
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.auth import bearer_token, check_token, http_error, json_response, token_matches
from gateway.constants import REVIEWER_HEADER
from gateway.review import LABELS, ReviewConflict
from gateway.runtime import GATEWAY_KEY


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    tags: list[str] = Field(default_factory=list, max_length=20)
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str) -> str:
        if value not in LABELS:
            raise ValueError(f"must be one of {', '.join(LABELS)}")
        return value


def reviewer_of(request: web.Request) -> str:
    """The reviewer's name, or a 401/403/400 for a request that does not identify one."""
    control = request.app[GATEWAY_KEY].config.control
    token = bearer_token(request)
    if token is not None:
        for name, secret in control.reviewer_tokens.items():
            if token_matches(token, secret):
                return name
    if control.reviewer_token is None and control.reviewer_tokens:
        raise http_error(403, "not a valid reviewer token")
    check_token(request, control.reviewer_token, what="reviewer")
    name = request.headers.get(REVIEWER_HEADER, "").strip()
    if not name or len(name) > 64 or "|" in name:
        raise http_error(400, f"name yourself in the {REVIEWER_HEADER} header (1-64 characters)")
    return name


async def claim(request: web.Request) -> web.Response:
    reviewer = reviewer_of(request)
    route, flag = request.query.get("route"), request.query.get("flag")
    if route and flag:
        raise http_error(400, "filter by route or by flag, not both")
    tag = f"route:{route}" if route else f"flag:{flag}" if flag else ""
    if "|" in tag:
        raise http_error(400, "a filter must not contain '|'")
    claimed = await request.app[GATEWAY_KEY].review.claim(reviewer, tag=tag)
    if claimed is None:
        return web.Response(status=204)
    return json_response(
        {"id": claimed.id, "lease_expires_at": claimed.lease_expires_at, **claimed.item}
    )


async def verdict(request: web.Request) -> web.Response:
    reviewer = reviewer_of(request)
    try:
        body = VerdictBody.model_validate(orjson.loads(await request.read()))
    except orjson.JSONDecodeError:
        raise http_error(400, 'body must be JSON: {"label": ...}') from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise http_error(400, f"{field}: {first['msg'].removeprefix('Value error, ')}") from None
    try:
        record = await request.app[GATEWAY_KEY].review.verdict(
            reviewer, request.match_info["id"], label=body.label, tags=body.tags, note=body.note
        )
    except ReviewConflict as exc:
        raise http_error(409, exc.reason) from None
    return json_response(record.model_dump(mode="json", exclude={"item"}))


async def release(request: web.Request) -> web.Response:
    reviewer = reviewer_of(request)
    try:
        await request.app[GATEWAY_KEY].review.release(reviewer, request.match_info["id"])
    except ReviewConflict as exc:
        raise http_error(409, exc.reason) from None
    return json_response({"released": request.match_info["id"]})


async def stats(request: web.Request) -> web.Response:
    reviewer_of(request)
    return json_response(await request.app[GATEWAY_KEY].review.stats())


@functools.cache
def _page() -> bytes:
    return (resources.files("gateway") / "static" / "review.html").read_bytes()


async def page(request: web.Request) -> web.Response:
    """The reviewer page: plain HTML and JS, no build step; it signs in with the token."""
    body = await asyncio.to_thread(_page)
    return web.Response(
        body=body,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; connect-src 'self'",
        },
    )


async def page_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/review/")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/review/", page)
    app.router.add_get("/review", page_redirect)
    app.router.add_post("/review/claim", claim)
    app.router.add_post("/review/{id}/verdict", verdict)
    app.router.add_post("/review/{id}/release", release)
    app.router.add_get("/review/stats", stats)
