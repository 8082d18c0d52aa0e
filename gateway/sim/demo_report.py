"""What `shadowgate demo` prints after the burst: the gateway's own counters (from its
`/metrics`), the pairs, scores and review items it stored in Redis, and the `shadowgate
report` table of the run."""

from __future__ import annotations

import math
import time
import urllib.request
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

import redis
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import RedisConfig, load_config
from gateway.keys import Keys
from gateway.records import ReviewItem, ScoreRecord, pairs_from_entries
from gateway.redis_client import configured_url
from gateway.report.cli import load_report
from gateway.report.table import render_text

# The demo's gateway runs on the default key prefix (its config does not set one).
_KEYS = Keys.for_prefix(RedisConfig().key_prefix)


def _metrics(control_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{control_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _sum(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str
) -> dict[str, float]:
    """Values of `name` keyed by the one label not fixed by `match`."""
    out: dict[str, float] = {}
    for (sample_name, labels), value in samples.items():
        if sample_name != name:
            continue
        label_map = dict(labels)
        if any(label_map.get(k) != v for k, v in match.items()):
            continue
        key = ",".join(f"{k}={v}" for k, v in labels if k not in match) or "total"
        out[key] = out.get(key, 0.0) + value
    return out


def wait_for_mirrors(control_url: str, timeout_s: float = 30.0) -> None:
    """Until no mirror is in flight and the publish buffer is empty, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = _metrics(control_url)
        if samples.get(("shadowgate_shadow_in_flight", ()), 0) == 0:
            buffer = samples.get(("shadowgate_publish_buffer", ()), 0)
            if buffer == 0:
                return
        time.sleep(0.2)


def print_report(
    control_url: str, redis_socket: Path, outcomes: Counter[str], elapsed_s: float
) -> tuple[int, int, int]:
    """Print what the gateway saw and stored; returns (pairs captured, scored, queued)."""
    samples = _metrics(control_url)
    client = redis.Redis(unix_socket_path=str(redis_socket))
    entries = client.xrange(_KEYS.pairs)
    client.close()
    pairs = pairs_from_entries(entries)
    print()
    print("shadowgate demo report")
    print("=" * 60)
    sent = sum(v for k, v in outcomes.items() if not k.startswith("served by"))
    print(f"prompts sent through the openai client: {sent} in {elapsed_s:.1f} s")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome:<28} {count}")
    print("requests by arm and status:")
    for key, value in sorted(_sum(samples, "shadowgate_requests_total").items()):
        print(f"  {key:<28} {int(value)}")
    print("shadow outcomes:")
    for key, value in sorted(_sum(samples, "shadowgate_shadow_total").items()):
        print(f"  {key:<28} {int(value)}")
    for key, value in sorted(_sum(samples, "shadowgate_shadow_skipped_total").items()):
        print(f"  skipped {key:<20} {int(value)}")
    print(f"pairs captured in Redis: {len(pairs)}")
    with_noise = sum(1 for p in pairs if p.noise is not None)
    print(f"  with a production noise sample: {with_noise}")
    pii: Counter[str] = Counter()
    for pair in pairs:
        pii.update(pair.pii)
    if pii:
        print(
            "PII replaced in mirrored data: "
            + ", ".join(f"{k} {v}" for k, v in sorted(pii.items()))
        )
    sample = next((p for p in pairs if p.pii), pairs[0] if pairs else None)
    if sample is not None:
        print("a sample pair (as stored, scrubbed):")
        prompt = (
            sample.request.get("messages", [{}])[-1].get("content")
            if isinstance(sample.request, dict)
            else None
        )
        print(f"  prompt:     {prompt}")
        print(f"  production: {(sample.production.text or '')[:160]!r}")
        print(f"  candidate:  {(sample.candidate.text or '')[:160]!r}")
    scored, queued = _report_scores(redis_socket, control_url, len(pairs))
    print("=" * 60)
    return len(pairs), scored, queued


def _wait_for_scores(
    client: redis.Redis, control_url: str, expected: int, *, stall_s: float = 60.0
) -> None:
    """Wait while scoring makes progress: give up after `stall_s` without any, or once the
    gateway had to restart its worker since the last (one that cannot start would keep the
    demo waiting for nothing)."""
    restarts_key = ("shadowgate_child_restarts_total", (("component", "worker"),))
    done, progress_at, restarts_then = 0, time.monotonic(), 0.0
    while (n := client.xlen(_KEYS.scores)) < expected:
        restarts = _metrics(control_url).get(restarts_key, 0.0)
        now = time.monotonic()
        if n > done:
            done, progress_at, restarts_then = n, now, restarts
        if now - progress_at > stall_s or restarts > restarts_then:
            return
        time.sleep(0.2)


def _report_scores(redis_socket: Path, control_url: str, expected: int) -> tuple[int, int]:
    """What the scoring worker made of the pairs: divergence, flags, the review queue;
    returns (scored, queued)."""
    client = redis.Redis(unix_socket_path=str(redis_socket))
    _wait_for_scores(client, control_url, expected)
    entries: Any = client.xrange(_KEYS.scores)
    review: Any = client.xrange(_KEYS.review)
    client.close()
    scores = [ScoreRecord.model_validate_json(fields[b"data"]) for _, fields in entries]
    items = [ReviewItem.from_json(fields[b"data"]) for _, fields in review]
    print(f"scored {len(scores)} of {expected} captured pairs (the embedded scoring worker)")
    excess = sorted(s.excess for s in scores if s.excess is not None)
    if excess:
        print(
            f"  excess divergence over the noise floor: median {median(excess):.3f}, "
            f"p90 {excess[int(0.9 * (len(excess) - 1))]:.3f}"
        )
    judged = Counter(s.judge.label or f"skipped {s.judge.skipped}" for s in scores if s.judge)
    if judged:
        print("  LLM judge (simulated): " + ", ".join(f"{k} {v}" for k, v in judged.most_common()))
    flags: Counter[str] = Counter(f for s in scores for f in s.new_flags)
    if flags:
        print("  candidate-only flags: " + ", ".join(f"{k} {v}" for k, v in flags.most_common()))
    routes: Counter[str] = Counter()
    for item in items:
        content = ""
        if isinstance(item.pair.request, dict):
            content = str(item.pair.request.get("messages", [{}])[-1].get("content", ""))
        routes["billing/refund prompts" if _on_weak_topic(content) else "other prompts"] += 1
    print(f"queued for review: {len(items)} ({', '.join(f'{k} {v}' for k, v in routes.items())})")
    top = max(items, key=lambda i: i.priority, default=None)
    if top is not None:
        print(f"  first in line: {', '.join(top.score.reasons)}")
        if top.score.judge and top.score.judge.label:
            print(f"    judge: {top.score.judge.label} - {top.score.judge.reason}")
        print(f"    production: {(top.pair.production.text or '')[:120]!r}")
        print(f"    candidate:  {(top.pair.candidate.text or '')[:120]!r}")
    return len(scores), len(items)


def print_rollout_report(config_path: Path, since_s: float) -> None:
    """What `shadowgate report` prints for the demo's window."""
    config = load_config(config_path)
    report = uvloop.run(
        load_report(config, configured_url(config), since_s=since_s, max_records=10_000)
    )
    print()
    print(f"shadowgate report --config {config_path} --since {math.ceil(since_s / 60)}m")
    print(render_text(report), end="")
    print("=" * 60)


def _on_weak_topic(prompt: str) -> bool:
    lowered = prompt.lower()
    return "refund" in lowered or "billing" in lowered
