"""Builds the two aiohttp applications around one Gateway: data plane and control plane."""

from __future__ import annotations

from aiohttp import web

from gateway import control, review_api
from gateway.runtime import GATEWAY_KEY, Gateway


def build_data_app(gateway: Gateway) -> web.Application:
    """The data-plane app: every method and path goes to the proxy."""
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    app.router.add_route("*", "/{tail:.*}", gateway.proxy.handle)
    return app


def build_control_app(gateway: Gateway) -> web.Application:
    """The control-plane app: health, metrics, admin (and later review) routes."""
    app = web.Application()
    app[GATEWAY_KEY] = gateway
    control.add_routes(app)
    review_api.add_routes(app)
    return app
