"""Blind pairwise review through the API: answers named A and B only, in an order fixed per
item, and a choice between them stored as the candidate's label with the raw choice."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import Rig, RigFactory
from tests.test_review import TOKEN, as_reviewer, claim, enqueue
from tests.test_review_multi import verdict_entries


async def blind_rig(make_rig: RigFactory, reviewers: int = 1) -> Rig:
    return await make_rig(
        control={"reviewer_token": TOKEN},
        review={"mode": "blind", "reviewers_per_item": reviewers},
    )


async def blind_items(
    make_rig: RigFactory, candidate_sides: list[str], sides: list[str], **enqueued: Any
) -> Rig:
    """A blind rig with one queued item per entry of `sides` (the candidate's letter), to be
    claimed in that order."""
    candidate_sides.extend(sides)
    rig = await blind_rig(make_rig)
    await enqueue(rig, [float(len(sides) - n) for n in range(len(sides))], **enqueued)
    return rig


async def choose(rig: Rig, reviewer: str, item_id: str, body: dict[str, Any]) -> Any:
    return await rig.control.post(
        f"/review/{item_id}/verdict", json=body, headers=as_reviewer(reviewer)
    )


async def test_blind_item_names_answers_a_and_b_only(
    make_rig: RigFactory, candidate_sides: list[str]
) -> None:
    candidate_sides.extend(["B"])
    rig = await blind_rig(make_rig)
    await enqueue(rig, [1.0], flags=["refusal"])
    resp = await rig.control.post("/review/claim", headers=as_reviewer("ann"))
    raw = await resp.read()
    assert b"production" not in raw.lower()
    assert b"candidate" not in raw.lower()
    item = orjson.loads(raw)
    assert item["mode"] == "blind"
    assert item["answers"]["A"]["text"] == "Paris."
    assert item["answers"]["B"]["text"] == "Lyon."
    assert item["answers"]["B"]["flags"] == ["refusal"]
    assert item["evidence"] == ["B contains a refusal"]
    assert "pair" not in item


async def test_a_choice_is_stored_as_the_candidates_label_for_both_side_orders(
    make_rig: RigFactory, candidate_sides: list[str]
) -> None:
    cases = [
        ("A", "A", "improvement"), ("A", "B", "regression"),
        ("B", "A", "regression"), ("B", "B", "improvement"),
        ("A", "tie", "acceptable"), ("B", "tie", "acceptable"),
        ("A", "both_bad", "acceptable"), ("B", "both_bad", "acceptable"),
    ]  # fmt: skip
    rig = await blind_items(make_rig, candidate_sides, [side for side, _, _ in cases])
    for _, choice, _ in cases:
        _, item = await claim(rig, "ann")
        resp = await choose(rig, "ann", item["id"], {"choice": choice, "tags": ["geo"]})
        assert resp.status == 200
        answer = orjson.loads(await resp.read())
        assert answer["choice"] == choice
        assert "label" not in answer and "sides" not in answer  # would tell the order
    stored = [orjson.loads(fields[b"data"]) for fields in await verdict_entries(rig)]
    assert [(v["choice"], v["label"]) for v in stored] == [(c, label) for _, c, label in cases]
    for (side, _, _), verdict in zip(cases, stored, strict=True):
        assert verdict["sides"][side] == "candidate"
        assert verdict["tags"] == ["geo"]


async def test_every_claim_of_an_item_shows_the_same_order(
    make_rig: RigFactory, candidate_sides: list[str]
) -> None:
    candidate_sides.extend(["A"])
    rig = await blind_rig(make_rig, reviewers=2)
    await enqueue(rig, [1.0])
    _, for_ann = await claim(rig, "ann")
    await rig.control.post(f"/review/{for_ann['id']}/release", headers=as_reviewer("ann"))
    _, again = await claim(rig, "ann")
    _, for_bob = await claim(rig, "bob")
    assert for_ann["answers"] == again["answers"] == for_bob["answers"]
    assert for_ann["answers"]["A"]["text"] == "Lyon."


@pytest.mark.parametrize(
    ("mode", "body", "message"),
    [
        ("standard", {"choice": "A"}, "choice: only in blind mode"),
        ("blind", {"choice": "C"}, "choice: must be one of A, B, tie, both_bad"),
        ("blind", {"choice": "A", "label": "regression"}, "not both"),
    ],
)
async def test_bad_choices_are_a_400(
    make_rig: RigFactory, mode: str, body: dict[str, Any], message: str
) -> None:
    rig = await make_rig(control={"reviewer_token": TOKEN}, review={"mode": mode})
    await enqueue(rig, [1.0])
    _, item = await claim(rig, "ann")
    resp = await choose(rig, "ann", item["id"], body)
    assert resp.status == 400
    assert message in await resp.text()
