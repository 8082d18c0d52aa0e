"""Starting and stopping the project's own processes (gateway, simulators) for the demo and
end-to-end tests: free ports, readiness polling, and a clean SIGTERM-then-SIGKILL stop."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import ShadowgateError

_PR_SET_PDEATHSIG = 1


def die_with_parent_signal() -> None:
    """In a child before exec: get SIGTERM when the parent dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessStartError(ShadowgateError):
    """A child process exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shadowgate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


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
        self._log = log_path.open("wb") if log_path else None
        self.process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            env={**os.environ, **env},
            preexec_fn=die_with_parent_signal if die_with_parent else None,
        )

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
