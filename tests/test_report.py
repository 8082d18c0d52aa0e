"""`shadowgate report`: gathered from a Redis seeded by real gateway traffic and by records in
the pairs, scores and verdicts streams; printed as a table, written as HTML with plots."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
import yaml

from gateway.constants import KEY_PAIRS, KEY_SCORES, KEY_VERDICTS, STREAM_FIELD
from gateway.keys import Keys
from gateway.proxy.prompt_features import FEATURES
from gateway.records import Exchange, PairRecord, ScoreRecord, Usage
from gateway.report.build import gather_report, histogram_quantile, read_stream
from gateway.report.cli import parse_duration
from gateway.report.model import FlagCounts, Report
from gateway.report.table import render_text
from scoring.heartbeat import Heartbeat
from tests.conftest import Rig, RigFactory

PRICES = {
    "production": {"*": {"input_per_1m": 1.0, "output_per_1m": 2.0}},
    "candidate": {"m": {"input_per_1m": 0.5, "output_per_1m": 1.0}},
}
SEMANTIC = [0.1, 0.15, 0.3, 0.4, 0.5, 0.6]


def _pair(i: int) -> PairRecord:
    failed = i in (3, 7)
    return PairRecord(
        id=f"p{i}", ts=time.time(), route="/v1/chat/completions", model="m",
        production=Exchange(status=200, text="a", latency_ms=80, ttfb_ms=20,
                            usage=Usage(prompt_tokens=100, completion_tokens=50)),
        candidate=Exchange(status=500 if i == 3 else None if failed else 200, text="b",
                           error="timeout" if i == 7 else None,
                           latency_ms=100 * (i + 1), ttfb_ms=50,
                           usage=None if failed else Usage(prompt_tokens=120,
                                                           completion_tokens=60)),
    )  # fmt: skip


def _score(i: int, semantic: float) -> ScoreRecord:
    return ScoreRecord(
        pair_id=f"p{i}", ts=time.time(), route="/v1/chat/completions", semantic=semantic,
        noise=[0.05, 0.07][i] if i < 2 else None, noise_floor=0.05, excess=semantic - 0.05,
        queued=semantic - 0.05 > 0.15, candidate_flags=["refusal"] if i in (0, 1) else [],
        production_flags=["refusal"] if i == 0 else [],
    )  # fmt: skip


async def seed(rig: Rig, redis_url: str) -> dict[str, int]:
    """Gateway traffic through a started rollout (canary at 50%), then stream records; one
    record per stream lies before the window and must be left out."""
    prefix = rig.gateway.config.redis.key_prefix
    rig.candidate.fail_every = 4
    await rig.gateway.rollout.start([50, 100])
    sent = {"production": 0, "canary": 0, "canary_errors": 0}
    for i in range(40):
        body = {"model": "m", "user": f"user-{i}", "max_tokens": 300,
                "messages": [{"role": "user", "content": "Where is my parcel?"}]}  # fmt: skip
        resp = await rig.client.post("/v1/chat/completions", data=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        await resp.read()
        arm = resp.headers["x-shadowgate-arm"]
        sent[arm] += 1
        if resp.status >= 500:
            sent[f"{arm}_errors"] += 1
    await rig.gateway.arm_stats.flush()
    client = aioredis.Redis.from_url(redis_url)
    old = f"{int((time.time() - 7200) * 1000)}-0"
    records: dict[str, list[bytes]] = {
        KEY_PAIRS: [_pair(i).to_json() for i in range(10)],
        KEY_SCORES: [_score(i, s).to_json() for i, s in enumerate(SEMANTIC)],
        KEY_VERDICTS: [orjson.dumps({"label": label, "route": "/v1/chat/completions"})
                       for label in ["regression"] * 2 + ["acceptable"] * 3],
    }  # fmt: skip
    for name, payloads in records.items():
        await client.xadd(prefix + name, {STREAM_FIELD: payloads[0]}, id=old)
        for payload in payloads:
            await client.xadd(prefix + name, {STREAM_FIELD: payload})
    await client.aclose()
    return sent


async def gather(rig: Rig, **kwargs: Any) -> Report:
    now = time.time()
    return await gather_report(
        rig.gateway.redis, config=rig.gateway.config, since=now - 900, until=now, **kwargs
    )


async def test_report_gathers_every_arm_from_redis(make_rig: RigFactory, redis_url: str) -> None:
    rig = await make_rig(upstreams={name: {"prices": prices} for name, prices in PRICES.items()})
    sent = await seed(rig, redis_url)
    report = await gather(rig)
    production, canary, shadow = report.arms
    assert (production.arm, canary.arm, shadow.arm) == ("production", "canary", "shadow")
    assert (production.requests, canary.requests) == (sent["production"], sent["canary"])
    assert sent["canary_errors"] and canary.errors == sent["canary_errors"]
    assert production.errors == 0
    assert canary.error_interval is not None
    assert canary.error_interval[0] < canary.errors / canary.requests < canary.error_interval[1]
    assert production.latency_s.p50 is not None and production.ttfb_s.p99 is not None
    assert sum(canary.latency_buckets) == canary.requests
    # The shadow arm is the candidate's side of the mirrored pairs in the window.
    assert (shadow.requests, shadow.errors) == (10, 2)
    assert shadow.latency_s.p50 == pytest.approx(0.55)
    assert shadow.ttfb_s.p95 == pytest.approx(0.05)
    assert (production.usage_samples, shadow.usage_samples) == (10, 8)
    assert (production.prompt_tokens, production.completion_tokens) == (100, 50)
    assert production.cost_usd == pytest.approx((100 * 1.0 + 50 * 2.0) / 1e6)
    assert shadow.cost_usd == pytest.approx((120 * 0.5 + 60 * 1.0) / 1e6)
    assert canary.usage_samples == 0 and canary.cost_usd is None
    d = report.divergence
    assert (d.scored, d.queued, len(d.noise), d.threshold) == (6, 4, 2, 0.15)
    assert d.semantic == SEMANTIC
    assert d.flags == {"refusal": FlagCounts(candidate=2, production=1, new=1)}
    assert report.verdicts == {"acceptable": 3, "regression": 2}
    assert [row.feature for row in report.drift] == list(FEATURES)
    assert report.drift_samples["canary"] + report.drift_samples["production"] == 40
    assert all(row.canary_vs_production == pytest.approx(0.0) for row in report.drift)
    assert sum(c["production:requests"] + c["canary:requests"] for _, c in report.timeline) == 40
    assert report.rollout is not None and report.rollout.percent == 50.0
    assert report.capped == []

    text = render_text(report)
    assert "rollout: running at 50% (step 1 of 2, look 1)" in text
    for row in ("production", "canary", "shadow", "excess over the floor", "refusal",
                "regression", "max_tokens"):  # fmt: skip
        assert f"\n  {row} " in text, row
    shadow_row = next(line for line in text.splitlines() if line.startswith("  shadow "))
    assert "10" in shadow_row and "20.0% (" in shadow_row


async def test_max_records_keeps_the_newest_and_says_so(make_rig: RigFactory) -> None:
    rig = await make_rig()
    key = rig.gateway.config.redis.key_prefix + KEY_SCORES
    await rig.gateway.redis.xadd(key, {STREAM_FIELD: b"not a score"})
    for i in range(24):
        await rig.gateway.redis.xadd(key, {STREAM_FIELD: _score(i, 0.1).to_json()})
    now = time.time()
    payloads, more = await read_stream(rig.gateway.redis, key, now - 60, now + 1, limit=10)
    assert more
    assert [orjson.loads(p)["pair_id"] for p in payloads] == [f"p{i}" for i in range(14, 24)]
    payloads, more = await read_stream(rig.gateway.redis, key, now - 60, now + 1, limit=25)
    assert (len(payloads), more) == (25, False)
    capped = await gather(rig, max_records=10)
    assert (capped.capped, capped.divergence.scored, capped.unreadable) == ([KEY_SCORES], 10, {})
    whole = await gather(rig)
    assert (whole.capped, whole.divergence.scored, whole.unreadable) == ([], 24, {KEY_SCORES: 1})
    assert "records that did not parse, left out: scores 1" in render_text(whole)


def test_quantiles_are_interpolated_inside_histogram_buckets() -> None:
    # 0.1-0.25 s holds 50 requests, 0.25-0.5 s the other 50 (bucket indices 5 and 6).
    counts = [0] * 15
    counts[5], counts[6] = 50, 50
    assert histogram_quantile(counts, 0.5) == pytest.approx(0.25)
    assert histogram_quantile(counts, 0.25) == pytest.approx(0.175)
    assert histogram_quantile(counts, 0.99) == pytest.approx(0.25 + 0.25 * 49 / 50)
    counts[14] = 100
    assert histogram_quantile(counts, 0.99) == float("inf")
    assert histogram_quantile([0] * 15, 0.5) is None


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("2d", 172_800),
                                               ("90s", 90), ("1.5h", 5400)])  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


async def _cli(*args: str) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "report", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_report_cli_prints_the_table_and_writes_html_with_plots(
    make_rig: RigFactory, redis_url: str, tmp_path: Path
) -> None:
    rig = await make_rig(upstreams={name: {"prices": prices} for name, prices in PRICES.items()})
    await seed(rig, redis_url)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "upstreams": {"production": {"url": "http://127.0.0.1:9"},
                      "candidate": {"url": "http://127.0.0.1:9", "prices": PRICES["candidate"]}},
        "redis": {"url": redis_url, "key_prefix": rig.gateway.config.redis.key_prefix},
    }))  # fmt: skip
    out_html = tmp_path / "report.html"
    code, out, err = await _cli("--config", str(config), "--since", "15m", "--html", str(out_html))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("shadowgate report: ")
    for title in ("requests", "latency", "tokens and cost per request",
                  "divergence of 6 scored pairs", "reviewer verdicts (5)",
                  "input drift (PSI of prompt features)"):  # fmt: skip
        assert title in lines, title
    assert any(line.startswith("  shadow ") and " 10 " in line for line in lines)
    assert lines[-1] == f"wrote {out_html}"
    html = out_html.read_text()
    assert html.startswith("<!doctype html>")
    assert html.count('src="data:image/png;base64,') >= 5
    assert "<td>regression</td>" in html

    code, _, err = await _cli("--config", str(config), "--since", "1y")
    assert code == 2
    assert err.strip().splitlines() == [
        "shadowgate: config error: --since: expected a duration such as 15m, 1h or 2d, got '1y'"
    ]


async def test_report_says_how_many_scoring_workers_are_alive(make_rig: RigFactory) -> None:
    rig = await make_rig()
    assert "scoring workers alive now: 0" in render_text(await gather(rig))
    heartbeat = Heartbeat(
        redis=rig.gateway.redis, keys=Keys.for_prefix(rig.gateway.config.redis.key_prefix),
        name="w1", interval_s=60,
    )  # fmt: skip
    await heartbeat.beat(scored=0)
    report = await gather(rig)
    assert report.workers_alive == 1
    assert "scoring workers alive now: 1" in render_text(report)
