"""The request target the proxy forwards is always origin-form: `/path?query`.

A server must accept absolute-form (`POST http://host/v1/...`, RFC 9112 section 3.2.2): clients
send it when they take the gateway for a forward proxy. It is rewritten to origin-form; the
host in it is ignored, the upstreams are fixed. Authority-form (`CONNECT host:443`) and
asterisk-form (`OPTIONS *`) mean nothing to a model endpoint and are refused.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from gateway.metrics import Metrics


def target_form(raw_target: str) -> str:
    """`origin`, `absolute`, `asterisk` or `authority`, as RFC 9112 names them."""
    if raw_target.startswith("/"):
        return "origin"
    if raw_target == "*":
        return "asterisk"
    if raw_target[:8].lower().startswith(("http://", "https://")):
        return "absolute"
    return "authority"


def origin_form(request: web.BaseRequest, metrics: Metrics) -> web.BaseRequest | None:
    """`request` with an origin-form target, or None when it cannot have one (refuse it).
    Every request that arrived in another form is counted by its form."""
    form = target_form(request.raw_path)
    if form == "origin":
        return request
    metrics.request_targets.labels(form).inc()
    if form != "absolute":
        return None
    # aiohttp parsed the absolute URL: its relative part keeps the path and query as sent.
    path_qs = request.rel_url.raw_path_qs
    if not path_qs.startswith("/"):
        path_qs = "/" + path_qs
    return request.clone(rel_url=URL(path_qs, encoded=True))
