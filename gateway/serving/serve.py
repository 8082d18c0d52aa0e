"""`shadowgate serve`: runs the data and control planes until SIGTERM/SIGINT.

With no `redis.url`, an embedded redis-server is started first and stopped last, and a
scoring worker runs beside the gateway; both are restarted when they die. SIGHUP and the stop
signals are handled as `gateway.serving.lifecycle` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop
from aiohttp import web

from gateway.apps import build_control_app, build_data_server
from gateway.config import Config, apply_environment, load_config
from gateway.metrics import Metrics
from gateway.runtime import Gateway
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.serving.lifecycle import drain, forget_signals, stop_on_signals, watch_sighup
from gateway.serving.processes import Child, shadowgate_command
from gateway.serving.supervisor import Supervisor
from gateway.serving.workers import fresh_metrics_dir, serve_workers
from gateway.tracing.setup import load_tracing

if TYPE_CHECKING:
    from gateway.tracing.spans import Tracing

log = logging.getLogger("shadowgate.serve")


async def serve_async(
    config: Config,
    *,
    redis_url: str,
    config_path: Path | None,
    metrics: Metrics,
    supervisor: Supervisor,
    ready: asyncio.Event | None = None,
    tracing: Tracing | None = None,
) -> None:
    """Run both planes on `redis_url` until a stop signal arrives, with `supervisor`
    restarting the children it watches meanwhile."""
    stop = stop_on_signals()
    reloads: set[asyncio.Task[None]] = set()
    async with Gateway(
        config=config, redis_url=redis_url, metrics=metrics, tracing=tracing
    ) as gateway:
        if config_path is not None:
            reloads = watch_sighup(gateway, config_path)
        # The grace period is `drain`'s; aiohttp's own wait only lets the cut requests end.
        data = web.ServerRunner(build_data_server(gateway), shutdown_timeout=1.0)
        control = web.AppRunner(build_control_app(gateway), access_log=None)
        await data.setup()
        await control.setup()
        supervising = asyncio.create_task(supervisor.run(), name="supervisor")
        try:
            await web.TCPSite(
                data, config.listen.host, config.listen.port, backlog=config.listen.backlog
            ).start()
            await web.TCPSite(control, config.control.host, config.control.port).start()
            log.info(
                "shadowgate serving on %s:%d (control %s:%d)",
                config.listen.host,
                config.listen.port,
                config.control.host,
                config.control.port,
            )
            # What start-up allocated (modules, config, pools: about 68,000 objects) lives as
            # long as the process; frozen, it is no longer walked by every full collection.
            gc.freeze()
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("shutting down")
            await drain(gateway, data)
        finally:
            # First, so that no child is started again while the gateway stops them.
            supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervising
            await data.cleanup()
            await control.cleanup()
            for task in reloads:
                task.cancel()
    forget_signals(asyncio.get_running_loop())


def run_serve(config_path: Path, *, workers: int = 1) -> int:
    """Entry point of `shadowgate serve`; returns the process exit code.

    Without `redis.url`, an embedded redis-server and one scoring worker run as children,
    restarted when they end; both die with the gateway, even when it is killed. `workers`
    above 1: that many data-plane processes share the port (`gateway.serving.workers`)."""
    config = apply_environment(load_config(config_path))
    tracing = load_tracing(service_name="shadowgate-gateway", environ=os.environ)
    if workers > 1:
        # /metrics adds up what each data-plane process writes.
        metrics = Metrics(aggregate_dir=fresh_metrics_dir(config.state_dir))
    else:
        metrics = Metrics()
    supervisor = Supervisor(metrics=metrics)
    embedded: EmbeddedRedis | None = None
    worker: Child | None = None
    redis_url = config.redis.url
    if redis_url is None:
        embedded = EmbeddedRedis(state_dir=config.state_dir)
        embedded.start()
        redis_url = embedded.url
        worker = Child(
            "scoring worker",
            shadowgate_command("score", "--config", str(config_path), "--redis-url", redis_url),
            log_path=None,
            env={},
            die_with_parent=True,
        )
        supervisor.watch("redis", embedded)
        supervisor.watch("worker", worker)
    try:
        if workers > 1:
            uvloop.run(
                serve_workers(
                    config,
                    redis_url=redis_url,
                    config_path=config_path,
                    workers=workers,
                    metrics=metrics,
                    supervisor=supervisor,
                )
            )
        else:
            uvloop.run(
                serve_async(
                    config,
                    redis_url=redis_url,
                    config_path=config_path,
                    metrics=metrics,
                    supervisor=supervisor,
                    tracing=tracing,
                )
            )
    finally:
        if tracing is not None:
            tracing.shutdown()
        if worker is not None:
            worker.stop()
        if embedded is not None:
            embedded.stop()
        supervisor.close()
    return 0
