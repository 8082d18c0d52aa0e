"""`shadowgate demo`: the whole pipeline on one machine.

Two simulated model servers (production, and a candidate with a known behaviour change), a
third playing the LLM judge, the gateway with its embedded Redis, a burst of prompts through
the real `openai` client (streaming and not, some carrying PII), then a report of what the
gateway saw and stored, and the `shadowgate report` table of the run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import uvloop
import yaml

from gateway.errors import ShadowgateError
from gateway.serving.processes import Child, free_port, shadowgate_command
from gateway.sim.demo_prompts import demo_prompts
from gateway.sim.demo_report import print_report, print_rollout_report, wait_for_mirrors

_ADMIN_TOKEN = "demo-admin-token"
_REVIEWER_TOKEN = "demo-reviewer-token"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoStageError(ShadowgateError):
    """A stage of the pipeline produced nothing: the demo proved nothing past it."""

    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(f"demo failed at {stage}: {detail}")
        self.stage = stage


class DemoStopped(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so that the event loop and every
    `finally` on the way treat SIGTERM and SIGHUP as they treat Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise DemoStopped(signum)


def _write_config(state_dir: Path, ports: dict[str, int]) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": ports["gateway"]},
        "control": {"host": "127.0.0.1", "port": ports["control"]},
        "upstreams": {
            "production": {
                "url": f"http://127.0.0.1:{ports['production']}",
                "prices": {"*": {"input_per_1m": 0.15, "output_per_1m": 0.60}},
            },
            "candidate": {
                "url": f"http://127.0.0.1:{ports['candidate']}",
                "api_key": "candidate-demo-key",
                "prices": {"*": {"input_per_1m": 0.10, "output_per_1m": 0.40}},
            },
        },
        "traffic": {"shadow_percent": 50, "canary_percent": 10},
        "shadow": {"noise_percent": 20, "timeout_s": 30},
        # The simulator's judge profile plays the LLM judge: no network, same code path.
        "scoring": {
            "judge": {
                "enabled": True,
                "url": f"http://127.0.0.1:{ports['judge']}/v1",
                "model": "judge-model",
                "api_key": "judge-demo-key",
                "select": {"flagged": True, "excess_above": 0.1},
                "calls_per_minute": 600,
                "usd_per_day": 1.0,
                "price": {"input_per_1m": 0.15, "output_per_1m": 0.60},
            }
        },
        "state_dir": str(state_dir / "state"),
    }
    path = state_dir / "shadowgate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def _send_prompts(base_url: str, prompts: list[str], concurrency: int) -> Counter[str]:
    """Send every prompt through the gateway; returns counts by arm and by failure."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="demo-user-key", max_retries=0)
    rng = random.Random(11)
    gate = asyncio.Semaphore(concurrency)
    outcomes: Counter[str] = Counter()

    async def one(i: int, prompt: str) -> None:
        user = f"user-{rng.randrange(60)}"
        messages: Any = [{"role": "user", "content": prompt}]
        async with gate:
            try:
                if i % 2:
                    raw_stream = await client.chat.completions.with_raw_response.create(
                        model="demo",
                        messages=messages,
                        user=user,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    async for _chunk in raw_stream.parse():
                        pass
                    outcomes["streamed"] += 1
                    arm = raw_stream.headers.get("x-shadowgate-arm")
                else:
                    raw = await client.chat.completions.with_raw_response.create(
                        model="demo", messages=messages, user=user
                    )
                    raw.parse()
                    outcomes["not streamed"] += 1
                    arm = raw.headers.get("x-shadowgate-arm")
                outcomes[f"served by {arm}"] += 1
            except openai.APIError as exc:
                outcomes[f"error:{type(exc).__name__}"] += 1

    await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    await client.close()
    return outcomes


def _last_error(log_path: Path) -> str:
    """The last exception line of a log (the end of a traceback), or ''."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    pattern = re.compile(r"^[A-Za-z_.]*(Error|Exception)\b")
    return next((line for line in reversed(lines) if pattern.match(line)), "")


def _check_stages(
    outcomes: Counter[str], captured: int, scored: int, queued: int, gateway_log: Path
) -> None:
    """Raise DemoStageError naming the first stage that produced nothing (or, for scoring,
    left pairs unscored)."""
    error = _last_error(gateway_log)
    hint = f" (last error in {gateway_log}: {error})" if error else f" (see {gateway_log})"
    answered = sum(v for k, v in outcomes.items() if k.startswith("served by"))
    if answered == 0:
        raise DemoStageError("requests", "no prompt was answered through the gateway" + hint)
    if captured == 0:
        raise DemoStageError("capture", "no pair was captured in Redis" + hint)
    if scored < captured:
        raise DemoStageError("scoring", f"scored {scored} of {captured} captured pairs" + hint)
    if queued == 0:
        raise DemoStageError("review", "no pair was queued for review" + hint)


_SIMULATORS = ("production", "candidate", "judge")


def _start(workdir: Path, ports: dict[str, int], children: list[Child]) -> Path:
    """The simulators (production, candidate, judge), then the gateway (with its Redis and
    worker); returns the config."""
    for profile in _SIMULATORS:
        children.append(
            Child(
                f"simulator ({profile})",
                shadowgate_command("simulate", "--profile", profile, "--port", str(ports[profile])),
                log_path=workdir / f"{profile}.log",
                env={},
                die_with_parent=True,
            )
        )
    for child, profile in zip(children, _SIMULATORS, strict=True):
        child.wait_ready(f"http://127.0.0.1:{ports[profile]}/healthz")
    config_path = _write_config(workdir, ports)
    gateway = Child(
        "gateway",
        shadowgate_command("serve", "--config", str(config_path)),
        log_path=workdir / "gateway.log",
        env={"SHADOWGATE_ADMIN_TOKEN": _ADMIN_TOKEN, "SHADOWGATE_REVIEWER_TOKEN": _REVIEWER_TOKEN},
        die_with_parent=True,
    )
    children.append(gateway)
    gateway.wait_ready(f"http://127.0.0.1:{ports['control']}/readyz", timeout_s=30)
    return config_path


def run_demo(*, requests: int = 300, keep_running: bool = False) -> int:
    """Start everything, send the prompts, print the report; returns an exit code, and
    raises DemoStageError when a stage produced nothing.

    Every child stops with the demo however it is stopped: SIGINT, SIGTERM and SIGHUP run
    the cleanup below, and on SIGKILL the kernel signals them (PR_SET_PDEATHSIG)."""
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="sgdemo-"))
    ports = {name: free_port() for name in (*_SIMULATORS, "gateway", "control")}
    children: list[Child] = []
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in _STOP_SIGNALS}
    serving = False
    try:
        config_path = _start(workdir, ports, children)
        control_url = f"http://127.0.0.1:{ports['control']}"
        print(
            f"gateway on http://127.0.0.1:{ports['gateway']} (control {control_url}); "
            f"sending {requests} prompts ..."
        )
        started, started_at = time.monotonic(), time.time()
        outcomes = uvloop.run(
            _send_prompts(f"http://127.0.0.1:{ports['gateway']}/v1", demo_prompts(requests), 16)
        )
        wait_for_mirrors(control_url)
        captured, scored, queued = print_report(
            control_url, workdir / "state" / "redis.sock", outcomes, time.monotonic() - started
        )
        print_rollout_report(config_path, since_s=time.time() - started_at + 10)
        print(f"logs and state: {workdir}")
        _check_stages(outcomes, captured, scored, queued, workdir / "gateway.log")
        print(f"reviewer page: {control_url}/review/  (reviewer token: {_REVIEWER_TOKEN})")
        if not keep_running:
            print("  run `shadowgate demo --keep-running` to keep the servers up and review there")
            return 0
        print("servers keep running; press Ctrl-C to stop", flush=True)
        serving = True
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        stopped = next(c for c in children if c.poll() is not None)
        raise DemoStageError("serving", f"{stopped.name} exited with {stopped.poll()}")
    except DemoStopped as stop:
        print(f"stopped by {signal.Signals(stop.signum).name}", flush=True)
        # Asked to stop while serving is the way out of --keep-running, not a failure.
        return 0 if serving else 128 + stop.signum
    finally:
        # A second signal must not cut the cleanup short and leave children behind.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
