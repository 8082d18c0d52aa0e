"""`shadowgate demo` run as a user runs it: a real process that starts two simulators and the
gateway, which starts its Redis and scoring worker."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.serving.processes import shadowgate_command

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def read_until(process: subprocess.Popen[bytes], marker: bytes, timeout_s: float) -> bytes:
    """The process's output up to and including the line holding `marker`."""
    assert process.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout_s
    while marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in time: {out.decode(errors='replace')[-2000:]}"
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, f"exited with {process.wait()}: {out.decode(errors='replace')[-2000:]}"
            out += chunk
    return out


@pytest.fixture
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo's work dir in a short temporary path (its Redis socket lives there)."""
    return {**os.environ, "TMPDIR": str(tmp_path_factory.mktemp("demo"))}


def demo(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        shadowgate_command("demo", *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


# SIGINT (Ctrl-C) takes the path SIGTERM and SIGHUP take; SIGKILL leaves it to the kernel.
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_demo_keep_running_stops_every_child_with_it(
    signum: signal.Signals, demo_env: dict[str, str]
) -> None:
    with demo("--requests", "40", "--keep-running", env=demo_env) as process:
        try:
            out = read_until(process, b"servers keep running", timeout_s=50)
            children = descendants(process.pid)
            # Two simulators, the gateway, its redis-server and its scoring worker.
            assert len(children) >= 5, out.decode(errors="replace")
            process.send_signal(signum)
            process.wait(20)
            deadline = time.monotonic() + 20
            while any(running(pid) for pid in children) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [pid for pid in children if running(pid)]
        finally:
            process.kill()


def test_demo_fails_naming_the_stage_when_its_worker_cannot_start(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    # The worker's compile step imports sympy through onnxruntime.transformers: without it
    # (and without a compiled model cached) the worker dies at start-up, as it did on a
    # machine where the package did not declare it.
    stub = tmp_path / "stub" / "sympy"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError(\"No module named 'sympy'\")\n")
    path = os.pathsep.join(p for p in (str(stub.parent), os.environ.get("PYTHONPATH")) if p)
    env = {**demo_env, "PYTHONPATH": path, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with demo("--requests", "10", env=env) as process:
        try:
            out, _ = process.communicate(timeout=55)
        finally:
            process.kill()
    text = out.decode(errors="replace")
    assert process.returncode == 1, text
    assert "scored 0 of " in text
    assert "demo failed at scoring: scored 0 of " in text
    assert "sympy" in text.rsplit("demo failed at scoring", 1)[1]
