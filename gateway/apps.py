"""Builds the two aiohttp applications around one Gateway: data plane and control plane."""

from __future__ import annotations

from aiohttp import web

from gateway import control
from gateway.http_log import server_log
from gateway.proxy.data_server import DataServer
from gateway.review import api as review_api
from gateway.runtime import GATEWAY_KEY, Gateway


def build_data_server(gateway: Gateway) -> DataServer:
    """The data plane: every method and path goes to the proxy.

    aiohttp's low-level server, not an Application: with one route that matches everything,
    the router, match info and middleware chain were per-request cost and nothing else.
    Request bodies are not decompressed: they go upstream as sent, with their own
    Content-Encoding and Content-Length. Needs a running event loop."""
    return DataServer(gateway.proxy.handle, listen=gateway.config.listen, metrics=gateway.metrics)


def build_control_app(gateway: Gateway) -> web.Application:
    """The control-plane app: health, metrics, admin (and later review) routes."""
    app = web.Application(handler_args={"logger": server_log})
    app[GATEWAY_KEY] = gateway
    control.add_routes(app)
    review_api.add_routes(app)
    return app
