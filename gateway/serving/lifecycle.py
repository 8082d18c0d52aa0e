"""What a serving process does on a signal, in one process or several (`serve --workers N`):
SIGTERM and SIGINT stop it, SIGHUP re-reads the config file and applies its traffic split (a
bad file is logged and ignored), and a stopping data plane drains: /readyz turns 503, the port
closes, requests in flight get `listen.shutdown_grace_s` to finish and are then cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.proxy.data_server import DataServer
from gateway.proxy.traffic import TrafficSplit

if TYPE_CHECKING:
    from gateway.runtime import Gateway

log = logging.getLogger("shadowgate.serve")


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets, from now on."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def forget_signals(loop: asyncio.AbstractEventLoop) -> None:
    """Remove the stop and reload handlers, so a signal after the end gets its default."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(sig)


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
    gateway.readiness.start_draining()
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
