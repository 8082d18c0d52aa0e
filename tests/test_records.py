"""Records that cross a process boundary: a verdict keeps the review item it judged as a model,
the golden line the export writes is what replay reads, and records written by earlier
versions still load."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from gateway.config import RedisConfig
from gateway.errors import ConfigError
from gateway.records import Exchange, GoldenCase, PairRecord, ReviewItem, ScoreRecord, Verdict
from gateway.redis_client import connect
from gateway.review.export import export_golden
from scoring.replay import load_golden
from tests.conftest import Rig, RigFactory
from tests.test_review import claim, enqueue, judge, review_rig

# A verdict as the first review queue wrote it (one reviewer per item, no blind choice), on
# an item as the first scoring worker queued it (a score without evidence or judge).
OLD_VERDICT = (
    b'{"schema_version":1,"item_id":"1700000000000-0","pair_id":"p1",'
    b'"route":"/v1/chat/completions","label":"regression","tags":["geo"],"note":null,'
    b'"reviewer":"ann","claimed_at":1700000000.0,"decided_at":1700000010.5,'
    b'"item":{"schema_version":1,"pair":{"schema_version":1,"id":"p1","ts":1700000000.0,'
    b'"route":"/v1/chat/completions","method":"POST","request":{"model":"m","messages":'
    b'[{"role":"user","content":"Capital of France?"}]},"production":{"status":200,'
    b'"text":"Paris.","streamed":false,"truncated":false},"candidate":{"status":200,'
    b'"text":"Lyon.","streamed":false,"truncated":false},"pii":{}},"score":{"schema_version":1,'
    b'"pair_id":"p1","ts":1700000001.0,"route":"/v1/chat/completions","semantic":0.4,'
    b'"noise_floor":0.0,"excess":0.4,"production_flags":[],"candidate_flags":[],'
    b'"queued":true,"reasons":["divergence"]},"priority":0.4}}'
)

# A golden line as `shadowgate review export` wrote it before golden lines had a version.
OLD_GOLDEN = (
    b'{"pair_id":"p1","route":"/v1/chat/completions","request":{"model":"m","messages":'
    b'[{"role":"user","content":"Capital of France?"}],"stream":true},"production":"Paris.",'
    b'"candidate":"Lyon.","label":"regression","tied":false,"complete":true,"agreement":1.0,'
    b'"tags":["geo"],"verdicts":[{"reviewer":"ann","label":"regression","choice":null,'
    b'"sides":null,"tags":["geo"],"note":null,"decided_at":1700000010.5}]}'
)


async def enqueue_with_request(rig: Rig) -> None:
    """One item whose pair keeps its (scrubbed) request, as a real mirrored pair does."""
    pair = PairRecord(
        id="p1",
        ts=1.0,
        route="/v1/chat/completions",
        request={
            "model": "m",
            "messages": [{"role": "user", "content": "Capital?"}],
            "stream": True,
        },
        production=Exchange(status=200, text="Paris."),
        candidate=Exchange(status=200, text="Lyon.", streamed=True),
    )
    score = ScoreRecord(pair_id="p1", ts=2.0, route=pair.route, excess=0.4, queued=True)
    item = ReviewItem(pair=pair, score=score, priority=0.4)
    client = connect(RedisConfig(), rig.gateway.redis_url)
    await client.xadd(rig.gateway.config.redis.key_prefix + "review", {"data": item.to_json()})
    await client.aclose()


async def entries(rig: Rig, name: str) -> list[dict[bytes, bytes]]:
    client = connect(RedisConfig(), rig.gateway.redis_url)
    found: Any = await client.xrange(rig.gateway.config.redis.key_prefix + name)
    await client.aclose()
    return [fields for _, fields in found]


async def export(rig: Rig, **options: Any) -> bytes:
    """`export_golden` on the rig's verdicts stream (a blocking client, so on a thread)."""

    def run() -> bytes:
        out = io.BytesIO()
        with redis.Redis.from_url(rig.gateway.redis_url) as client:
            key = rig.gateway.config.redis.key_prefix + "verdicts"
            export_golden(client, key, out, **options)
        return out.getvalue()

    return await asyncio.to_thread(run)


