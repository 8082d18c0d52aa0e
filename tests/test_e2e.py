"""End to end: `shadowgate serve` as a real process with its embedded Redis, between two
simulator processes, driven by the real `openai` client."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import redis
import yaml

from gateway.records import PairRecord, ScoreRecord, pairs_from_entries
from gateway.serving.processes import Child, free_port, shadowgate_command

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "e2e-admin"


@dataclass
class Stack:
    gateway: Child
    config_path: Path
    state_dir: Path
    base_url: str
    control_url: str

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key="user-key", max_retries=0)

    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.state_dir / "redis.sock"))

    def pairs(self, at_least: int, timeout_s: float = 10.0) -> list[PairRecord]:
        client = self.redis()
        deadline = time.monotonic() + timeout_s
        while client.xlen("shadowgate:pairs") < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        entries = client.xrange("shadowgate:pairs")
        client.close()
        return pairs_from_entries(entries)

    def admin(self, method: str, body: dict[str, float] | None = None) -> dict[str, float]:
        request = urllib.request.Request(
            f"{self.control_url}/admin/traffic",
            method=method,
            data=orjson.dumps(body) if body is not None else None,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            result: dict[str, float] = orjson.loads(response.read())
            return result

    def child_pid(self, *markers: bytes) -> int:
        """The pid of the gateway's child whose command line holds every marker."""
        socket_path = str(self.state_dir / "redis.sock").encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if socket_path in cmdline and all(m in cmdline for m in markers):
                    return int(entry.name)
        raise AssertionError(f"no child process with {markers}")

    def redis_server_pid(self) -> int:
        return self.child_pid(b"redis-server")


