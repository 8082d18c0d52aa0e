"""Keeps `shadowgate serve`'s children alive: the embedded redis-server and scoring worker.

A child that ends is reaped at once (no zombie stays), logged with its exit code, and started
again after a backoff that doubles while it keeps dying and starts over once it stayed up;
each restart is counted in `shadowgate_child_restarts_total{component}`. Polled, not driven
by SIGCHLD: the event loop's child watcher is not ours to take over, and a fifth of a second
to notice a death is nothing next to the restart itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import ShadowgateError
from gateway.metrics import Metrics

log = logging.getLogger("shadowgate.supervisor")


class Supervised(Protocol):
    """A child process that can be polled and started again."""

    @property
    def pid(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def restart(self) -> None: ...


@dataclass
class _Watched:
    component: str
    child: Supervised
    started_at: float
    delay_s: float
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Watches children and restarts the ones that end, while `run()` runs.

    Starting a process blocks (fork, exec, and a pipe read until exec succeeded), so
    restarts run on a thread of the supervisor's own. The children are told to die with
    their parent (PR_SET_PDEATHSIG), which the kernel ties to the thread that forked them:
    that thread must outlive them, so `close()` comes after the children were stopped."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        poll_s: float = 0.2,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        stable_s: float = 60.0,
    ) -> None:
        self._metrics = metrics
        self._poll_s = poll_s
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s
        self._stable_s = stable_s
        self._watched: list[_Watched] = []
        # One thread that lives until close(): an idle pool thread is never retired.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")

    def watch(self, component: str, child: Supervised) -> None:
        """Supervise `child` (already started), counted under `component`."""
        self._watched.append(_Watched(component, child, time.monotonic(), self._first_delay_s))
        self._metrics.child_restarts.labels(component)

    def close(self) -> None:
        """End the restart thread; call once the children are stopped."""
        self._spawner.shutdown(wait=True)

    async def run(self) -> None:
        while True:
            for watched in self._watched:
                await self._check(watched, time.monotonic())
            await asyncio.sleep(self._poll_s)

    async def _check(self, watched: _Watched, now: float) -> None:
        if watched.restart_at is None:
            code = watched.child.poll()
            if code is None:
                return
            uptime_s = now - watched.started_at
            if uptime_s >= self._stable_s:
                watched.delay_s = self._first_delay_s
            log.error(
                "%s (pid %s) exited with %s after %.1f s; restarting in %.2f s",
                watched.component,
                watched.child.pid,
                code,
                uptime_s,
                watched.delay_s,
            )
            self._schedule(watched, now)
            return
        if now < watched.restart_at:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._spawner, watched.child.restart)
        except (OSError, ShadowgateError) as exc:
            log.error(
                "%s could not be restarted (%s); next try in %.2f s",
                watched.component,
                exc,
                watched.delay_s,
            )
            self._schedule(watched, now)
            return
        watched.restart_at = None
        watched.started_at = time.monotonic()
        watched.restarts += 1
        self._metrics.child_restarts.labels(watched.component).inc()
        log.warning(
            "%s restarted, pid %s (restart %d)",
            watched.component,
            watched.child.pid,
            watched.restarts,
        )

    def _schedule(self, watched: _Watched, now: float) -> None:
        watched.restart_at = now + watched.delay_s
        watched.delay_s = min(watched.delay_s * 2, self._max_delay_s)
