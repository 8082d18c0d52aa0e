"""The reviewers' HTTP API on the control port: claim, verdict, release, stats.

Reviewers authenticate with the shared reviewer token and name themselves in `x-reviewer`,
or with a token of their own from `control.reviewer_tokens` (the name comes with it).
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources
from typing import Any, Final

import orjson
from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.app_keys import CONFIG, REVIEW_QUEUE
from gateway.auth import bearer_token, check_token, http_error, json_response, token_matches
from gateway.constants import REVIEWER_HEADER
from gateway.review import evidence as review_evidence
from gateway.review.blind import CHOICES, blind_item
from gateway.review.queue import LABELS, Claimed, ReviewConflict


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    choice: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    note: str | None = Field(default=None, max_length=4000)

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str | None) -> str | None:
        if value is not None and value not in LABELS:
            raise ValueError(f"must be one of {', '.join(LABELS)}")
        return value

    @field_validator("choice")
    @classmethod
    def _check_choice(cls, value: str | None) -> str | None:
        if value is not None and value not in CHOICES:
            raise ValueError(f"must be one of {', '.join(CHOICES)}")
        return value

    @model_validator(mode="after")
    def _one_of(self) -> VerdictBody:
        if (self.label is None) == (self.choice is None):
            raise ValueError(
                f"give a label ({', '.join(LABELS)}) or, in blind mode, a choice "
                f"({', '.join(CHOICES)}), not both"
            )
        return self


def reviewer_of(request: web.Request) -> str:
    """The reviewer's name, or a 401/403/400 for a request that does not identify one."""
    control = request.app[CONFIG].control
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
    queue = request.app[REVIEW_QUEUE]
    claimed = await queue.claim(reviewer, tag=tag)
    if claimed is None:
        return web.Response(status=204)
    return json_response(_shown(claimed, blind=queue.mode == "blind"))


def _shown(claimed: Claimed, *, blind: bool) -> dict[str, Any]:
    """The claimed item as the reviewer sees it, with its evidence as `findings` (sentences and
    spans per side, review/evidence.py); in blind mode it names answers A and B only."""
    head = {
        "id": claimed.id,
        "lease_expires_at": claimed.lease_expires_at,
        "mode": "blind" if blind else "standard",
        "reviewers_per_item": claimed.reviewers_per_item,
    }
    score = claimed.item.get("score") or {}
    if blind:
        item = blind_item(claimed.item, claimed.candidate_side)
        found = review_evidence.blind(score, claimed.candidate_side, said=item["evidence"])
        return {**head, **item, "findings": found}
    return {**head, **claimed.item, "findings": review_evidence.standard(score)}


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
    queue = request.app[REVIEW_QUEUE]
    blind = queue.mode == "blind"
    if body.choice is not None and not blind:
        raise http_error(400, "choice: only in blind mode (review.mode: blind); send a label")
    try:
        outcome = await queue.verdict(
            reviewer,
            request.match_info["id"],
            label=body.label,
            choice=body.choice,
            tags=body.tags,
            note=body.note,
        )
    except ReviewConflict as exc:
        raise http_error(409, exc.reason) from None
    record = outcome.verdict
    finished = outcome.final_label is not None
    if blind:
        # The label, the side order and the final label would each tell which letter was
        # the candidate: a blind reviewer gets back only what they sent.
        return json_response(
            {
                "item_id": record.item_id,
                "choice": record.choice,
                "tags": record.tags,
                "note": record.note,
                "reviewer": record.reviewer,
                "decided_at": record.decided_at,
                "finished": finished,
            }
        )
    return json_response(
        {
            **record.model_dump(mode="json", exclude={"item"}),
            "finished": finished,
            "final_label": outcome.final_label,
            "tied": outcome.tied,
        }
    )


async def release(request: web.Request) -> web.Response:
    reviewer = reviewer_of(request)
    try:
        await request.app[REVIEW_QUEUE].release(reviewer, request.match_info["id"])
    except ReviewConflict as exc:
        raise http_error(409, exc.reason) from None
    return json_response({"released": request.match_info["id"]})


async def stats(request: web.Request) -> web.Response:
    reviewer = reviewer_of(request)
    return json_response(await request.app[REVIEW_QUEUE].stats(reviewer))


# The page's own scripts and styles besides its inline ones, by name: nothing else is served.
_ASSETS: Final = {
    "review-evidence.js": "text/javascript",
    "review-evidence.css": "text/css",
}


@functools.cache
def _static(name: str) -> bytes:
    return (resources.files("gateway") / "static" / name).read_bytes()


async def page(request: web.Request) -> web.Response:
    """The reviewer page: plain HTML and JS, no build step; it signs in with the token."""
    body = await asyncio.to_thread(_static, "review.html")
    return web.Response(
        body=body,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; connect-src 'self'",
        },
    )


async def asset(request: web.Request) -> web.Response:
    """A script or stylesheet of the page (`_ASSETS`)."""
    name = request.match_info["name"]
    content_type = _ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    body = await asyncio.to_thread(_static, name)
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def page_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/review/")


def add_routes(app: web.Application) -> None:
    """Register the review routes; the app must hold the config and the review queue."""
    app.router.add_get("/review/", page)
    app.router.add_get("/review/assets/{name}", asset)
    app.router.add_get("/review", page_redirect)
    app.router.add_post("/review/claim", claim)
    app.router.add_post("/review/{id}/verdict", verdict)
    app.router.add_post("/review/{id}/release", release)
    app.router.add_get("/review/stats", stats)
