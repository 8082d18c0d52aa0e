"""The scorer's evidence in the review item: carried from the worker through the review stream
to the claim API, as findings with sentences and spans per side, named A and B when blind."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config import RedisConfig, parse_config
from gateway.records import Exchange, PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import connect
from gateway.review.evidence import blind_sentence
from scoring.embedder import Embedder
from scoring.signals.detect import Detector
from scoring.signals.gate import flag_evidence
from scoring.worker import ScoringWorker
from tests.conftest import Rig, RigFactory
from tests.test_review import TOKEN, as_reviewer, claim
from tests.test_review_cli import cli
from tests.test_worker import BASE, PREFIX, drain, publish

DOSE = (
    "For adults, take 500 mg to 1 g of paracetamol every 4 to 6 hours. "
    "Do not take more than 4 g in 24 hours, and take it with food."
)
# The emoji is one character to the scorer and two UTF-16 units to the page.
OVERDOSE = (
    "For adults 🙂, take 5 g to 1 g of paracetamol every 4 to 6 hours, and take it with food."
)
REFUSAL = "I'm sorry, but I can't help with that."


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(parse_config(BASE, env={}).scoring)


def review_item(
    detector: Detector,
    production: str,
    candidate: str,
    *,
    n: int = 0,
    flags: list[str] | None = None,
    priority: float = 1.0,
) -> ReviewItem:
    """A queued pair with the evidence the detector finds in it."""
    pair = PairRecord(
        id=f"pair-{n}", ts=0.0, route="/v1/chat/completions",
        request={"messages": [{"role": "user", "content": "How much paracetamol can I take?"}]},
        production=Exchange(status=200, text=production),
        candidate=Exchange(status=200, text=candidate),
    )  # fmt: skip
    evidence = [] if flags else detector.compare(production, candidate)
    evidence += flag_evidence(flags or [], candidate)
    score = ScoreRecord(
        pair_id=pair.id, ts=0.0, route=pair.route, excess=0.05, queued=True,
        candidate_flags=flags or [], evidence=evidence,
        reasons=[f"flag:{f}" for f in flags or []] or ["evidence:number"],
    )  # fmt: skip
    return ReviewItem(pair=pair, score=score, priority=priority)


async def enqueue_items(rig: Rig, items: list[ReviewItem]) -> None:
    client = connect(RedisConfig(), rig.gateway.redis_url)
    key = rig.gateway.config.redis.key_prefix + "review"
    for item in items:
        await client.xadd(key, {"data": item.to_json()})
    await client.aclose()


def spanned(text: str, span: list[int] | None) -> str | None:
    return text[span[0] : span[1]] if span else None


async def test_claimed_item_carries_the_workers_evidence_with_spans_in_both_answers(
    redis_url: str, make_rig: RigFactory, embedder: Embedder
) -> None:
    redis = connect(RedisConfig(), redis_url)
    worker = ScoringWorker(
        config=parse_config(BASE, env={}), redis=redis, embedder=embedder, consumer="w1"
    )
    await worker.ensure_groups()
    record = PairRecord(
        id="dose", ts=0.0, route="/v1/chat/completions",
        production=Exchange(status=200, text=DOSE), candidate=Exchange(status=200, text=OVERDOSE),
    )  # fmt: skip
    await publish(redis, [record])
    await drain(worker)
    await redis.aclose()
    rig = await make_rig(redis={"key_prefix": PREFIX}, control={"reviewer_token": TOKEN})

    status, item = await claim(rig, "ann")

    assert status == 200
    evidence = item["score"]["evidence"]
    changes = [(e["kind"], e.get("production"), e.get("candidate")) for e in evidence]
    assert ("number", "500 mg", "5 g") in changes
    findings = item["findings"]
    texts = [f["text"] for f in findings]
    assert texts[:2] == ["number 500 mg → 5 g", "limit 4 g removed"]
    first = findings[0]
    assert first["severity"] == "high" and first["within_noise"] is False
    assert spanned(DOSE, first["spans"]["production"]) == "500 mg"
    assert spanned(OVERDOSE, first["spans"]["candidate"]) == "5 g"
    assert spanned(DOSE, findings[1]["spans"]["production"]) == "4 g"
    assert findings[1]["spans"]["candidate"] is None


@pytest.mark.parametrize("candidate_side", ["A", "B"])
async def test_blind_findings_name_the_answers_by_their_letters(
    make_rig: RigFactory, candidate_sides: list[str], detector: Detector, candidate_side: str
) -> None:
    candidate_sides.append(candidate_side)
    production_side = "B" if candidate_side == "A" else "A"
    rig = await make_rig(control={"reviewer_token": TOKEN}, review={"mode": "blind"})
    await enqueue_items(rig, [review_item(detector, DOSE, OVERDOSE)])

    resp = await rig.control.post("/review/claim", headers=as_reviewer("ann"))
    raw = await resp.read()

    assert b"production" not in raw.lower() and b"candidate" not in raw.lower()
    item = orjson.loads(raw)
    texts = [f["text"] for f in item["findings"]]
    values = {production_side: "500 mg", candidate_side: "5 g"}
    assert f"number {values['A']} in A, {values['B']} in B" in texts
    assert f"limit 4 g only in {production_side}" in texts
    assert all("→" not in t and "removed" not in t for t in texts)
    assert all(set(f) == {"text", "within_noise", "spans"} for f in item["findings"])
    change = item["findings"][texts.index(f"number {values['A']} in A, {values['B']} in B")]
    for letter in ("A", "B"):
        answer = item["answers"][letter]["text"]
        assert spanned(answer, change["spans"][letter]) == values[letter]


async def test_blind_findings_leave_out_flags_the_item_already_states(
    make_rig: RigFactory, candidate_sides: list[str], detector: Detector
) -> None:
    candidate_sides.append("B")
    rig = await make_rig(control={"reviewer_token": TOKEN}, review={"mode": "blind"})
    await enqueue_items(rig, [review_item(detector, DOSE, REFUSAL, flags=["refusal"])])
    _, item = await claim(rig, "ann")
    assert item["evidence"] == ["B contains a refusal"]
    assert item["findings"] == []


async def test_terminal_review_lists_what_changed(make_rig: RigFactory, detector: Detector) -> None:
    rig = await make_rig(control={"reviewer_token": TOKEN})
    await enqueue_items(rig, [review_item(detector, DOSE, OVERDOSE)])
    code, out = await cli("next", url=str(rig.control.make_url("")).rstrip("/"))
    assert code == 0
    assert "--- what changed\n- number 500 mg → 5 g\n- limit 4 g removed\n" in out


LETTERS = {"production": "A", "candidate": "B"}


@pytest.mark.parametrize(
    ("evidence", "sentence"),
    [
        ({"kind": "number", "message": "number 1 g → 2 g", "production": "1 g", "candidate": "2 g"},
         "number 1 g in A, 2 g in B"),
        ({"kind": "number", "message": "limit 4 g removed", "production": "4 g"},
         "limit 4 g only in A"),
        ({"kind": "date", "message": "date 2024 added", "candidate": "2024"},
         "date 2024 only in B"),
        ({"kind": "entity", "message": "Canberra → Sydney", "production": "Canberra",
          "candidate": "Sydney"}, "name Canberra in A, Sydney in B"),
        ({"kind": "negation", "message": "negation flipped: “x” → “y”",
          "production": "Take it with food.", "candidate": "Do not take it with food."},
         "negation: “Take it with food.” in A, “Do not take it with food.” in B"),
        ({"kind": "removed_statement", "message": "warning or limit removed: “No more.”",
          "production": "No more."}, "warning or limit only in A: “No more.”"),
        ({"kind": "json", "message": "$.dose: 1 → 2", "path": "$.dose", "production": "1",
          "candidate": "2"}, "$.dose: 1 in A, 2 in B"),
        ({"kind": "json", "message": "JSON was asked for; the candidate answered in prose",
          "candidate": "Sure"}, "JSON was asked for; B answered in prose"),
        ({"kind": "tool_call", "message": "call get_weather missing", "path": "get_weather",
          "production": '{"name": "get_weather"}'}, "call get_weather only in A"),
        ({"kind": "tool_call", "message": "extra call book", "path": "book"},
         "call book only in B"),
        ({"kind": "tool_call", "message": "get_weather(city): Paris → Lyon",
          "path": "get_weather.city"}, "get_weather(city): Paris in A, Lyon in B"),
        ({"kind": "tool_call", "message": "get_weather(unit) missing",
          "path": "get_weather.unit"}, "get_weather(unit) only in A"),
        ({"kind": "code", "message": "code `a < b` → `a <= b`", "production": "a < b",
          "candidate": "a <= b"}, "code `a < b` in A, `a <= b` in B"),
        ({"kind": "code", "message": "2 code blocks → 1"}, "code: A and B differ"),
        ({"kind": "refusal", "message": "the candidate refused"}, "B contains a refusal"),
    ],
)  # fmt: skip
def test_blind_sentences_say_which_letter_holds_what(
    evidence: dict[str, Any], sentence: str
) -> None:
    assert blind_sentence(evidence, LETTERS) == sentence
    flipped = blind_sentence(evidence, {"production": "B", "candidate": "A"})
    assert "production" not in flipped and "candidate" not in flipped


async def test_page_assets_are_served_by_name_only(make_rig: RigFactory) -> None:
    rig = await make_rig()
    script = await rig.control.get("/review/assets/review-evidence.js")
    assert script.status == 200
    assert script.content_type == "text/javascript"
    assert "reviewEvidence" in await script.text()
    for name in ("review.html", "..%2Freview_api.py", "nothing.js"):
        assert (await rig.control.get(f"/review/assets/{name}")).status == 404
