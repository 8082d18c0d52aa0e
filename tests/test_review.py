"""The review API: leases, priorities, verdicts, conflicts, and nothing lost on restart."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from gateway.config import RedisConfig
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from tests.conftest import Rig, RigFactory

TOKEN = "reviewer-secret"


def as_reviewer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "x-reviewer": name}


async def review_rig(make_rig: RigFactory, lease_s: float = 600) -> Rig:
    return await make_rig(
        control={"reviewer_token": TOKEN, "reviewer_tokens": {"carol": "carol-token"}},
        review={"lease_s": lease_s},
    )


async def enqueue(
    rig: Rig,
    priorities: list[float],
    route: str = "/v1/chat/completions",
    flags: list[str] | None = None,
    models: tuple[str, str] | None = None,
) -> None:
    """Queue one item per priority; `models`: production's and the candidate's model names."""
    client = connect(RedisConfig(), rig.gateway.redis_url)
    key = rig.gateway.config.redis.key_prefix + "review"
    model, candidate_model = models or (None, None)
    for n, priority in enumerate(priorities):
        pair = PairRecord(
            id=f"pair-{route}-{n}", ts=0.0, route=route, model=model,
            candidate_model=candidate_model,
            production=Exchange(status=200, text="Paris."),
            candidate=Exchange(status=200, text="Lyon."),
        )  # fmt: skip
        score = ScoreRecord(
            pair_id=pair.id, ts=0.0, route=route, excess=priority, queued=True,
            candidate_flags=flags or [],
        )  # fmt: skip
        item = ReviewItem(pair=pair, score=score, priority=priority)
        await client.xadd(key, {"data": item.to_json()})
    await client.aclose()


async def claim(rig: Rig, reviewer: str) -> tuple[int, dict[str, Any]]:
    resp = await rig.control.post("/review/claim", headers=as_reviewer(reviewer))
    body = orjson.loads(await resp.read()) if resp.status == 200 else {}
    return resp.status, body


async def judge(rig: Rig, reviewer: str, item_id: str, label: str = "regression") -> Any:
    return await rig.control.post(
        f"/review/{item_id}/verdict", json={"label": label, "tags": ["t"]},
        headers=as_reviewer(reviewer),
    )  # fmt: skip


async def test_claims_come_in_priority_order_then_the_queue_is_empty(
    make_rig: RigFactory,
) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [0.2, 10.5, 0.9])
    order = [(await claim(rig, "ann"))[1]["score"]["excess"] for _ in range(3)]
    assert order == [10.5, 0.9, 0.2]
    status, _ = await claim(rig, "ann")
    assert status == 204


async def test_claimed_item_has_the_pair_scores_and_lease(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0])
    status, item = await claim(rig, "ann")
    assert status == 200
    assert item["id"]
    assert item["pair"]["candidate"]["text"] == "Lyon."
    assert item["score"]["queued"] is True
    assert item["lease_expires_at"] > 0


async def test_two_reviewers_racing_never_hold_the_same_item(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [float(n) for n in range(20)])
    results = await asyncio.gather(*(claim(rig, f"r{n % 2}") for n in range(30)))
    ids = [body["id"] for status, body in results if status == 200]
    assert len(ids) == 20
    assert len(set(ids)) == 20
    assert sum(status == 204 for status, _ in results) == 10


async def test_verdict_is_stored_once_and_stats_follow(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0, 2.0])
    _, item = await claim(rig, "ann")
    resp = await judge(rig, "ann", item["id"])
    assert resp.status == 200
    assert orjson.loads(await resp.read())["label"] == "regression"
    again = await judge(rig, "ann", item["id"])
    assert again.status == 409
    assert "already has a verdict" in await again.text()
    stats = orjson.loads(
        await (await rig.control.get("/review/stats", headers=as_reviewer("a"))).read()
    )
    assert stats["done"] == 1
    assert stats["queued"] == 1
    assert stats["verdicts"] == {"regression": 1}
    assert stats["verdicts_by_route"] == {"/v1/chat/completions": {"regression": 1}}
    assert stats["median_seconds_to_verdict"] is not None


async def test_verdict_on_an_item_someone_else_holds_is_refused(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    resp = await judge(rig, "bob", item["id"])
    assert resp.status == 409
    assert "do not hold" in await resp.text()


async def test_expired_lease_returns_the_item_and_refuses_the_late_verdict(
    make_rig: RigFactory,
) -> None:
    rig = await review_rig(make_rig, lease_s=0.3)
    await enqueue(rig, [1.0])
    _, first = await claim(rig, "ann")
    assert (await claim(rig, "bob"))[0] == 204
    await asyncio.sleep(0.5)
    late = await judge(rig, "ann", first["id"])
    assert late.status == 409
    assert "expired" in await late.text()
    status, second = await claim(rig, "bob")
    assert status == 200
    assert second["id"] == first["id"]
    assert (await judge(rig, "ann", first["id"])).status == 409
    assert (await judge(rig, "bob", first["id"])).status == 200


async def test_release_gives_the_item_back(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    resp = await rig.control.post(f"/review/{item['id']}/release", headers=as_reviewer("bob"))
    assert resp.status == 409
    resp = await rig.control.post(f"/review/{item['id']}/release", headers=as_reviewer("ann"))
    assert resp.status == 200
    status, again = await claim(rig, "bob")
    assert (status, again["id"]) == (200, item["id"])


async def test_items_survive_a_gateway_restart(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig, lease_s=0.3)
    await enqueue(rig, [1.0, 2.0])
    _, held = await claim(rig, "ann")
    prefix = rig.gateway.config.redis.key_prefix
    restarted = await make_rig(
        control={"reviewer_token": TOKEN}, review={"lease_s": 0.3}, redis={"key_prefix": prefix}
    )
    await asyncio.sleep(0.5)
    ids = {(await claim(restarted, "bob"))[1]["id"] for _ in range(2)}
    assert held["id"] in ids
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong", "x-reviewer": "x"}, 403),
        ({"Authorization": f"Bearer {TOKEN}"}, 400),
        ({"Authorization": "Bearer admin-secret", "x-reviewer": "x"}, 403),
    ],
)
async def test_reviewer_identity_is_required(
    make_rig: RigFactory, headers: dict[str, str], status: int
) -> None:
    rig = await review_rig(make_rig)
    resp = await rig.control.post("/review/claim", headers=headers)
    assert resp.status == status


async def test_a_personal_token_names_the_reviewer(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0])
    resp = await rig.control.post("/review/claim", headers={"Authorization": "Bearer carol-token"})
    item = orjson.loads(await resp.read())
    resp = await rig.control.post(
        f"/review/{item['id']}/verdict", json={"label": "improvement"},
        headers={"Authorization": "Bearer carol-token"},
    )  # fmt: skip
    assert orjson.loads(await resp.read())["reviewer"] == "carol"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"label": "great"}, "label: must be one of regression, acceptable, improvement"),
        ({"label": "acceptable", "extra": 1}, "extra"),
        ({}, "label"),
    ],
)
async def test_bad_verdicts_are_a_400(
    make_rig: RigFactory, body: dict[str, Any], message: str
) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    resp = await rig.control.post(
        f"/review/{item['id']}/verdict", json=body, headers=as_reviewer("ann")
    )
    assert resp.status == 400
    assert message in await resp.text()


async def test_claims_can_be_filtered_by_route_or_flag(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [5.0, 4.0], route="/v1/chat/completions")
    await enqueue(rig, [1.0], route="/v1/completions", flags=["refusal"])
    resp = await rig.control.post("/review/claim?route=/v1/completions", headers=as_reviewer("a"))
    assert orjson.loads(await resp.read())["pair"]["route"] == "/v1/completions"
    resp = await rig.control.post("/review/claim?flag=refusal", headers=as_reviewer("a"))
    assert resp.status == 204
    resp = await rig.control.post("/review/claim?route=/v1/responses", headers=as_reviewer("a"))
    assert resp.status == 204
    _, item = await claim(rig, "a")
    assert item["pair"]["route"] == "/v1/chat/completions"
    assert item["score"]["excess"] == 5.0
    resp = await rig.control.post("/review/claim?route=x&flag=y", headers=as_reviewer("a"))
    assert resp.status == 400


async def test_an_entry_read_but_never_queued_is_recovered(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig, lease_s=0.3)
    await enqueue(rig, [1.0])
    client = connect(RedisConfig(), rig.gateway.redis_url)
    key = rig.gateway.config.redis.key_prefix + "review"
    # The intake consumer read it and stopped before queueing it.
    await client.xreadgroup("reviewers", "intake", {key: ">"})
    await client.aclose()
    assert (await claim(rig, "ann"))[0] == 204
    await asyncio.sleep(0.5)
    status, item = await claim(rig, "ann")
    assert status == 200
    assert item["pair"]["candidate"]["text"] == "Lyon."
