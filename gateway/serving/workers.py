"""`shadowgate serve --workers N`: N data-plane processes on one port, the control plane once.

The parent serves the control plane (health, metrics, admin, review, the rollout controller)
and supervises N children. Each child is a whole data plane with its own upstream pools,
mirrors and publisher, listening on `listen.port` with SO_REUSEPORT, so the kernel spreads new
connections over them (as nginx's `reuseport`). They share the traffic split and the rollout
state through Redis, as replicas on several hosts do. Each child writes its metrics to files
under `state_dir/metrics` (prometheus_client's multiprocess mode) and the parent's /metrics
adds them up. A child that dies is started again and counted; SIGTERM drains every child
before the parent stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvloop
from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from gateway.apps import build_control_app, build_data_server
from gateway.config import Config, ListenConfig, apply_environment, load_config
from gateway.errors import ShadowgateError
from gateway.metrics import Metrics, ProcessMetrics
from gateway.runtime import Gateway
from gateway.serving.lifecycle import drain, forget_signals, stop_on_signals, watch_sighup
from gateway.serving.processes import ProcessStartError, die_with_parent_signal, shadowgate_command
from gateway.serving.supervisor import Supervisor
from gateway.tracing.setup import load_tracing

log = logging.getLogger("shadowgate.workers")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# What a data-plane process writes on its stdout once it listens.
READY_LINE = b"ready\n"
_RESTART_LABEL = "data_plane"


def check_port(listen: ListenConfig) -> None:
    """Refuse a port another program holds: SO_REUSEPORT would let the children share it with
    any process of the same user that set the option too, instead of failing."""
    if listen.port == 0:
        raise ShadowgateError("listen.port: 0 (any free port) cannot be shared by several workers")
    with socket.socket(socket.AF_INET6 if ":" in listen.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((listen.host, listen.port))
        except OSError as exc:
            raise ShadowgateError(
                f"listen: cannot listen on {listen.host}:{listen.port}: {exc.strerror}"
            ) from None


def fresh_metrics_dir(state_dir: Path) -> Path:
    """The children's metric files, emptied: a previous run's would be added to this one's."""
    directory = (state_dir / "metrics").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


