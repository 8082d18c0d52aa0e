"""`shadowgate review` from a terminal against a running control plane, and the export."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import yaml

from tests.conftest import Rig, RigFactory
from tests.test_review import TOKEN, claim, enqueue, review_rig
from tests.test_review_blind import blind_rig, choose


async def cli(*args: str, url: str = "") -> tuple[int, str]:
    env = {**os.environ, "SHADOWGATE_REVIEWER_TOKEN": TOKEN}
    extra = ["--url", url, "--reviewer", "terminal-tom"] if url else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "review", *extra, *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def export_config(rig: Rig, tmp_path: Path) -> Path:
    """A config file that points `shadowgate review export` at the rig's Redis."""
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "upstreams": {"production": {"url": "http://127.0.0.1:1"}},
        "redis": {"url": rig.gateway.redis_url, "key_prefix": rig.gateway.config.redis.key_prefix},
    }))  # fmt: skip
    return config


async def test_terminal_reviewer_claims_judges_and_exports(
    make_rig: RigFactory, tmp_path: Path
) -> None:
    rig = await review_rig(make_rig)
    await enqueue(rig, [2.0, 1.0])
    url = str(rig.control.make_url("")).rstrip("/")

    code, out = await cli("next", url=url)
    assert code == 0
    assert "--- candidate\nLyon." in out
    item_id = out.split()[1]
    code, out = await cli("verdict", item_id, "regression", "--tag", "geo", url=url)
    assert (code, out.strip()) == (0, "recorded: regression by terminal-tom")
    code, out = await cli("verdict", item_id, "acceptable", url=url)
    assert code == 1
    assert "409 this item already has a verdict" in out

    code, out = await cli("next", url=url)
    second = out.split()[1]
    await cli("verdict", second, "acceptable", url=url)
    code, out = await cli("stats", url=url)
    assert orjson.loads(out)["verdicts"] == {"regression": 1, "acceptable": 1}

    config = export_config(rig, tmp_path)
    golden = tmp_path / "golden.jsonl"
    code, out = await cli("export", str(golden), "--config", str(config), "--label", "regression")
    assert code == 0
    assert "wrote 1 of 2 items (2 verdicts)" in out
    (record,) = [orjson.loads(line) for line in golden.read_bytes().splitlines()]
    assert record["label"] == "regression"
    assert record["tags"] == ["geo"]
    assert (record["production"], record["candidate"]) == ("Paris.", "Lyon.")
    assert [v["reviewer"] for v in record["verdicts"]] == ["terminal-tom"]
    assert (record["complete"], record["agreement"]) == (True, 1.0)


async def test_unreachable_control_plane_is_one_clear_line() -> None:
    code, out = await cli("stats", url="http://127.0.0.1:9")
    assert code == 1
    assert out.strip().startswith("shadowgate: cannot reach http://127.0.0.1:9")
    assert len(out.strip().splitlines()) == 1


async def test_blind_terminal_review_and_export_of_items_with_all_their_verdicts(
    make_rig: RigFactory, tmp_path: Path, candidate_sides: list[str]
) -> None:
    candidate_sides.extend(["B", "A", "B"])
    rig = await blind_rig(make_rig, reviewers=2)
    await enqueue(rig, [3.0, 2.0, 1.0])
    url = str(rig.control.make_url("")).rstrip("/")
    code, out = await cli("next", url=url)
    assert code == 0
    assert "--- answer A\nParis.\n--- answer B\nLyon." in out
    assert "candidate" not in out and "production" not in out
    first = out.split()[1]
    code, out = await cli("verdict", first, "A", "--tag", "geo", url=url)
    assert (code, out.strip()) == (0, "recorded: A by terminal-tom")
    # ann: A on the first item (both say production's answer is better), both bad on the
    # second (bob too), B on the third (still waiting for a second verdict).
    for reviewer, choices in (("ann", ["A", "both_bad", "B"]), ("bob", ["both_bad"])):
        for choice in choices:
            _, item = await claim(rig, reviewer)
            await choose(rig, reviewer, item["id"], {"choice": choice})

    config = export_config(rig, tmp_path)
    golden = tmp_path / "golden.jsonl"
    code, out = await cli("export", str(golden), "--config", str(config))
    assert code == 0
    assert "wrote 1 of 3 items (5 verdicts)" in out
    assert "left out: 1 awaiting verdicts, 1 both answers bad" in out
    (record,) = [orjson.loads(line) for line in golden.read_bytes().splitlines()]
    assert (record["label"], record["complete"], record["agreement"]) == ("regression", True, 1.0)
    assert record["tags"] == ["geo"]
    assert [(v["reviewer"], v["choice"], v["label"]) for v in record["verdicts"]] == [
        ("terminal-tom", "A", "regression"), ("ann", "A", "regression"),
    ]  # fmt: skip
    assert record["verdicts"][0]["sides"] == {"A": "production", "B": "candidate"}

    code, out = await cli("export", str(golden), "--config", str(config), "--partial")
    records = [orjson.loads(line) for line in golden.read_bytes().splitlines()]
    assert [(r["label"], r["complete"]) for r in records] == [
        ("regression", True), ("improvement", False),
    ]  # fmt: skip
