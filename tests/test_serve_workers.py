"""`shadowgate serve --workers 2` from outside: a real process tree (parent with the control
plane, two data-plane processes, the embedded Redis and scoring worker) in front of an
in-process upstream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from gateway.serving.processes import Child, free_port, shadowgate_command
from tests.upstreams import Recorder, build_upstream

pytestmark = pytest.mark.e2e
CHAT = "/v1/chat/completions"
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'


@dataclass
class Workers:
    gateway: Child
    upstream: Recorder
    data_url: str
    control_url: str

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics by (name, sorted labels)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.control_url}/metrics") as response,
        ):
            text = await response.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def families(self) -> list[Metric]:
        """/metrics as parsed, a family named twice listed twice."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.control_url}/metrics") as response,
        ):
            return list(text_string_to_metric_families(await response.text()))

    async def metric(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, tuple(sorted(labels.items()))), 0.0)

    async def wait_metric(
        self, name: str, value: float, timeout_s: float = 20.0, **labels: str
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while await self.metric(name, **labels) != value:
                await asyncio.sleep(0.1)

    def data_plane_pids(self) -> list[int]:
        """The gateway's children that run a data plane."""
        pid = self.gateway.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [
            int(child)
            for child in children
            if b"--data-plane" in Path(f"/proc/{child}/cmdline").read_bytes()
        ]


@contextlib.asynccontextmanager
async def serve_two_workers(tmp_path: Path, redis_url: str | None) -> AsyncIterator[Workers]:
    """`shadowgate serve --workers 2` in front of an in-process upstream; with `redis_url`
    unset, its own embedded Redis and scoring worker."""
    recorder = Recorder()
    upstream = TestServer(build_upstream(recorder))
    await upstream.start_server()
    port, control = free_port(), free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "listen": {"host": "127.0.0.1", "port": port},
                "control": {"host": "127.0.0.1", "port": control},
                "upstreams": {"production": {"url": str(upstream.make_url("")).rstrip("/")}},
                "redis": {"url": redis_url},
                "state_dir": str(tmp_path / "state"),
            }
        )
    )
    command = shadowgate_command("serve", "--workers", "2", "--config", str(config))
    gateway = await asyncio.to_thread(
        Child, "gateway", command, log_path=tmp_path / "gateway.log", env={}
    )
    control_url = f"http://127.0.0.1:{control}"
    try:
        await asyncio.to_thread(gateway.wait_ready, f"{control_url}/readyz", 40)
        yield Workers(gateway, recorder, f"http://127.0.0.1:{port}", control_url)
    finally:
        await asyncio.to_thread(gateway.stop)
        await upstream.close()


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Workers]:
    """The whole tree: parent, two data planes, the embedded Redis and scoring worker."""
    async with serve_two_workers(tmp_path, None) as workers:
        yield workers


@pytest.fixture
async def workers(tmp_path: Path, redis_url: str) -> AsyncIterator[Workers]:
    """The parent and two data planes on the test run's Redis (nothing else to start)."""
    async with serve_two_workers(tmp_path, redis_url) as workers:
        yield workers


def running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


async def send(url: str, count: int, concurrency: int) -> list[int]:
    """`count` chat requests over `concurrency` connections; the statuses."""
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(n: int) -> None:
            for _ in range(n):
                headers = {"Content-Type": "application/json"}
                async with session.post(f"{url}{CHAT}", data=BODY, headers=headers) as response:
                    await response.read()
                    statuses.append(response.status)

        share = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
        await asyncio.gather(*(client(n) for n in share))
    return statuses


# Five processes start (parent, two data planes, Redis, scoring worker) and 2,000 requests
# pass: well under a minute on an idle machine, more on a shared one.
@pytest.mark.timeout(120)
async def test_two_data_plane_processes_serve_and_metrics_count_every_request(
    embedded: Workers,
) -> None:
    workers = embedded
    assert len(workers.data_plane_pids()) == 2
    assert await workers.metric("shadowgate_data_processes") == 2
    # The kernel spreads the 8 connections over both processes.
    statuses = await send(workers.data_url, 2000, concurrency=8)
    assert statuses == [200] * 2000
    samples = await workers.metrics()
    production = (("arm", "production"),)
    assert samples["shadowgate_requests_total", (("arm", "production"), ("status", "200"))] == 2000
    # Histograms add up bucket by bucket: count, +Inf bucket and every bucket agree.
    assert samples["shadowgate_upstream_latency_seconds_count", production] == 2000
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "shadowgate_upstream_latency_seconds_bucket" and ("arm", "production") in labels
    )
    assert buckets[-1] == (float("inf"), 2000)
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))


async def test_a_killed_data_plane_process_is_restarted_and_counted(workers: Workers) -> None:
    assert await send(workers.data_url, 20, concurrency=4) == [200] * 20
    victim, survivor = workers.data_plane_pids()
    os.kill(victim, signal.SIGKILL)
    await workers.wait_metric("shadowgate_child_restarts_total", 1, component="data_plane")
    await workers.wait_metric("shadowgate_data_processes", 2)
    pids = workers.data_plane_pids()
    assert survivor in pids and victim not in pids and len(pids) == 2
    assert await send(workers.data_url, 40, concurrency=4) == [200] * 40
    # The dead process's requests stay counted.
    assert await workers.metric("shadowgate_requests_total", arm="production", status="200") == 60


async def test_sigterm_drains_every_data_plane_process(workers: Workers) -> None:
    pids = workers.data_plane_pids()
    async with aiohttp.ClientSession() as session:
        # Streams held open in each process (a new connection each, spread by the kernel).
        responses = [await session.get(f"{workers.data_url}/sse") for _ in range(4)]
        for response in responses:
            assert await response.content.readline() == b"data: first\n"
        workers.gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        workers.upstream.release.set()
        bodies = [await response.read() for response in responses]
    assert all(body.endswith(b"data: second\n\n") for body in bodies)
    assert await asyncio.to_thread(workers.gateway.process.wait, 30) == 0
    # Each drained and exited before the parent did.
    assert not running(pids)


async def test_metrics_show_each_series_once_without_pid_after_a_restart(workers: Workers) -> None:
    assert await send(workers.data_url, 20, concurrency=4) == [200] * 20
    os.kill(workers.data_plane_pids()[0], signal.SIGKILL)
    await workers.wait_metric("shadowgate_child_restarts_total", 1, component="data_plane")
    await workers.wait_metric("shadowgate_data_processes", 2)
    families = await workers.families()
    twice = Counter(family.name for family in families) - Counter({f.name for f in families})
    assert not twice, "families exposed twice"
    series = [(s.name, tuple(sorted(s.labels.items()))) for f in families for s in f.samples]
    assert not Counter(series) - Counter(set(series)), "series exposed twice"
    # One gateway host: the processes' values are combined, never listed per process, and a
    # dead process leaves none behind.
    assert [s for s in series if "pid" in dict(s[1])] == []
    (component_up,) = (f for f in families if f.name == "shadowgate_component_up")
    up = {sample.labels["component"]: sample.value for sample in component_up.samples}
    assert up.keys() == {"redis", "worker", "publisher"}
    assert set(up.values()) <= {0.0, 1.0}
    assert up["redis"] == up["publisher"] == 1.0
    assert await workers.metric("shadowgate_redis_up") == 1.0