class DataProcesses:
    """Starts N data-plane processes, restarts the ones that die, and stops them all."""

    def __init__(
        self,
        *,
        count: int,
        command: list[str],
        env: dict[str, str],
        metrics_dir: Path,
        metrics: ProcessMetrics,
        start_timeout_s: float = 60.0,
        on_change: Callable[[int], None] = lambda serving: None,
    ) -> None:
        self._command = command
        self._env = env
        self._metrics_dir = metrics_dir
        self._metrics = metrics
        self._start_timeout_s = start_timeout_s
        self._on_change = on_change
        self._processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._serving: set[int] = set()
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def serving(self) -> int:
        return len(self._serving)

    async def start(self) -> None:
        """Start every process and wait until each listens; one that exits first fails it."""
        await asyncio.gather(*(self._start_one(i) for i in range(len(self._processes))))

    async def _start_one(self, index: int) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
            # A parent killed with SIGKILL still takes its children with it (they drain).
            preexec_fn=die_with_parent_signal,
        )
        self._processes[index] = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(self._start_timeout_s):
                line = await process.stdout.readline()
        except TimeoutError:
            process.kill()
            line = b""
        if line != READY_LINE:
            code = await process.wait()
            raise ProcessStartError(f"data-plane process {index} exited with {code} at start")
        self._serving.add(index)
        self._changed()

    def supervise(self) -> None:
        """From now on, a process that dies is started again (after a short, growing pause
        when it keeps dying young)."""
        self._keepers = [
            asyncio.create_task(self._keep(i), name=f"data-plane-{i}")
            for i in range(len(self._processes))
        ]

    async def _keep(self, index: int) -> None:
        young_deaths = 0
        while True:
            process = self._processes[index]
            assert process is not None
            started = time.monotonic()
            code = await process.wait()
            self._gone(index, process.pid)
            if self._stopping:
                return
            self._metrics.restarts.labels(_RESTART_LABEL).inc()
            young_deaths = young_deaths + 1 if time.monotonic() - started < 5.0 else 0
            pause_s = min(5.0, 0.1 * 2**young_deaths) if young_deaths else 0.0
            log.warning(
                "data-plane process %d (pid %d) exited with %s; starting it again in %.1f s",
                index,
                process.pid,
                code,
                pause_s,
            )
            await asyncio.sleep(pause_s)
            with contextlib.suppress(ProcessStartError):
                await self._start_one(index)

    def _gone(self, index: int, pid: int) -> None:
        self._serving.discard(index)
        # Its live gauges go; its counters stay in the sums, as a counter never goes down.
        mark_process_dead(pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
        self._changed()

    def _changed(self) -> None:
        self._metrics.data_processes.set(len(self._serving))
        self._on_change(len(self._serving))

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM to all (each drains), SIGKILL to those still running after `timeout_s`."""
        self._stopping = True
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        running = [p for p in self._processes if p is not None and p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if running:
            waits = [asyncio.ensure_future(p.wait()) for p in running]
            _, late = await asyncio.wait(waits, timeout=timeout_s)
            if late:
                log.warning(
                    "shutdown: %d data-plane processes killed after %g s", len(late), timeout_s
                )
                for process in running:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*waits)
        for index, child in enumerate(self._processes):
            if child is not None:
                self._gone(index, child.pid)


def _stop_timeout_s(config: Config) -> float:
    """How long a draining child may take: its requests, then its mirrors, then its buffer."""
    return (
        config.listen.shutdown_grace_s
        + config.shadow.shutdown_grace_s
        + config.publish.shutdown_drain_s
        + 10.0
    )


async def serve_workers(
    config: Config,
    *,
    redis_url: str,
    config_path: Path,
    workers: int,
    metrics: Metrics,
    supervisor: Supervisor,
) -> None:
    """The parent: the control plane, and `workers` data-plane processes until a stop signal;
    `metrics` aggregates the processes' values, `supervisor` restarts the children it watches."""
    check_port(config.listen)
    assert metrics.aggregate_dir is not None, "metrics must aggregate the data-plane processes"
    directory = metrics.aggregate_dir
    stop = stop_on_signals()
    async with Gateway(config=config, redis_url=redis_url, metrics=metrics) as gateway:
        readiness = gateway.readiness
        readiness.serving(False)  # until every data-plane process listens
        started = False

        def serving(count: int) -> None:
            # After the start: ready while one process serves (the others are restarting).
            if started:
                readiness.serving(count > 0)

        children = DataProcesses(
            count=workers,
            command=shadowgate_command(
                "serve", "--config", str(config_path), "--data-plane", "--redis-url", redis_url
            ),
            env={**os.environ, MULTIPROC_ENV: str(directory)},
            metrics_dir=directory,
            metrics=ProcessMetrics(metrics),
            on_change=serving,
        )
        reloads = watch_sighup(gateway, config_path)
        control = web.AppRunner(build_control_app(gateway), access_log=None)
        await control.setup()
        try:
            await web.TCPSite(control, config.control.host, config.control.port).start()
            await children.start()
            started = True
            readiness.serving(True)
            children.supervise()
            supervising = asyncio.create_task(supervisor.run(), name="supervisor")
            log.info(
                "shadowgate serving on %s:%d with %d data-plane processes (control %s:%d)",
                config.listen.host,
                config.listen.port,
                workers,
                config.control.host,
                config.control.port,
            )
            await stop.wait()
            log.info("shutting down: draining %d data-plane processes", children.serving)
            readiness.start_draining()
        finally:
            if "supervising" in locals():
                supervising.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervising
            await children.stop(_stop_timeout_s(config))
            await control.cleanup()
            for task in reloads:
                task.cancel()
    forget_signals(asyncio.get_running_loop())


async def serve_data_plane(config: Config, *, redis_url: str) -> None:
    """One child: the data plane on the shared port, until SIGTERM; then it drains."""
    stop = stop_on_signals()
    # The parent re-reads the config on SIGHUP; a group-wide one must not end a child.
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: None)
    # Each data-plane process traces its own requests (configured by the same OTEL_* variables).
    tracing = load_tracing(service_name="shadowgate-gateway", environ=os.environ)
    async with Gateway(config=config, redis_url=redis_url, tracing=tracing) as gateway:
        data = web.ServerRunner(build_data_server(gateway), shutdown_timeout=1.0)
        await data.setup()
        try:
            listen = config.listen
            await web.TCPSite(
                data, listen.host, listen.port, backlog=listen.backlog, reuse_port=True
            ).start()
            sys.stdout.buffer.write(READY_LINE)
            sys.stdout.flush()
            await stop.wait()
            await drain(gateway, data)
        finally:
            await data.cleanup()
    if tracing is not None:
        tracing.shutdown()


def run_data_plane(config_path: Path, *, redis_url: str) -> int:
    """Entry point of a data-plane process (`serve --data-plane`, started by the parent)."""
    config = apply_environment(load_config(config_path))
    uvloop.run(serve_data_plane(config, redis_url=redis_url))
    return 0