def write_config(path: Path, ports: dict[str, int], state_dir: Path, shadow_percent: float) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "listen": {"host": "127.0.0.1", "port": ports["gateway"]},
                "control": {"host": "127.0.0.1", "port": ports["control"]},
                "upstreams": {
                    "production": {"url": f"http://127.0.0.1:{ports['production']}"},
                    "candidate": {
                        "url": f"http://127.0.0.1:{ports['candidate']}",
                        "api_key": "cand-key",
                    },
                },
                "traffic": {"shadow_percent": shadow_percent},
                "shadow": {"noise_percent": 0},
                "publish": {"max_backoff_s": 0.2},
                "state_dir": str(state_dir),
            }
        )
    )


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e")
    ports = {name: free_port() for name in ("production", "candidate", "gateway", "control")}
    children: list[Child] = []
    try:
        for profile in ("production", "candidate"):
            children.append(
                Child(
                    profile,
                    shadowgate_command(
                        "simulate", "--profile", "fast", "--port", str(ports[profile])
                    ),
                    log_path=root / f"{profile}.log",
                    env={},
                )
            )
        for child, profile in zip(children, ("production", "candidate"), strict=True):
            child.wait_ready(f"http://127.0.0.1:{ports[profile]}/healthz")
        config_path = root / "gateway.yaml"
        write_config(config_path, ports, root / "state", shadow_percent=100)
        gateway = Child(
            "gateway",
            shadowgate_command("serve", "--config", str(config_path)),
            log_path=root / "gateway.log",
            env={"SHADOWGATE_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        children.append(gateway)
        control_url = f"http://127.0.0.1:{ports['control']}"
        gateway.wait_ready(f"{control_url}/readyz", timeout_s=30)
        yield Stack(
            gateway=gateway,
            config_path=config_path,
            state_dir=root / "state",
            base_url=f"http://127.0.0.1:{ports['gateway']}",
            control_url=control_url,
        )
    finally:
        for child in reversed(children):
            child.stop()


def test_openai_client_streaming_and_not_through_the_gateway(stack: Stack) -> None:
    client = stack.client()
    prompt = "Write to maria.lopez@example.com about the meeting on Thursday."
    raw = client.chat.completions.with_raw_response.create(
        model="m", messages=[{"role": "user", "content": prompt}], user="u-1"
    )
    assert raw.headers["x-shadowgate-arm"] == "production"
    completion = raw.parse()
    assert completion.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": prompt}],
            user="u-2",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed
    assert chunks[-1].usage is not None
    client.close()

    pairs = stack.pairs(at_least=2)
    assert len(pairs) == 2
    by_stream = {p.production.streamed: p for p in pairs}
    # Stored answers are scrubbed with the request's own placeholders.
    content = completion.choices[0].message.content or ""
    email = "maria.lopez@example.com"
    assert by_stream[False].production.text == content.replace(email, "<EMAIL_1>")
    assert by_stream[True].production.text == streamed.replace(email, "<EMAIL_1>")
    for pair in pairs:
        assert "maria.lopez@example.com" not in orjson.dumps(pair.model_dump()).decode()
        assert pair.candidate.status == 200
        assert pair.candidate.text

    # The embedded scoring worker scores both pairs.
    redis_client = stack.redis()
    deadline = time.monotonic() + 30
    while redis_client.xlen("shadowgate:scores") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    entries: Any = redis_client.xrange("shadowgate:scores")
    scored = {ScoreRecord.model_validate_json(fields[b"data"]).pair_id for _, fields in entries}
    redis_client.close()
    assert scored == {p.id for p in pairs}


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def readyz(stack: Stack) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.control_url}/readyz", timeout=5) as response:
        body: dict[str, Any] = orjson.loads(response.read())
        return body


def restarts(stack: Stack, component: str) -> float:
    with urllib.request.urlopen(f"{stack.control_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    pattern = rf'^shadowgate_child_restarts_total{{component="{component}"}} (\S+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def answers(stack: Stack) -> bool:
    client = stack.redis()
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def test_killed_redis_is_restarted_and_users_never_notice(stack: Stack) -> None:
    client = stack.client()
    messages = [{"role": "user", "content": "hello"}]
    client.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
    killed = stack.redis_server_pid()
    os.kill(killed, signal.SIGKILL)
    for i in range(20):
        completion = client.chat.completions.create(
            model="m",
            messages=messages,  # type: ignore[arg-type]
            user=f"user-{i}",
        )
        assert completion.choices[0].message.content
    client.close()
    # Reaped, not left a zombie; started again, and the restart counted and logged.
    wait_until(lambda: not Path(f"/proc/{killed}").exists())
    wait_until(lambda: restarts(stack, "redis") == 1)
    assert stack.redis_server_pid() != killed
    wait_until(lambda: readyz(stack)["redis"] == "up" and answers(stack))
    assert stack.gateway.log_path is not None
    assert f"redis (pid {killed}) exited with -9" in stack.gateway.log_path.read_text()


def test_a_killed_scoring_worker_is_restarted_and_scores_again(stack: Stack) -> None:
    wait_until(lambda: readyz(stack)["workers_alive"] == 1)
    killed = stack.child_pid(b"score")
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{killed}").exists())
    wait_until(lambda: restarts(stack, "worker") == 1)
    assert stack.child_pid(b"score") != killed
    client = stack.client()
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hello"}],
    )
    client.close()
    redis_client = stack.redis()
    wait_until(lambda: redis_client.xlen("shadowgate:scores") == 1, timeout_s=40)
    redis_client.close()


def test_sighup_reloads_the_traffic_split_and_refuses_a_bad_file(stack: Stack) -> None:
    assert stack.admin("GET")["shadow_percent"] == 100
    data = yaml.safe_load(stack.config_path.read_text())
    data["traffic"]["shadow_percent"] = 25
    stack.config_path.write_text(yaml.safe_dump(data))
    stack.gateway.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while stack.admin("GET")["shadow_percent"] != 25 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack.admin("GET")["shadow_percent"] == 25

    data["traffic"]["shadow_percent"] = 250
    stack.config_path.write_text(yaml.safe_dump(data))
    stack.gateway.process.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert stack.admin("GET")["shadow_percent"] == 25
    assert stack.gateway.process.poll() is None
    assert stack.gateway.log_path is not None
    assert "reload refused" in stack.gateway.log_path.read_text()


def test_no_child_outlives_a_killed_gateway(stack: Stack) -> None:
    children = [stack.redis_server_pid(), stack.child_pid(b"score")]
    stack.gateway.process.kill()
    stack.gateway.process.wait(5)
    for pid in children:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text()
