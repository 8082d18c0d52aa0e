"""`shadowgate serve`: runs the data and control planes until SIGTERM/SIGINT.

With no `redis.url`, an embedded redis-server is started first and stopped last, and a
scoring worker runs beside the gateway; both are restarted when they die. SIGHUP re-reads
the config file and applies its traffic split; a bad file is logged and ignored.
On a stop signal the data plane drains: /readyz turns 503, the port closes, requests in flight
get `listen.shutdown_grace_s` to finish and are then cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop
from aiohttp import web

from gateway.apps import build_control_app, build_data_server
from gateway.config import Config, apply_environment, load_config
from gateway.errors import ConfigError
from gateway.metrics import Metrics
from gateway.proxy.data_server import DataServer
from gateway.proxy.traffic import TrafficSplit
from gateway.runtime import Gateway
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.serving.processes import Child, shadowgate_command
from gateway.serving.supervisor import Supervisor
from gateway.tracing.setup import load_tracing

if TYPE_CHECKING:
    from gateway.tracing.spans import Tracing

log = logging.getLogger("shadowgate.serve")


async def _reload(gateway: Gateway, config_path: Path) -> None:
    try:
        fresh = load_config(config_path)
        split = TrafficSplit(
            shadow_percent=fresh.traffic.shadow_percent,
            canary_percent=fresh.traffic.canary_percent,
        )
        await gateway.traffic.set(split, source="sighup")
    except ConfigError as exc:
        log.error("reload refused, the running config stays: %s", exc)
        return
    except Exception as exc:  # the gateway keeps serving whatever went wrong
        log.error("reload failed, the running config stays: %s", exc)
        return
    restart_only = {
        name
        for name in ("listen", "control", "upstreams", "redis", "state_dir", "shadow", "scrub")
        if getattr(fresh, name) != getattr(gateway.config, name)
    }
    if restart_only:
        log.warning(
            "reload: changes to %s take effect after a restart", ", ".join(sorted(restart_only))
        )


def watch_sighup(gateway: Gateway, config_path: Path) -> set[asyncio.Task[None]]:
    """From now on SIGHUP re-reads the config; returns the reloads running, to cancel them."""
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = asyncio.create_task(_reload(gateway, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hup)
    return reloads


async def drain(gateway: Gateway, runner: web.BaseRunner) -> None:
    """Stop taking requests, let those in flight finish within the grace period, cut the rest."""
    server = runner.server
    assert isinstance(server, DataServer)
    gateway.start_draining()
    for site in list(runner.sites):
        await site.stop()
    # Idle keep-alive connections close now; busy ones once their response is out.
    server.pre_shutdown()
    grace_s = gateway.config.listen.shutdown_grace_s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    while server.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    gateway.proxy.shutting_down()
    if cut := server.cut():
        log.warning("shutdown: cut %d requests still in flight after %g s", cut, grace_s)
    await runner.cleanup()


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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
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
    forget_signals(loop)


def forget_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Remove the stop and reload handlers, so a signal after the end gets its default."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(sig)


def run_serve(config_path: Path, *, workers: int = 1) -> int:
    """Entry point of `shadowgate serve`; returns the process exit code.

    Without `redis.url`, an embedded redis-server and one scoring worker run as children,
    restarted when they end; both die with the gateway, even when it is killed. `workers`
    above 1: that many data-plane processes share the port (`gateway.serving.workers`)."""
    config = apply_environment(load_config(config_path))
    tracing = load_tracing(service_name="shadowgate-gateway", environ=os.environ)
    if workers > 1:
        from gateway.serving.workers import fresh_metrics_dir

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
            from gateway.serving.workers import serve_workers  # it builds on this module

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
