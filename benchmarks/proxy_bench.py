"""The gateway's cost on the user's path, measured in one run on this machine: nginx direct,
through nginx `proxy_pass` (the physical reference), through a bare aiohttp proxy (the
framework's floor) and through shadowgate (also with tracing on); then shadowing, streaming and
memory. Loopback only.

    python -m benchmarks.proxy_bench [--quick] [--workers-only]

Needs nginx (`apt-get install nginx`) and `pip install -e '.[bench]'`. Prints one table
of figures and ratios and asserts nothing about time: exits 1 only when something failed to
start or a load run failed. Every process it starts is stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import psutil
import yaml

from benchmarks._nginx import Nginx, chat_completion, nginx_binary
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.serving.processes import Child, ProcessStartError, die_with_parent_signal, free_port
from gateway.serving.processes import shadowgate_command as shadowgate

ADMIN_TOKEN = "bench-admin"
RATE = 500.0
PACED_TOKENS_S = 1000
ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
SHADOW_OUTCOMES = (
    "sent",
    "truncated",
    "failed",
    "timeout",
    "dropped_saturated",
    "dropped_circuit_open",
)
Row = tuple[str, str, str]


class LoadError(RuntimeError):
    """A load-generator run failed (it crashed or did not finish in time)."""


@dataclass(frozen=True)
class Plan:
    """How long each phase runs; `--quick` shrinks every one of them."""

    latency_s: float
    shadow_s: float
    shadow_rounds: int
    throughput_s: float
    ttfb_count: int
    rss_requests: int
    quiet_wait_s: float
    misbehaving_s: float
    misbehaving_rounds: int
    worker_rounds: int

    @classmethod
    def of(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                latency_s=4,
                shadow_s=6,
                shadow_rounds=3,
                throughput_s=3,
                ttfb_count=100,
                rss_requests=10_000,
                quiet_wait_s=3,
                misbehaving_s=1.5,
                misbehaving_rounds=3,
                worker_rounds=2,
            )
        return cls(
            latency_s=10,
            shadow_s=30,
            shadow_rounds=6,
            throughput_s=5,
            ttfb_count=300,
            rss_requests=50_000,
            quiet_wait_s=20,
            misbehaving_s=3,
            misbehaving_rounds=6,
            worker_rounds=3,
        )


@dataclass
class Gateway:
    """One `shadowgate serve` process and its two ports."""

    name: str
    child: Child
    port: int
    control: int

    def process(self) -> psutil.Process:
        return psutil.Process(self.child.process.pid)

    def wait_ready(self) -> None:
        self.child.wait_ready(f"http://127.0.0.1:{self.control}/readyz", timeout_s=90)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of one metric's samples whose labels include `labels`."""
        url = f"http://127.0.0.1:{self.control}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        for line in text.splitlines():
            head, _, value = line.rpartition(" ")
            metric, _, label_text = head.partition("{")
            if metric == name and all(item in label_text for item in wanted):
                total += float(value)
        return total

    def shadow_outcomes(self) -> dict[str, float]:
        return {o: self.metric("shadowgate_shadow_total", outcome=o) for o in SHADOW_OUTCOMES}

    def set_shadow_percent(self, percent: float) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control}/admin/traffic",
            method="PUT",
            data=orjson.dumps({"shadow_percent": percent}),
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5):
            pass