async def test_a_verdict_keeps_the_review_item_it_judged_as_queued(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [2.0])
    _, shown = await claim(rig, "ann")
    assert (await judge(rig, "ann", shown["id"])).status == 200

    (queued,) = await entries(rig, "review")
    (written,) = await entries(rig, "verdicts")
    verdict = Verdict.from_json(written[b"data"])
    assert isinstance(verdict.item, ReviewItem)
    assert verdict.item == ReviewItem.from_json(queued[b"data"])
    assert (verdict.pair_id, verdict.route) == (verdict.item.pair.id, verdict.item.pair.route)
    # The item inside the verdict is stored exactly as the review stream holds it.
    assert orjson.loads(written[b"data"])["item"] == orjson.loads(queued[b"data"])
    assert Verdict.from_json(verdict.to_json()) == verdict


async def test_an_exported_golden_line_is_read_back_by_replay(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = await review_rig(make_rig)
    await enqueue_with_request(rig)
    _, shown = await claim(rig, "ann")
    await judge(rig, "ann", shown["id"], label="regression")

    line = await export(rig)
    golden = GoldenCase.from_json(line)
    assert (golden.label, golden.production, golden.candidate) == ("regression", "Paris.", "Lyon.")
    assert [(v.reviewer, v.label, v.tags) for v in golden.verdicts] == [
        ("ann", "regression", ["t"])
    ]
    assert golden.to_json() + b"\n" == line
    path = tmp_path / "golden.jsonl"
    await asyncio.to_thread(path.write_bytes, line)
    (case,) = await asyncio.to_thread(load_golden, path)
    # Reviewers found the candidate a regression: production's answer is the approved one.
    assert (case.route, case.label, case.reference) == (golden.route, "regression", "Paris.")
    assert case.request == {"model": "m", "messages": [{"role": "user", "content": "Capital?"}]}


async def test_verdicts_of_the_first_schema_still_load_and_export(make_rig: RigFactory) -> None:
    rig = await review_rig(make_rig)
    client = connect(RedisConfig(), rig.gateway.redis_url)
    await client.xadd(rig.gateway.config.redis.key_prefix + "verdicts", {"data": OLD_VERDICT})
    await client.aclose()

    verdict = Verdict.from_json(OLD_VERDICT)
    assert verdict.item is not None
    assert verdict.item.score.evidence == []
    # The first schema had one reviewer per item: its one verdict is the item's final label.
    golden = GoldenCase.from_json(await export(rig))
    assert (golden.label, golden.complete, golden.request) == (
        "regression",
        True,
        verdict.item.pair.request,
    )
    assert golden.verdicts[0].choice is None


def test_golden_lines_written_before_they_had_a_version_still_replay(tmp_path: Path) -> None:
    golden = GoldenCase.from_json(OLD_GOLDEN)
    assert (golden.schema_version, golden.approved) == (1, "Paris.")
    # Only the version is new: everything the old line said is written back as it was.
    assert orjson.loads(golden.to_json()) == {"schema_version": 1, **orjson.loads(OLD_GOLDEN)}
    path = tmp_path / "golden.jsonl"
    path.write_bytes(OLD_GOLDEN + b"\n")
    (case,) = load_golden(path)
    assert "stream" not in case.request
    assert case.reference == "Paris."


def test_a_golden_line_of_the_wrong_shape_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "golden.jsonl"
    path.write_bytes(b'{"request": {"model": "m"}, "candidate": 5}\n')
    with pytest.raises(ConfigError) as caught:
        load_golden(path)
    assert str(caught.value) == f"{path}:1: candidate: Input should be a valid string"
