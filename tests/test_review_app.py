"""The review API stands on its own: a Redis client and the config are all it needs, without
upstreams, a data plane or the gateway's other resources."""

from __future__ import annotations

import subprocess
import sys

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from gateway.apps import build_review_app
from gateway.config import Config, RedisConfig, parse_config
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect

REVIEWER = {"Authorization": "Bearer reviewer-secret", "x-reviewer": "ann"}


def review_config() -> Config:
    # Nothing listens on the discard port: the review API must never need an upstream.
    return parse_config(
        {
            "upstreams": {"production": {"url": "http://127.0.0.1:9"}},
            "control": {"reviewer_token": "reviewer-secret"},
            "redis": {"key_prefix": "alone:"},
        },
        env={},
    )


async def queue_one(redis: Redis, config: Config) -> None:
    pair = PairRecord(
        id="pair-1",
        ts=0.0,
        route="/v1/chat/completions",
        production=Exchange(status=200, text="Paris."),
        candidate=Exchange(status=200, text="Lyon."),
    )
    score = ScoreRecord(pair_id=pair.id, ts=0.0, route=pair.route, excess=2.0, queued=True)
    item = ReviewItem(pair=pair, score=score, priority=2.0)
    await redis.xadd(config.redis.key_prefix + "review", {"data": item.to_json()})


async def test_review_api_serves_claims_and_verdicts_from_redis_and_config_alone(
    redis_url: str,
) -> None:
    config = review_config()
    async with connect(RedisConfig(), redis_url) as redis:
        await queue_one(redis, config)
        await serve_one_review(build_review_app(config=config, redis=redis))
        # The caller's client stays open for the caller to close.
        assert await redis.ping()


async def serve_one_review(app: web.Application) -> None:
    """Claim the one queued item, judge it, and find the queue empty and the stats counted."""
    async with TestClient(TestServer(app)) as client:
        claimed = await client.post("/review/claim", headers=REVIEWER)
        assert claimed.status == 200
        item = orjson.loads(await claimed.read())
        assert item["pair"]["candidate"]["text"] == "Lyon."
        verdict = await client.post(
            f"/review/{item['id']}/verdict", json={"label": "regression"}, headers=REVIEWER
        )
        assert verdict.status == 200
        assert orjson.loads(await verdict.read())["final_label"] == "regression"
        assert (await client.post("/review/claim", headers=REVIEWER)).status == 204
        stats = orjson.loads(await (await client.get("/review/stats", headers=REVIEWER)).read())
        assert stats["verdicts"] == {"regression": 1}
        # The control plane's routes are not part of it.
        assert (await client.get("/readyz")).status == 404


def test_review_api_module_loads_without_the_data_plane_or_the_gateway() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, gateway.review.api; print(' '.join(sorted(sys.modules)))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    data_plane = ("gateway.proxy", "gateway.shadow", "gateway.scrub", "gateway.runtime")
    assert [name for name in loaded if name.startswith(data_plane)] == []
