"""Several reviewers per item: each item is offered until N different reviewers judged it,
nobody judges an item twice, leases are per reviewer, and the majority makes the final label
(the rollout's reviewer guardrail counts those)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson

from gateway.config import RedisConfig
from gateway.redis_client import connect
from gateway.review.agreement import LABELS, final_label
from tests.conftest import Rig, RigFactory
from tests.test_review import TOKEN, as_reviewer, claim, enqueue


async def multi_rig(make_rig: RigFactory, reviewers: int, **review: Any) -> Rig:
    return await make_rig(
        control={"reviewer_token": TOKEN},
        review={"reviewers_per_item": reviewers, **review},
    )


async def judge(rig: Rig, reviewer: str, item_id: str, label: str) -> tuple[int, dict[str, Any]]:
    resp = await rig.control.post(
        f"/review/{item_id}/verdict", json={"label": label}, headers=as_reviewer(reviewer)
    )
    return resp.status, orjson.loads(await resp.read())


async def stats(rig: Rig, reviewer: str = "admin") -> dict[str, Any]:
    resp = await rig.control.get("/review/stats", headers=as_reviewer(reviewer))
    result: dict[str, Any] = orjson.loads(await resp.read())
    return result


async def verdict_entries(rig: Rig) -> list[dict[bytes, bytes]]:
    client = connect(RedisConfig(), rig.gateway.redis_url)
    entries: Any = await client.xrange(rig.gateway.config.redis.key_prefix + "verdicts")
    await client.aclose()
    return [fields for _, fields in entries]


def index_of(item: dict[str, Any]) -> int:
    """The position the item was enqueued at (`enqueue` names pairs pair-<route>-<n>)."""
    return int(item["pair"]["id"].rsplit("-", 1)[1])


async def judge_all(rig: Rig, reviewer: str, labels: list[str], limit: int = 1000) -> None:
    """Claim until the queue is empty for `reviewer` (or `limit` items), judging item n
    with labels[n]."""
    for _ in range(limit):
        status, item = await claim(rig, reviewer)
        if status == 204:
            return
        assert (await judge(rig, reviewer, item["id"], labels[index_of(item)]))[0] == 200


async def test_two_reviewers_racing_each_get_every_item_once(make_rig: RigFactory) -> None:
    rig = await multi_rig(make_rig, 2)
    await enqueue(rig, [float(n) for n in range(10)])
    results = await asyncio.gather(*(claim(rig, f"r{n % 2}") for n in range(30)))
    held: dict[str, list[str]] = {"r0": [], "r1": []}
    for n, (status, body) in enumerate(results):
        if status == 200:
            held[f"r{n % 2}"].append(body["id"])
    assert len(held["r0"]) == len(held["r1"]) == 10
    assert set(held["r0"]) == set(held["r1"])
    assert len(set(held["r0"])) == 10
    assert sum(status == 204 for status, _ in results) == 10
    assert (await claim(rig, "r2"))[0] == 204  # every slot of every item is leased

    verdicts = await asyncio.gather(
        *(judge(rig, name, item_id, "acceptable") for name, ids in held.items() for item_id in ids)
    )
    assert [status for status, _ in verdicts] == [200] * 20
    assert sum(body["finished"] for _, body in verdicts) == 10
    assert (await claim(rig, "r0"))[0] == 204
    summary = await stats(rig)
    assert (summary["finished"], summary["done"], summary["queued"]) == (10, 20, 0)
    assert summary["final_labels"] == {"acceptable": 10}


async def test_a_reviewer_never_gets_an_item_twice(make_rig: RigFactory) -> None:
    rig = await multi_rig(make_rig, 2)
    await enqueue(rig, [2.0, 1.0])
    _, first = await claim(rig, "ann")
    _, second = await claim(rig, "ann")
    assert first["id"] != second["id"]
    assert (await claim(rig, "ann"))[0] == 204
    await judge(rig, "ann", first["id"], "regression")
    assert (await claim(rig, "ann"))[0] == 204
    status, body = await judge(rig, "ann", first["id"], "acceptable")
    assert status == 409
    assert body["error"]["message"] == "you already judged this item"
    _, for_bob = await claim(rig, "bob")
    assert for_bob["id"] == first["id"]


async def test_a_third_reviewer_never_sees_a_finished_item(make_rig: RigFactory) -> None:
    rig = await multi_rig(make_rig, 2)
    await enqueue(rig, [3.0, 2.0, 1.0])
    await judge_all(rig, "ann", ["regression"] * 3)
    _, item = await claim(rig, "bob")
    finished_id = item["id"]
    status, body = await judge(rig, "bob", finished_id, "regression")
    assert (status, body["finished"], body["final_label"]) == (200, True, "regression")
    seen = []
    while (result := await claim(rig, "carol"))[0] == 200:
        seen.append(result[1]["id"])
    assert finished_id not in seen
    assert len(seen) == 2
    status, body = await judge(rig, "carol", finished_id, "improvement")
    assert (status, body["error"]["message"]) == (409, "this item already has a verdict")


async def test_an_expired_lease_frees_only_that_reviewers_place(make_rig: RigFactory) -> None:
    rig = await multi_rig(make_rig, 2, lease_s=0.3)
    await enqueue(rig, [1.0])
    _, held_by_ann = await claim(rig, "ann")
    _, held_by_bob = await claim(rig, "bob")
    assert held_by_ann["id"] == held_by_bob["id"]
    await asyncio.sleep(0.5)
    status, body = await judge(rig, "ann", held_by_ann["id"], "regression")
    assert status == 409
    assert body["error"]["message"] == "your lease on this item expired; claim it again"
    _, for_carol = await claim(rig, "carol")
    _, for_dave = await claim(rig, "dave")
    assert for_carol["id"] == for_dave["id"] == held_by_ann["id"]
    assert (await claim(rig, "erin"))[0] == 204


async def test_a_release_gives_back_only_the_releasing_reviewers_place(
    make_rig: RigFactory,
) -> None:
    rig = await multi_rig(make_rig, 2)
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    await claim(rig, "bob")
    assert (await claim(rig, "carol"))[0] == 204
    resp = await rig.control.post(f"/review/{item['id']}/release", headers=as_reviewer("ann"))
    assert resp.status == 200
    status, again = await claim(rig, "carol")
    assert (status, again["id"]) == (200, item["id"])
    assert (await judge(rig, "bob", item["id"], "improvement"))[0] == 200
    status, body = await judge(rig, "carol", item["id"], "improvement")
    assert (status, body["final_label"], body["tied"]) == (200, "improvement", False)


async def test_final_label_is_the_majority_and_a_tie_goes_to_the_more_severe_label(
    make_rig: RigFactory,
) -> None:
    votes = list(itertools.combinations_with_replacement(LABELS, 3))
    rig = await multi_rig(make_rig, 3)
    await enqueue(rig, [float(len(votes) - n) for n in range(len(votes))])
    for k, reviewer in enumerate(("ann", "bob", "cid")):
        await judge_all(rig, reviewer, [v[k] for v in votes])
    finals = {}
    for fields in await verdict_entries(rig):
        if b"final" in fields:
            pair_id = orjson.loads(fields[b"data"])["pair_id"]
            finals[int(pair_id.rsplit("-", 1)[1])] = (
                fields[b"final"].decode(), fields[b"tied"] == b"1",
            )  # fmt: skip
    assert finals == {n: final_label(v) for n, v in enumerate(votes)}
    assert final_label(["regression", "acceptable", "improvement"]) == ("regression", True)
    assert final_label(["improvement", "acceptable", "improvement"]) == ("improvement", False)
    assert final_label(["acceptable", "improvement"]) == ("acceptable", True)
    summary = await stats(rig)
    assert summary["final_ties"] == 1  # only the item with three different labels
    assert summary["final_labels"] == {"regression": 4, "acceptable": 3, "improvement": 3}


async def test_stats_count_each_reviewer_and_their_agreement_with_the_majority(
    make_rig: RigFactory,
) -> None:
    rig = await multi_rig(make_rig, 3)
    await enqueue(rig, [4.0, 3.0, 2.0, 1.0])
    await judge_all(rig, "ann", ["regression", "regression", "acceptable", "improvement"])
    await judge_all(rig, "bob", ["regression", "acceptable", "acceptable", "improvement"])
    _, item = await claim(rig, "cid")  # cid judges the first item only
    await judge(rig, "cid", item["id"], "improvement")
    summary = await stats(rig, reviewer="bob")
    assert summary["finished"] == 1
    assert summary["reviewers"]["ann"] == {
        "verdicts": 4, "finished": 1, "with_majority": 1, "agreement_with_majority": 1.0,
    }  # fmt: skip
    assert summary["reviewers"]["cid"]["agreement_with_majority"] == 0.0
    assert summary["you"] == summary["reviewers"]["bob"]
    assert summary["you"]["verdicts"] == 4
    assert summary["queued"] == 3
    assert summary["reviewers_per_item"] == 3


async def test_rollout_reviewer_guardrail_counts_items_once_their_verdicts_are_in(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(
        control={"reviewer_token": TOKEN},
        review={"reviewers_per_item": 2},
        rollout={"steps": [10, 100], "interval_s": 3600},
    )
    await rig.wait_for(lambda: rig.gateway.rollout.is_leader)
    resp = await rig.control.post(
        "/admin/rollout/start", json={}, headers={"Authorization": "Bearer admin-secret"}
    )
    assert resp.status == 200
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    await judge(rig, "ann", item["id"], "improvement")

    def reviewer_guardrail(state: Any) -> dict[str, Any] | None:
        evidence = {e["guardrail"]: e for e in state.history[-1].evidence}
        return evidence.get("reviewer_regressions")

    assert reviewer_guardrail(await rig.gateway.rollout.tick()) is None
    _, item = await claim(rig, "bob")
    status, body = await judge(rig, "bob", item["id"], "regression")
    assert (status, body["final_label"], body["tied"]) == (200, "regression", True)
    guardrail = reviewer_guardrail(await rig.gateway.rollout.tick())
    assert guardrail is not None
    assert (guardrail["samples"], guardrail["rate"]) == (1.0, 1.0)