@dataclass
class Bench:
    """Everything one run started, so that all of it is stopped however the run ends."""

    workdir: Path
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    nginx: list[Nginx] = field(default_factory=list)

    def spawn(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> Child:
        child = Child(
            name, args, log_path=self.workdir / f"{name}.log", env=env or {}, die_with_parent=True
        )
        self.children.append(child)
        return child

    def peer(self, role: str, port: int, *args: str, name: str | None = None) -> Child:
        command = [sys.executable, "-m", "benchmarks._peers", role, f"--port={port}", *args]
        return self.spawn(name or role, command)

    def gateway(
        self,
        name: str,
        *,
        production: int,
        candidate: int,
        shadow_percent: float,
        breaker: bool = True,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> Gateway:
        assert self.redis is not None
        port, control = free_port(), free_port()
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "control": {"host": "127.0.0.1", "port": control},
            "upstreams": {
                "production": {"url": f"http://127.0.0.1:{production}"},
                "candidate": {"url": f"http://127.0.0.1:{candidate}"},
            },
            "traffic": {"shadow_percent": shadow_percent},
            # Mirrors to a hung candidate pile up to shadow.max_in_flight and stay there.
            "shadow": {"timeout_s": 600} | ({} if breaker else {"breaker_failures": 10**9}),
            # One Redis for every gateway, each under its own prefix: no embedded scoring
            # worker is started, so none competes with the gateway for the two cores.
            "redis": {"url": self.redis.url, "key_prefix": f"{name}:"},
            "state_dir": str(self.workdir / name),
        }
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        command = shadowgate(
            "--log-level", "warning", "serve", "--config", str(path), f"--workers={workers}"
        )  # fmt: skip
        child = self.spawn(
            name, command, env={"SHADOWGATE_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {})}
        )
        return Gateway(name=name, child=child, port=port, control=control)

    def died(self) -> str:
        """The children that exited on their own, with the end of their logs."""
        return "\n".join(
            f"  {child.name} exited with {child.process.returncode}:\n{child.tail(15)}"
            for child in self.children
            if child.process.poll() is not None
        )

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        for nginx in reversed(self.nginx):
            nginx.stop()
        if self.redis is not None:
            self.redis.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Setup:
    """The ports and processes the phases measure."""

    origin: Nginx  # the fixed answer, and a proxy_pass to it in the same worker
    origin_port: int
    same_worker_port: int
    proxy: Nginx  # a proxy_pass to the origin from a process of its own
    proxy_port: int
    floor: Child
    floor_port: int
    sim_port: int
    paced_port: int
    paced_floor_port: int
    gw: Gateway  # shadow 0%, candidate hung
    twin: Gateway  # the same at 0% (candidate healthy): an A/A control, then shadow 100%
    hung: Gateway  # shadow 100%, candidate hung
    gw_sim: Gateway  # production: the fast simulator
    gw_paced: Gateway  # production: the paced simulator
    flood: Gateway  # shadow 100%, the candidate answers 20 MiB
    cut: Gateway  # shadow 100%, the candidate closes mid-stream
    flood_every: Gateway  # the same two with the circuit breaker off: every mirror goes out
    cut_every: Gateway
    traced: Gateway  # the same as gw, every request traced and exported over OTLP
    otlp_port: int


def start_origin(bench: Bench, nginx_path: str) -> tuple[Nginx, int, int]:
    """Redis, and the nginx that answers a fixed 1 KB completion (its port) and proxies to
    itself in the same worker (the other port)."""
    bench.redis = EmbeddedRedis(state_dir=bench.workdir / "redis", persist=False)
    bench.redis.start()
    origin, same_worker = free_port(), free_port()
    origin_nginx = Nginx(
        "nginx-origin",
        binary=nginx_path,
        workdir=bench.workdir / "nginx-origin",
        answer=(origin, chat_completion(1024)),
        proxy=(same_worker, origin),
    )
    bench.nginx.append(origin_nginx)
    return origin_nginx, origin, same_worker


def start_all(bench: Bench, nginx_path: str) -> Setup:
    origin_nginx, origin, same_worker = start_origin(bench, nginx_path)
    hung, floor = free_port(), free_port()
    flood, cut = free_port(), free_port()
    sim, sim_candidate, paced, paced_floor = free_port(), free_port(), free_port(), free_port()
    proxy, otlp = free_port(), free_port()
    proxy_nginx = Nginx(
        "nginx-proxy",
        binary=nginx_path,
        workdir=bench.workdir / "nginx-proxy",
        proxy=(proxy, origin),
    )
    bench.nginx.append(proxy_nginx)
    floor_child = bench.peer("floor", floor, f"--upstream=http://127.0.0.1:{origin}")
    paced_floor_child = bench.peer(
        "floor", paced_floor, f"--upstream=http://127.0.0.1:{paced}", name="floor-paced"
    )
    hung_child = bench.peer("hung", hung)
    flood_child, cut_child = bench.peer("flood", flood), bench.peer("cut", cut)
    paced_child = bench.peer("paced", paced, f"--tokens-per-s={PACED_TOKENS_S}")
    otlp_child = bench.peer("otlp", otlp)
    sims = [
        (
            bench.spawn(f"sim-{port}", shadowgate("simulate", "--profile=fast", f"--port={port}")),
            port,
        )
        for port in (sim, sim_candidate)
    ]
    # The upstreams first, then the gateways: started all at once on a busy machine, a dozen
    # interpreters importing their modules took longer than any of them may take to start.
    origin_nginx.wait_ready()
    proxy_nginx.wait_ready()
    wait_port(hung, hung_child)
    wait_port(flood, flood_child)
    wait_port(cut, cut_child)
    floor_child.wait_ready(f"http://127.0.0.1:{floor}/healthz")
    paced_child.wait_ready(f"http://127.0.0.1:{paced}/healthz")
    paced_floor_child.wait_ready(f"http://127.0.0.1:{paced_floor}/healthz")
    for child, port in sims:
        child.wait_ready(f"http://127.0.0.1:{port}/healthz")
    setup = Setup(
        origin=origin_nginx,
        origin_port=origin,
        same_worker_port=same_worker,
        proxy=proxy_nginx,
        proxy_port=proxy,
        floor=floor_child,
        floor_port=floor,
        sim_port=sim,
        paced_port=paced,
        paced_floor_port=paced_floor,
        gw=bench.gateway("gw", production=origin, candidate=hung, shadow_percent=0),
        twin=bench.gateway("gwtwin", production=origin, candidate=origin, shadow_percent=0),
        hung=bench.gateway("gwhung", production=origin, candidate=hung, shadow_percent=100),
        gw_sim=bench.gateway("gwsim", production=sim, candidate=sim_candidate, shadow_percent=0),
        gw_paced=bench.gateway(
            "gwpaced", production=paced, candidate=sim_candidate, shadow_percent=0
        ),
        flood=bench.gateway("gwflood", production=origin, candidate=flood, shadow_percent=100),
        cut=bench.gateway("gwcut", production=origin, candidate=cut, shadow_percent=100),
        flood_every=bench.gateway(
            "gwfloodnb", production=origin, candidate=flood, shadow_percent=100, breaker=False
        ),
        cut_every=bench.gateway(
            "gwcutnb", production=origin, candidate=cut, shadow_percent=100, breaker=False
        ),
        traced=bench.gateway(
            "gwtraced",
            production=origin,
            candidate=hung,
            shadow_percent=0,
            # The SDK's defaults otherwise: every request sampled, batches of up to 512 spans.
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}"},
        ),
        otlp_port=otlp,
    )
    otlp_child.wait_ready(f"http://127.0.0.1:{otlp}/healthz")
    gateways = (
        setup.gw,
        setup.twin,
        setup.hung,
        setup.gw_sim,
        setup.gw_paced,
        setup.flood,
        setup.cut,
        setup.flood_every,
        setup.cut_every,
        setup.traced,
    )
    for gateway in gateways:
        gateway.wait_ready()
    return setup


def wait_port(port: int, child: Child, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and child.process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ProcessStartError(f"{child.name}: nothing listens on 127.0.0.1:{port}: {child.tail()}")


def load(mode: str, targets: dict[str, int], *args: str, timeout_s: float = 300) -> dict[str, Any]:
    """Runs the load generator in its own process and returns its JSON report."""
    command = [sys.executable, "-m", "benchmarks._load", mode]
    command += [f"--target={name}={port}" for name, port in targets.items()]
    try:
        done = subprocess.run(
            [*command, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            preexec_fn=die_with_parent_signal,
        )
    except subprocess.TimeoutExpired:
        raise LoadError(f"load generator ({mode}) did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise LoadError(f"load generator ({mode}) failed: {done.stderr.strip()[-600:]}")
    report: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return report


def open_loop(targets: dict[str, int], seconds: float) -> dict[str, Any]:
    return load("open", targets, f"--rate={RATE}", f"--duration={seconds}", "--connections=16")


class Background:
    """CPU used by processes outside this run, as a share of the machine: other people's test
    runs share it. Before each phase the run waits (a bounded time) for a quiet moment."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self.phases: list[tuple[str, float]] = []

    @staticmethod
    def _counters() -> tuple[float, float]:
        """(CPU seconds the machine spent, of which this run's processes), kernel IRQ left out."""
        t = psutil.cpu_times()
        machine = float(t.user + t.nice + t.system + getattr(t, "steal", 0.0))
        me = psutil.Process()
        ours = 0.0
        for process in [me, *me.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            ours += times.user + times.system
        reaped = os.times()  # load generators that already ended
        return machine, ours + reaped.children_user + reaped.children_system

    @contextmanager
    def measure(self) -> Iterator[list[float]]:
        share: list[float] = []
        (machine, ours), started = self._counters(), time.monotonic()
        yield share
        elapsed = (time.monotonic() - started) * (psutil.cpu_count() or 1)
        machine_now, ours_now = self._counters()
        share.append(max(0.0, ((machine_now - machine) - (ours_now - ours)) / elapsed))

    def wait_quiet(self, below: float = 0.10) -> None:
        deadline = time.monotonic() + self.max_wait_s
        while time.monotonic() < deadline:
            with self.measure() as share:
                time.sleep(0.5)
            if share[0] < below:
                return

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.wait_quiet()
        with self.measure() as share:
            yield
        self.phases.append((name, share[0]))


@dataclass
class Failures:
    """Requests that failed or got a non-2xx answer, per phase and path; latency figures
    count successful requests only, so these are reported next to them."""

    seen: list[str] = field(default_factory=list)

    def note(self, phase: str, targets: dict[str, dict[str, Any]]) -> None:
        for name, row in targets.items():
            if row["errors"]:
                self.seen.append(f"{phase}/{name} {row['errors']} {row['statuses'] or ''}")

    def row(self) -> Row:
        return ("failed or non-2xx requests", "; ".join(self.seen) or "none", "")


def ms(value: float) -> str:
    return f"{value:.3f}"


def p50_p99(row: dict[str, Any]) -> str:
    return f"{ms(row['p50_ms'])} / {ms(row['p99_ms'])} ms"


def added(via: dict[str, Any], base: dict[str, Any]) -> str:
    return f"{via['p50_ms'] - base['p50_ms']:+.3f} / {via['p99_ms'] - base['p99_ms']:+.3f}"


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "missed"


def fixed_rate(
    setup: Setup, plan: Plan, background: Background, failures: Failures
) -> tuple[list[Row], float, float]:
    """Added latency at a fixed rate, every path in the same window, requests interleaved."""
    paths = {
        "direct": setup.origin_port,
        "same-worker": setup.same_worker_port,
        "nginx": setup.proxy_port,
        "floor": setup.floor_port,
        "gw": setup.gw.port,
    }
    open_loop(paths, 2)  # warm-up: pools, code paths, caches
    with background.phase("fixed rate"):
        report = open_loop(paths, plan.latency_s)
    t = report["targets"]
    failures.note("fixed rate", t)
    direct = t["direct"]
    rows = [
        (
            f"direct to nginx, {RATE:.0f} req/s ({direct['ok'] + direct['errors']:,} requests "
            "per path): p50 / p99 / p99.9",
            f"{p50_p99(direct)[:-3]} / {ms(direct['p999_ms'])} ms",
            "",
        )
    ]
    labels = {
        "same-worker": "nginx proxy_pass in the origin's own worker",
        "nginx": "nginx proxy_pass in a process of its own (the reference)",
        "floor": "bare aiohttp proxy",
        "gw": "shadowgate",
    }
    for key, label in labels.items():
        target = ""
        if key == "gw":
            over50 = t[key]["p50_ms"] - direct["p50_ms"]
            over99 = t[key]["p99_ms"] - direct["p99_ms"]
            target = f"added ≤ 0.5 / ≤ 2 ms: {verdict(over50, 0.5)} / {verdict(over99, 2.0)}"
        rows.append(
            (
                f"{label}: p50 / p99 (added)",
                f"{p50_p99(t[key])} ({added(t[key], direct)})",
                target,
            )
        )
    return rows, report["lateness_p50_ms"], report["lateness_p99_ms"]


def shadowing(setup: Setup, plan: Plan, background: Background, failures: Failures) -> list[Row]:
    """Shadow 100% to a hung candidate next to two identical gateways at 0% (an A/A control
    that shows how far p99 moves by chance), then 100% to a healthy candidate."""
    trio = {"gw": setup.gw.port, "twin": setup.twin.port, "hung": setup.hung.port}
    open_loop(trio, 2)
    dropped = setup.hung.shadow_outcomes()["dropped_saturated"]
    # Several short rounds, each judged on its own: a p99 is set by a handful of requests,
    # and one burst of outside load in one round should not decide the figure.
    rounds: list[dict[str, Any]] = []
    gateways = {"gw": setup.gw, "twin": setup.twin, "hung": setup.hung}
    cpu_before = {name: _cpu_s(gateway) for name, gateway in gateways.items()}
    with background.phase("shadow, hung candidate"):
        for _ in range(plan.shadow_rounds):
            rounds.append(open_loop(trio, plan.shadow_s / plan.shadow_rounds)["targets"])
    cpu_us = {
        name: (_cpu_s(gateway) - cpu_before[name])
        / max(1, sum(t[name]["ok"] for t in rounds))
        * 1e6
        for name, gateway in gateways.items()
    }
    for t in rounds:
        failures.note("shadow, hung", t)
    dropped = setup.hung.shadow_outcomes()["dropped_saturated"] - dropped
    stuck = setup.hung.metric("shadowgate_shadow_in_flight")
    changes = [
        t["hung"]["p99_ms"] / ((t["gw"]["p99_ms"] + t["twin"]["p99_ms"]) / 2) - 1 for t in rounds
    ]
    spreads = [t["twin"]["p99_ms"] / t["gw"]["p99_ms"] - 1 for t in rounds]
    change = statistics.median(changes)
    median = {
        name: {q: statistics.median(t[name][q] for t in rounds) for q in ("p50_ms", "p99_ms")}
        for name in trio
    }
    rows = [
        (
            f"shadowgate, shadow 0%, two identical gateways (A/A), median of {len(rounds)} "
            "rounds: p50 / p99",
            f"{p50_p99(median['gw'])[:-3]} and {p50_p99(median['twin'])} (p99 differs by "
            f"{statistics.median(spreads):+.1%}; rounds {min(spreads):+.1%} to "
            f"{max(spreads):+.1%})",
            "",
        ),
        (
            "shadowgate, shadow 100%, hung candidate, median of the rounds: p50 / p99 "
            "(p99 vs the A/A mean)",
            f"{p50_p99(median['hung'])} ({change:+.1%}; rounds {min(changes):+.1%} to "
            f"{max(changes):+.1%}; {dropped:,.0f} mirrors dropped_saturated, {stuck:.0f} stuck "
            f"in flight; CPU per request {cpu_us['hung']:.0f} µs against "
            f"{cpu_us['gw']:.0f} / {cpu_us['twin']:.0f} at 0%)",
            f"p99 change ≤ 10%: {verdict(abs(change), 0.10)}",
        ),
    ]

    setup.twin.set_shadow_percent(100)
    pair = {"gw": setup.gw.port, "twin": setup.twin.port}
    open_loop(pair, 1)
    before = setup.twin.shadow_outcomes()["sent"]
    published = setup.twin.metric("shadowgate_pairs_published_total")
    with background.phase("shadow, healthy candidate"):
        t = open_loop(pair, plan.latency_s)["targets"]
    failures.note("shadow, healthy", t)
    sent = setup.twin.shadow_outcomes()["sent"] - before
    published = setup.twin.metric("shadowgate_pairs_published_total") - published
    change = t["twin"]["p99_ms"] / t["gw"]["p99_ms"] - 1
    rows.append(
        (
            "shadowgate, shadow 100%, healthy candidate: p50 / p99 (p99 vs 0% in the same window)",
            f"{p50_p99(t['twin'])} ({change:+.1%}; 0%: {p50_p99(t['gw'])}; {sent:,.0f} mirrors "
            f"sent, {published:,.0f} pairs published)",
            "",
        )
    )
    return rows


def _cpu_s(gateway: Gateway) -> float:
    times = gateway.process().cpu_times()
    return float(times.user + times.system)


def closed_loops(setup: Setup, plan: Plan, background: Background, failures: Failures) -> list[Row]:
    """One path at a time: one connection back to back (every process stays awake, unlike at
    a fixed rate), then eight connections for the maximum rate and the CPU per request."""
    paths = {
        "direct": (setup.origin_port, setup.origin.worker()),
        "nginx": (setup.proxy_port, setup.proxy.worker()),
        "floor": (setup.floor_port, psutil.Process(setup.floor.process.pid)),
        "gw": (setup.gw.port, setup.gw.process()),
        "traced": (setup.traced.port, setup.traced.process()),
    }
    sequential: dict[str, dict[str, Any]] = {}
    rps: dict[str, float] = {}
    cpu_us: dict[str, float] = {}
    with background.phase("closed loops"):
        for key, (port, process) in paths.items():
            one = load("closed", {key: port}, "--connections=1", f"--duration={plan.throughput_s}")
            sequential[key] = one["targets"]["closed"]
            failures.note("one connection", {key: sequential[key]})
            before = process.cpu_times()
            eight = load(
                "closed", {key: port}, "--connections=8", f"--duration={plan.throughput_s}"
            )
            after = process.cpu_times()
            cpu = after.user + after.system - before.user - before.system
            rps[key] = eight["rps"]
            failures.note("8 connections", {key: eight["targets"]["closed"]})
            cpu_us[key] = cpu / max(1, eight["targets"]["closed"]["ok"]) * 1e6
    direct = sequential["direct"]
    return [
        (
            "one connection, back to back: direct p50 / p99; added by nginx proxy_pass, bare "
            "aiohttp, shadowgate",
            f"{p50_p99(direct)}; "
            + ", ".join(f"{added(sequential[k], direct)}" for k in ("nginx", "floor", "gw")),
            "",
        ),
        (
            "max req/s, 8 connections: direct / nginx proxy_pass / bare aiohttp / shadowgate / "
            "shadowgate traced",
            " / ".join(f"{rps[k]:,.0f}" for k in paths),
            "",
        ),
        (
            "shadowgate max req/s vs nginx proxy_pass (at most: the one-process load "
            "generator caps nginx) / vs bare aiohttp",
            f"{rps['gw'] / rps['nginx']:.3f} / {rps['gw'] / rps['floor']:.3f}",
            "",
        ),
        (
            "CPU per request: nginx answering / nginx proxying, bare aiohttp, shadowgate",
            " / ".join(f"{cpu_us[k]:.0f}" for k in ("direct", "nginx", "floor", "gw")) + " µs",
            "",
        ),
        (
            "CPU per request, shadowgate with tracing off / on (every request a span, OTLP/HTTP "
            "to a local receiver)",
            f"{cpu_us['gw']:.0f} / {cpu_us['traced']:.0f} µs "
            f"({cpu_us['traced'] - cpu_us['gw']:+.0f} µs; {otlp_spans(setup):,} spans received)",
            "",
        ),
    ]


def misbehaving(setup: Setup, plan: Plan, background: Background, failures: Failures) -> list[Row]:
    """Four users back to back (closed loop, 4 connections) on one gateway at a time, in
    rounds whose order rotates: shadow 0%; shadow 100% to a healthy candidate (the twin, left
    at 100% by the shadowing phase); to one that answers 20 MiB; to one that closes
    mid-stream; those two again with the circuit breaker off, so that every mirror goes out.
    The ratios are medians over rounds of each round's figure against that round's 0%."""
    gateways = {
        "gw": setup.gw,
        "healthy": setup.twin,
        "flood": setup.flood,
        "cut": setup.cut,
        "flood_every": setup.flood_every,
        "cut_every": setup.cut_every,
    }
    for name, gateway in gateways.items():  # warm-up: pools, code paths
        load("closed", {name: gateway.port}, "--connections=4", "--duration=0.5")
    outcomes_before = {name: gateway.shadow_outcomes() for name, gateway in gateways.items()}
    cpu_before = {name: _cpu_s(gateway) for name, gateway in gateways.items()}
    served = dict.fromkeys(gateways, 0)
    rounds: list[dict[str, dict[str, Any]]] = []
    with background.phase("misbehaving candidate"):
        for index in range(plan.misbehaving_rounds):
            names = list(gateways)
            order = names[index % len(names) :] + names[: index % len(names)]
            result: dict[str, dict[str, Any]] = {}
            for name in order:
                report = load(
                    "closed",
                    {name: gateways[name].port},
                    "--connections=4",
                    f"--duration={plan.misbehaving_s}",
                )
                result[name] = report["targets"]["closed"] | {"rps": report["rps"]}
                served[name] += result[name]["ok"]
                failures.note("misbehaving", {name: result[name]})
            rounds.append(result)
    cpu_us = {
        name: (_cpu_s(gateway) - cpu_before[name]) / max(1, served[name]) * 1e6
        for name, gateway in gateways.items()
    }
    mirrors = {
        name: {
            outcome: count - outcomes_before[name][outcome]
            for outcome, count in gateway.shadow_outcomes().items()
            if count > outcomes_before[name][outcome]
        }
        for name, gateway in gateways.items()
    }

    def median(name: str, field_name: str) -> float:
        return float(statistics.median(r[name][field_name] for r in rounds))

    def ratio(name: str, quantile: str) -> float:
        return float(statistics.median(r[name][quantile] / r["gw"][quantile] for r in rounds))

    def figure(name: str) -> str:
        outcomes = ", ".join(f"{count:,.0f} {outcome}" for outcome, count in mirrors[name].items())
        return (
            f"{ms(median(name, 'p50_ms'))} / {ms(median(name, 'p99_ms'))} ms, "
            f"{median(name, 'rps'):,.0f} req/s, CPU per request {cpu_us[name]:.0f} µs"
            + (f"; mirrors: {outcomes}" if outcomes else "")
        )

    rows: list[Row] = [
        (
            f"4 users back to back (closed loop), shadow 0%, median of {len(rounds)} rounds: "
            "p50 / p99",
            figure("gw"),
            "",
        ),
        (
            "  shadow 100%, healthy candidate: p50 / p99 (ratio to 0%)",
            f"{figure('healthy')} ({ratio('healthy', 'p50_ms'):.2f} / "
            f"{ratio('healthy', 'p99_ms'):.2f})",
            "",
        ),
    ]
    labels = {
        "flood": "**shadow 100%, candidate answering 20 MiB**",
        "cut": "**shadow 100%, candidate closing mid-stream**",
        "flood_every": "  the same, circuit breaker off (every mirror reads 1 MiB, then closes)",
        "cut_every": "  candidate closing mid-stream, circuit breaker off",
    }
    for name, label in labels.items():
        p50, p99 = ratio(name, "p50_ms"), ratio(name, "p99_ms")
        rows.append(
            (
                f"  {label}: p50 / p99 (ratio to 0%; to the healthy candidate)",
                f"{figure(name)} ({p50:.2f} / {p99:.2f}; "
                f"{p50 / ratio('healthy', 'p50_ms'):.2f} / "
                f"{p99 / ratio('healthy', 'p99_ms'):.2f})",
                f"ratio ≤ 1.10: {verdict(p50, 1.10)} / {verdict(p99, 1.10)}"
                if label.startswith("**")
                else "",
            )
        )
    return rows


def workers(
    bench: Bench,
    origin: Nginx,
    origin_port: int,
    plan: Plan,
    background: Background,
    failures: Failures,
) -> list[Row]:
    """Maximum rate through `serve --workers 1` and `--workers 2`, in alternating rounds, with
    16 connections (the kernel spreads them over the two processes)."""
    gateways = {
        count: bench.gateway(f"gw{count}w", production=origin_port, candidate=origin_port,
                             shadow_percent=0, workers=count)
        for count in (1, 2)
    }  # fmt: skip
    origin.wait_ready()
    rps: dict[int, list[float]] = {1: [], 2: []}
    try:
        for gateway in gateways.values():
            gateway.wait_ready()
            load("closed", {"warm": gateway.port}, "--connections=16", "--duration=1")
        with background.phase("1 vs 2 workers"):
            for _ in range(plan.worker_rounds):
                for count, gateway in gateways.items():
                    report = load("closed", {f"w{count}": gateway.port}, "--connections=16",
                                  f"--duration={plan.throughput_s}")  # fmt: skip
                    rps[count].append(report["rps"])
                    failures.note(f"{count} workers", {"gw": report["targets"]["closed"]})
    finally:
        for gateway in gateways.values():
            gateway.child.stop()
    one, two = statistics.median(rps[1]), statistics.median(rps[2])
    rounds = "; ".join(f"{a:,.0f} / {b:,.0f}" for a, b in zip(rps[1], rps[2], strict=True))
    return [
        (
            f"max req/s, 16 connections, serve --workers 1 / --workers 2 (median of "
            f"{plan.worker_rounds} alternating rounds)",
            f"{one:,.0f} / {two:,.0f}, ratio {two / one:.2f} (rounds: {rounds}; "
            f"{os.cpu_count()} cores shared with the load generator and nginx)",
            "",
        )
    ]


def otlp_spans(setup: Setup) -> int:
    """Spans the OTLP receiver has counted, once the traced gateway's last batch is out."""
    time.sleep(6)  # the batch processor exports every 5 s
    url = f"http://127.0.0.1:{setup.otlp_port}/stats"
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(orjson.loads(response.read())["spans"])


def streaming(setup: Setup, plan: Plan, background: Background, failures: Failures) -> list[Row]:
    """Time to the first chunk of a stream, direct and through the proxies. The fast simulator
    writes a whole stream within one event-loop turn, so a proxy reads it in one go and its
    first chunk carries all of it; the paced one sends its tokens apart, as a model does."""
    streams = {
        "fast": setup.sim_port,
        "gw-fast": setup.gw_sim.port,
        "paced": setup.paced_port,
        "floor-paced": setup.paced_floor_port,
        "gw-paced": setup.gw_paced.port,
    }
    load("ttfb", streams, "--count=20")
    with background.phase("streaming"):
        t = load("ttfb", streams, f"--count={plan.ttfb_count}")["targets"]
    failures.note("streaming", t)
    streams_of = f"{plan.ttfb_count} streams of 16 tokens"
    return [
        (
            f"stream first chunk, fast simulator ({streams_of}): direct / via shadowgate (added)",
            f"{p50_p99(t['fast'])[:-3]} / {p50_p99(t['gw-fast'])} "
            f"({added(t['gw-fast'], t['fast'])})",
            "",
        ),
        (
            f"stream first chunk, simulator at {PACED_TOKENS_S:,} tokens/s ({streams_of}): direct",
            p50_p99(t["paced"]),
            "",
        ),
        (
            "  through a bare aiohttp streaming proxy / through shadowgate (added)",
            f"{p50_p99(t['floor-paced'])[:-3]} ({added(t['floor-paced'], t['paced'])}) / "
            f"{p50_p99(t['gw-paced'])} ({added(t['gw-paced'], t['paced'])})",
            "",
        ),
    ]


def memory(setup: Setup, plan: Plan, failures: Failures) -> list[Row]:
    """RSS across a long run with every request mirrored, one in four streaming."""
    gateway = setup.gw_sim
    gateway.set_shadow_percent(100)
    process = gateway.process()
    closed = ("--connections=16", "--duration=600", "--stream-every=4")
    load("closed", {"gw": gateway.port}, *closed, "--requests=2000")
    rss_before = process.memory_info().rss
    outcomes_before = gateway.shadow_outcomes()
    pairs_before = gateway.metric("shadowgate_pairs_published_total")
    done = 0
    rss_half = 0
    for part in (plan.rss_requests // 2, plan.rss_requests - plan.rss_requests // 2):
        report = load("closed", {"gw": gateway.port}, *closed, f"--requests={part}")
        done += report["targets"]["closed"]["ok"]
        failures.note("memory", {"gw": report["targets"]["closed"]})
        rss_half = rss_half or process.memory_info().rss
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (
        gateway.metric("shadowgate_shadow_in_flight") or gateway.metric("shadowgate_publish_buffer")
    ):
        time.sleep(0.2)
    rss_after = process.memory_info().rss
    outcomes = {k: v - outcomes_before[k] for k, v in gateway.shadow_outcomes().items()}
    pairs = gateway.metric("shadowgate_pairs_published_total") - pairs_before
    mirrors = ", ".join(f"{k} {v:,.0f}" for k, v in outcomes.items())
    return [
        (
            f"gateway RSS before / half-way / after {done:,} requests, shadow 100% to a "
            "healthy candidate, 1 in 4 streaming",
            f"{rss_before / MIB:.1f} / {rss_half / MIB:.1f} / {rss_after / MIB:.1f} MiB "
            f"({(rss_after - rss_before) / MIB:+.1f} MiB; mirrors {mirrors}; "
            f"{pairs:,.0f} pairs published)",
            f"growth ≤ 50 MB: {verdict(rss_after - rss_before, 50e6)}",
        )
    ]


def run(plan: Plan, *, workers_only: bool = False) -> int:
    nginx_path = nginx_binary()
    if nginx_path is None:
        print("proxy_bench: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 1
    # A short path: the gateways' state dirs and Redis' unix socket live under it.
    bench = Bench(workdir=Path(tempfile.mkdtemp(prefix="sgb-", dir="/tmp")))
    background = Background(plan.quiet_wait_s)
    failures = Failures()
    late50 = late99 = None
    try:
        if workers_only:
            origin, origin_port, _ = start_origin(bench, nginx_path)
            rows = workers(bench, origin, origin_port, plan, background, failures)
        else:
            setup = start_all(bench, nginx_path)
            rows, late50, late99 = fixed_rate(setup, plan, background, failures)
            rows += shadowing(setup, plan, background, failures)
            rows += misbehaving(setup, plan, background, failures)
            rows += closed_loops(setup, plan, background, failures)
            rows += workers(bench, setup.origin, setup.origin_port, plan, background, failures)
            rows += streaming(setup, plan, background, failures)
            rows += memory(setup, plan, failures)
    except (ProcessStartError, LoadError, OSError) as exc:
        print(f"proxy_bench: {exc}", file=sys.stderr)
        if died := bench.died():
            print(f"proxy_bench: processes that exited during the run:\n{died}", file=sys.stderr)
        return 1
    finally:
        bench.stop()
    if late50 is not None and late99 is not None:
        rows.append(
            (
                "load generator's own send lateness at the fixed rate: p50 / p99",
                f"{ms(late50)} / {ms(late99)} ms",
                "",
            )
        )
    rows.append(
        (
            f"CPU of other processes during each phase (of {psutil.cpu_count()} cores)",
            ", ".join(f"{name} {share:.0%}" for name, share in background.phases),
            "",
        )
    )
    rows.append(failures.row())
    print_table(rows)
    return 0


def print_table(rows: list[Row]) -> None:
    header = ("measure", "figure", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    print("shadowgate proxy benchmark: loopback, one run, this machine")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turns SIGTERM into an exception, so `finally` stops every child as on Ctrl-C.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute)")
    parser.add_argument(
        "--workers-only", action="store_true", help="only serve --workers 1 against 2"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return run(Plan.of(args.quick), workers_only=args.workers_only)
    except KeyboardInterrupt:
        print("proxy_bench: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
