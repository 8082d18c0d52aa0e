"""End to end, detection: `shadowgate serve` (embedded Redis, a scoring worker with the shipped
ONNX embedder) between two scripted upstreams that answer with held-out pairs of the labelled
set, one of every kind. Every regression must reach the review queue and no acceptable change.

Deterministic: every request is mirrored and every mirror has a noise sample (production asked
again answers with the case's noise answer, else with its own answer), so each pair's noise
floor is its own and nothing is sampled.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import yaml

from benchmarks.detection_data import ACCEPTABLE, REGRESSIONS
from gateway.records import ReviewItem, ScoreRecord
from gateway.serving.processes import Child, free_port, shadowgate_command

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "detection_pairs.jsonl"


def held_out_cases() -> dict[str, dict[str, Any]]:
    """The first held-out pair of every kind, by the tag its requests carry."""
    cases: dict[str, dict[str, Any]] = {}
    for line in DATA.read_text().splitlines():
        case = orjson.loads(line)
        if case["split"] == "holdout" and f"case-{case['kind']}" not in cases:
            cases[f"case-{case['kind']}"] = case
    return cases


@dataclass
class Pipeline:
    base_url: str
    state_dir: Path

    def ask(self, tag: str, request: dict[str, Any]) -> None:
        body = {k: v for k, v in request.items() if k != "stream"} | {"user": tag}
        sent = urllib.request.Request(
            f"{self.base_url}/v1/chat/completions",
            data=orjson.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": "Bearer user-key"},
        )
        with urllib.request.urlopen(sent, timeout=10) as response:
            assert response.status == 200

    def stream(self, key: str) -> list[bytes]:
        client = redis.Redis(unix_socket_path=str(self.state_dir / "redis.sock"))
        try:
            entries: Any = client.xrange(key)
            return [fields[b"data"] for _, fields in entries]
        finally:
            client.close()

    def scores(self, count: int, timeout_s: float) -> list[ScoreRecord]:
        deadline = time.monotonic() + timeout_s
        while len(found := self.stream("shadowgate:scores")) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} pairs scored"
            time.sleep(0.2)
        return [ScoreRecord.model_validate_json(data) for data in found]


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    cases = held_out_cases()
    script = tmp_path / "script.json"
    script.write_bytes(orjson.dumps(cases))
    ports = {name: free_port() for name in ("production", "candidate", "gateway", "control")}
    children: list[Child] = []
    try:
        for side in ("production", "candidate"):
            command = [sys.executable, "-m", "tests.scripted_upstream", "--script", str(script),
                       "--side", side, "--port", str(ports[side])]  # fmt: skip
            children.append(Child(side, command, log_path=tmp_path / f"{side}.log", env={}))
        for child, side in zip(children, ("production", "candidate"), strict=True):
            child.wait_ready(f"http://127.0.0.1:{ports[side]}/healthz")
        config = {
            "listen": {"host": "127.0.0.1", "port": ports["gateway"]},
            "control": {"host": "127.0.0.1", "port": ports["control"]},
            "upstreams": {
                "production": {"url": f"http://127.0.0.1:{ports['production']}"},
                "candidate": {"url": f"http://127.0.0.1:{ports['candidate']}", "api_key": "c"},
            },
            "traffic": {"shadow_percent": 100, "canary_percent": 0},
            "shadow": {"noise_percent": 100},
            "state_dir": str(tmp_path / "state"),
        }
        config_path = tmp_path / "gateway.yaml"
        config_path.write_text(yaml.safe_dump(config))
        gateway = Child("gateway", shadowgate_command("serve", "--config", str(config_path)),
                        log_path=tmp_path / "gateway.log", env={})  # fmt: skip
        children.append(gateway)
        gateway.wait_ready(f"http://127.0.0.1:{ports['control']}/readyz", timeout_s=30)
        yield Pipeline(f"http://127.0.0.1:{ports['gateway']}", tmp_path / "state")
    finally:
        for child in reversed(children):
            child.stop()


def test_every_regression_is_queued_for_review_and_no_acceptable_change_is(
    pipeline: Pipeline,
) -> None:
    cases = held_out_cases()
    assert {c["kind"] for c in cases.values()} == {*REGRESSIONS, *ACCEPTABLE}
    for tag, case in cases.items():
        pipeline.ask(tag, case["request"])

    scores = pipeline.scores(len(cases), timeout_s=40)
    queued = {
        ReviewItem.from_json(data).pair.request["user"]
        for data in pipeline.stream("shadowgate:review")
    }
    regressions = {tag for tag, case in cases.items() if case["label"] == "regression"}
    why = {s.pair_id: (s.excess, s.reasons, [e.message for e in s.counted_evidence])
           for s in scores}  # fmt: skip
    assert queued == regressions, (
        f"missed: {sorted(regressions - queued)}; "
        f"queued acceptable: {sorted(queued - regressions)}; scores: {why}"
    )
