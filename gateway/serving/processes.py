"""Starting and stopping the project's own processes (gateway, simulators, workers) for
`serve`, the demo and end-to-end tests: free ports, readiness polling, restarts, and a clean
SIGTERM-then-SIGKILL stop."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.errors import ShadowgateError

_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., Any]:
    return ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent_signal() -> None:
    """In a child before exec: get SIGTERM when the parent dies, however it dies.

    The kernel sends it when the *thread* that forked the child ends, so children must be
    started from a thread that outlives them: the main thread, or the supervisor's own."""
    _prctl()(_PR_SET_PDEATHSIG, signal.SIGTERM)


def prepare_die_with_parent() -> None:
    """Load libc's prctl in the parent: between fork and exec only the call itself runs
    (loading a library there can deadlock on a lock another thread held at fork)."""
    _prctl()


class ProcessStartError(ShadowgateError):
    """A child process exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shadowgate_command(*args: str) -> list[str]:
    """This interpreter running the CLI. `-P`: the child imports the same installed package as
    its parent, never a `gateway/` folder that happens to be its working directory."""
    return [sys.executable, "-P", "-m", "gateway.cli", *args]


class Child:
    """A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path | None,
        env: dict[str, str],
        die_with_parent: bool = False,
    ):
        self.name = name
        self.log_path = log_path
        self._args = list(args)
        self._env = {**os.environ, **env}
        self._die_with_parent = die_with_parent
        self._log = log_path.open("wb") if log_path else None
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._die_with_parent:
            prepare_die_with_parent()
        return subprocess.Popen(
            self._args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            env=self._env,
            preexec_fn=die_with_parent_signal if self._die_with_parent else None,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code once the process ended (reaping it), else None."""
        return self.process.poll()

    def restart(self) -> None:
        """Start the same command again (after the previous process ended); output appends."""
        self.process = self._spawn()

    def wait_ready(self, url: str, timeout_s: float = 20.0) -> None:
        """Poll `url` until it answers 200; fail early if the process exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessStartError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise ProcessStartError(f"{self.name} not ready after {timeout_s:.0f} s: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])
        return ""

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log:
            self._log.close()
        return self.process.returncode
