"""The LLM judge in the real scoring worker: the embedded Redis, the ONNX model and the
simulator's judge profile over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession

from gateway.config import Config, RedisConfig, parse_config
from gateway.records import Exchange, JudgeVerdict, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from gateway.sim.simulator import PROFILES, SimProfile, start
from scoring.aggregates import load_snapshot, metric_families
from scoring.embedder import Embedder
from scoring.llm_judge.stage import JudgeStage, open_judge
from scoring.worker import ScoringWorker
from tests.conftest import RigFactory
from tests.test_review import TOKEN, claim
from tests.test_review_evidence import enqueue_items

PREFIX = "shadowgate:"
DOSE = "Adults can take 500 mg to 1 g every 4 to 6 hours, at most 4 g a day."
SAME = "Paris is the capital of France."


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(config({"enabled": False}).scoring)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect(RedisConfig(), redis_url)
    yield client
    await client.aclose()


@asynccontextmanager
async def judge_server(profile: SimProfile) -> AsyncIterator[str]:
    """A simulator playing `profile`; yields its base URL as the openai client takes it."""
    runner, port = await start(profile)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def config(judge: dict[str, Any], **scoring: Any) -> Config:
    return parse_config(
        {
            "upstreams": {"production": {"url": "http://127.0.0.1:1"}},
            "scoring": {
                "batch_size": 16,
                "max_wait_ms": 20,
                "threads": 1,
                "claim_idle_ms": 60_000,
                "judge": judge,
                **scoring,
            },
        },
        env={"JUDGE_KEY": "judge-secret"},
    )


def judge_config(url: str, **overrides: Any) -> dict[str, Any]:
    return {"enabled": True, "url": url, "model": "judge-model", "api_key": "${JUDGE_KEY}",
            "timeout_s": 10, "usd_per_day": None, **overrides}  # fmt: skip


def exchange_pair(pair_id: str, production: str, candidate: str) -> PairRecord:
    return PairRecord(
        id=pair_id, ts=0.0, route="/v1/chat/completions",
        request={"messages": [{"role": "user", "content": "How much paracetamol can I take?"}]},
        production=Exchange(status=200, text=production),
        candidate=Exchange(status=200, text=candidate),
    )  # fmt: skip


def dose_pairs(n: int) -> list[PairRecord]:
    """Pairs whose candidate changed a dose: flagged by the signals, regressions to the judge."""
    return [
        exchange_pair(f"dose-{i}", DOSE, DOSE.replace("500 mg", f"{5 + i} g")) for i in range(n)
    ]


async def publish(redis: Any, records: list[PairRecord]) -> None:
    for record in records:
        await redis.xadd(PREFIX + "pairs", {"data": record.to_json()})


async def scores(redis: Any) -> dict[str, ScoreRecord]:
    entries = await redis.xrange(PREFIX + "scores")
    records = (ScoreRecord.model_validate_json(f[b"data"]) for _, f in entries)
    return {s.pair_id: s for s in records}


async def review_items(redis: Any) -> dict[str, ReviewItem]:
    entries = await redis.xrange(PREFIX + "review")
    return {i.pair.id: i for i in (ReviewItem.from_json(f[b"data"]) for _, f in entries)}


async def score_all(cfg: Config, redis: Any, embedder: Embedder, records: list[PairRecord]) -> None:
    """Publish `records` and run a real worker with the configured judge until all are written."""
    async with open_judge(cfg, redis) as judge:
        worker = ScoringWorker(config=cfg, redis=redis, embedder=embedder, consumer="w1",
                               judge=judge)  # fmt: skip
        await worker.ensure_groups()
        await publish(redis, records)
        while batch := await worker.next_batch(block_ms=50):
            await worker.process(batch)
    # Leaving `open_judge` waited for the batches still with the judge.


def counter(snapshot: dict[str, float], family: str, label: str) -> float:
    for metric in metric_families(snapshot, review_depth=None):
        if metric.name == family:
            return sum(s.value for s in metric.samples if label in s.labels.values())
    raise AssertionError(f"no metric family {family}")


async def test_the_worker_stores_the_judges_verdict_with_the_score_and_the_review_item(
    redis: Any, embedder: Embedder
) -> None:
    async with judge_server(PROFILES["judge"]) as url:
        cfg = config(judge_config(url))
        await score_all(cfg, redis, embedder, [*dose_pairs(1), exchange_pair("same", SAME, SAME)])
        async with ClientSession() as session:
            seen = await (await session.get(url.removesuffix("/v1") + "/_sim/stats")).json()
    by_id = await scores(redis)
    verdict = by_id["dose-0"].judge
    assert verdict is not None and verdict.label == "regression"
    assert verdict.reason and "0.5g" in verdict.reason
    assert (verdict.model, verdict.skipped) == ("judge-model", None)
    assert by_id["same"].judge is not None and by_id["same"].judge.skipped == "not_selected"
    item = (await review_items(redis))["dose-0"]
    assert item.score.judge == verdict
    # One call, for the flagged pair only, with the key the config read from the environment.
    assert seen["requests"] == 1
    request = seen["last"][0]
    assert request["headers"]["Authorization"] == "Bearer judge-secret"
    body = orjson.loads(request["body"])
    assert body["model"] == "judge-model" and body["response_format"] == {"type": "json_object"}
    snapshot = await load_snapshot(redis, PREFIX + "aggregates")
    assert counter(snapshot, "shadowgate_judge_verdicts", "regression") == 1
    assert counter(snapshot, "shadowgate_judge_skipped", "not_selected") == 1


async def test_a_regression_only_the_judge_saw_is_queued_for_review(
    redis: Any, embedder: Embedder
) -> None:
    async with judge_server(PROFILES["judge"]) as url:
        # Signals off and every pair sent to the judge: only the judge can queue the dose.
        cfg = config(judge_config(url, select={"flagged": False, "excess_above": 0.0}),
                     detection={"enabled": False})  # fmt: skip
        await score_all(cfg, redis, embedder, dose_pairs(1))
    item = (await review_items(redis))["dose-0"]
    assert item.score.reasons == ["judge:regression"]
    assert item.score.judge is not None and item.score.judge.label == "regression"
    assert item.priority >= 5


async def wait_out_the_minute(margin_s: float = 5.0) -> None:
    """Start a rate-limited test at the start of a calendar minute, not across two."""
    into = time.time() % 60
    if into > 60 - margin_s:
        await asyncio.sleep(60 - into + 0.1)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"calls_per_minute": 1}, "budget_rate"),
        # $1 per token: the first call spends the day's budget; one call at a time, so the
        # next ones are asked only after its cost was counted.
        ({"usd_per_day": 0.5, "max_concurrency": 1,
          "price": {"input_per_1m": 1e6, "output_per_1m": 1e6}}, "budget_usd"),
    ],
    ids=["calls_per_minute", "usd_per_day"],
)  # fmt: skip
async def test_calls_over_budget_are_skipped_and_counted(
    redis: Any, embedder: Embedder, limits: dict[str, Any], reason: str
) -> None:
    await wait_out_the_minute()
    async with judge_server(PROFILES["judge"]) as url:
        await score_all(config(judge_config(url, **limits)), redis, embedder, dose_pairs(4))
    verdicts = [s.judge for s in (await scores(redis)).values()]
    assert sorted(str(v.label or v.skipped) for v in verdicts if v) == [reason] * 3 + ["regression"]
    snapshot = await load_snapshot(redis, PREFIX + "aggregates")
    assert counter(snapshot, "shadowgate_judge_skipped", reason) == 3
    assert counter(snapshot, "shadowgate_judge_verdicts", "regression") == 1
    if reason == "budget_usd":
        assert snapshot["judge:cost_usd"] > 0.5


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        (SimProfile(name="slow", model="judge-model", judge=True, first_token_ms=30_000),
         "timeout"),
        (SimProfile(name="broken", model="judge-model", judge=True, error_rate=1.0), "error"),
        (PROFILES["fast"], "unparseable"),  # a chat model that answers in prose
    ],
    ids=["timeout", "error", "unparseable"],
)  # fmt: skip
async def test_a_judge_that_fails_leaves_the_score_written_with_the_reason(
    redis: Any, embedder: Embedder, profile: SimProfile, reason: str
) -> None:
    async with judge_server(profile) as url:
        await score_all(config(judge_config(url, timeout_s=0.5)), redis, embedder, dose_pairs(2))
    by_id = await scores(redis)
    assert set(by_id) == {"dose-0", "dose-1"}
    assert all(s.judge is not None and s.judge.skipped == reason for s in by_id.values())
    assert all(s.queued for s in by_id.values())  # the signals' queueing stands
    assert (await redis.xpending(PREFIX + "pairs", "scorers"))["pending"] == 0
    snapshot = await load_snapshot(redis, PREFIX + "aggregates")
    assert counter(snapshot, "shadowgate_judge_skipped", reason) == 2


async def test_a_slow_judge_does_not_hold_up_the_next_batch(redis: Any, embedder: Embedder) -> None:
    slow = SimProfile(name="slow", model="judge-model", judge=True, first_token_ms=1500)
    async with judge_server(slow) as url:
        cfg = config(judge_config(url))
        async with open_judge(cfg, redis) as judge:
            assert isinstance(judge, JudgeStage)
            worker = ScoringWorker(config=cfg, redis=redis, embedder=embedder, consumer="w1",
                                   judge=judge)  # fmt: skip
            await worker.ensure_groups()
            await publish(redis, dose_pairs(1))
            await worker.process(await worker.next_batch(block_ms=50))
            await publish(redis, [exchange_pair("same", SAME, SAME)])
            await worker.process(await worker.next_batch(block_ms=50))
            # The second batch (nothing to judge) is written while the first waits for its judge.
            await until(lambda: redis.xlen(PREFIX + "scores"), 1)
            assert list(await scores(redis)) == ["same"]
        assert list(await scores(redis)) == ["same", "dose-0"]


async def until(read: Callable[[], Any], value: Any, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await read() != value:
        assert loop.time() < deadline, f"still not {value!r}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["standard", "blind"])
async def test_reviewers_see_the_judges_verdict_except_in_blind_mode(
    make_rig: RigFactory, mode: str
) -> None:
    rig = await make_rig(control={"reviewer_token": TOKEN}, review={"mode": mode})
    (pair,) = dose_pairs(1)
    verdict = JudgeVerdict(label="regression", reason="dose 500 mg -> 5 g", model="judge-model")
    score = ScoreRecord(pair_id=pair.id, ts=0.0, route=pair.route, queued=True, judge=verdict,
                        reasons=["judge:regression"])  # fmt: skip
    await enqueue_items(rig, [ReviewItem(pair=pair, score=score, priority=5.0)])
    status, item = await claim(rig, "ann")
    assert status == 200
    if mode == "standard":
        assert item["score"]["judge"] == verdict.model_dump(mode="json", exclude_none=True)
        page = await (await rig.control.get("/review/")).text()
        assert 'id="judge"' in page
    else:  # an unled choice: neither the verdict nor the reason it queued the pair
        assert "judge" not in orjson.dumps(item).decode()
