"""`shadowgate replay`: a golden set against a live model, exit code by regression share."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
from aiohttp.test_utils import TestServer

from tests.upstreams import Recorder, build_upstream


def golden_line(candidate: str, label: str) -> bytes:
    return orjson.dumps({
        "route": "/v1/chat/completions",
        "request": {"model": "m", "messages": [{"role": "user", "content": "Capital of France?"}],
                    "stream": True},
        "production": "Paris is the capital of France.",
        "candidate": candidate,
        "label": label,
    })  # fmt: skip


async def replay(golden: Path, url: str, share: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "replay", str(golden), "--candidate", url,
        "--max-regressions", share,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_replay_passes_and_fails_by_the_share_of_regressions(tmp_path: Path) -> None:
    server = TestServer(build_upstream(Recorder()))
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    golden = tmp_path / "golden.jsonl"
    golden.write_bytes(
        b"\n".join([
            golden_line("The capital of France is Paris.", "acceptable"),
            golden_line("Berlin.", "regression"),  # production's answer is the reference
            golden_line("Fresh pasta needs only flour, eggs and patience.", "improvement"),
        ])
    )  # fmt: skip
    try:
        code, out = await replay(golden, url, "0.5")
        assert code == 0, out
        assert "1 of 3 regressed" in out
        assert out.count("REGRESSED") == 1
        code, out = await replay(golden, url, "0.2")
        assert code == 1
    finally:
        await server.close()


async def test_a_broken_golden_file_is_one_clear_line(tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text("{not json}\n")
    code, out = await replay(golden, "http://127.0.0.1:9", "0.1")
    assert code == 2
    assert out.strip() == f"shadowgate: config error: {golden}:1: not a JSON line"
