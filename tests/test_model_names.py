"""The candidate's own model name: the bytes mirrors and canary requests carry, the pair
record's two names, and the report that shows them."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from gateway.config import CandidateConfig
from gateway.constants import ARM_HEADER
from gateway.proxy.model_names import ModelNames
from gateway.report.build import gather_report
from gateway.report.table import render_text
from tests.conftest import Rig, RigFactory
from tests.test_shadow import CHAT, read_pairs, shadow

NAMES: dict[str, Any] = {"model": "cand-default", "model_map": {"gpt-4o": "gpt-4.1"}}


def candidate(**settings: Any) -> dict[str, Any]:
    return {"upstreams": {"candidate": settings}}


async def post(rig: Rig, body: bytes, content_type: str = "application/json") -> int:
    resp = await rig.client.post(
        CHAT, data=body, headers={"Content-Type": content_type, "x-user-id": "u1"}
    )
    await resp.read()
    return resp.status


@pytest.mark.parametrize(
    ("model", "settings", "expected"),
    [
        ("gpt-4o", NAMES, "gpt-4.1"),
        ("other", NAMES, "cand-default"),
        ("other", {"model_map": {"gpt-4o": "gpt-4.1"}}, "other"),
        ("gpt-4.1", NAMES, "gpt-4.1"),
        ("cand-default", NAMES, "cand-default"),
        (None, NAMES, None),
    ],
)
def test_map_comes_before_the_default_name(
    model: str | None, settings: dict[str, Any], expected: str | None
) -> None:
    config = CandidateConfig.model_validate({"url": "http://candidate", **settings})
    assert ModelNames.for_candidate(config).candidate_name(model) == expected


async def test_mirror_asks_the_candidate_for_its_model_and_noise_keeps_productions(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(
        **candidate(**NAMES),
        traffic={"shadow_percent": 100},
        shadow=shadow(noise_percent=100),
    )
    sent = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"user":"u1"}'
    assert await post(rig, sent) == 200
    (pair,) = await read_pairs(rig, 1)
    assert (pair.model, pair.candidate_model) == ("gpt-4o", "gpt-4.1")
    mirrored = rig.candidate.seen[-1]
    assert mirrored.body == sent.replace(b'"gpt-4o"', b'"gpt-4.1"')
    assert mirrored.headers["Content-Length"] == str(len(mirrored.body))
    user, noise = rig.production.seen
    assert user.body == sent  # the user's own request, byte for byte
    assert noise.headers["x-shadowgate-shadow"] == "1"
    assert orjson.loads(noise.body)["model"] == "gpt-4o"
    assert pair.request["model"] == "gpt-4o"


async def test_mirror_without_a_configured_name_keeps_the_requests(make_rig: RigFactory) -> None:
    rig = await make_rig(traffic={"shadow_percent": 100}, shadow=shadow())
    assert await post(rig, b'{"model":"gpt-4o","messages":[]}') == 200
    (pair,) = await read_pairs(rig, 1)
    assert (pair.model, pair.candidate_model) == ("gpt-4o", "gpt-4o")
    assert orjson.loads(rig.candidate.seen[-1].body)["model"] == "gpt-4o"


async def test_canary_request_carries_the_candidates_model_name(make_rig: RigFactory) -> None:
    rig = await make_rig(**candidate(**NAMES), traffic={"canary_percent": 100})
    sent = b'{"model":"gpt-4o","messages":[{"role":"user","content":"a@b.co"}],"n":1}'
    assert await post(rig, sent) == 200
    seen = rig.candidate.seen[-1]
    # Only the value changes: field order and the user's unscrubbed text stay.
    assert seen.body == b'{"model":"gpt-4.1","messages":[{"role":"user","content":"a@b.co"}],"n":1}'
    assert seen.headers["Content-Length"] == str(len(seen.body))
    assert not rig.production.seen


@pytest.mark.parametrize(
    ("body", "content_type", "settings"),
    [
        # Already the candidate's name: not serialised again, odd spacing and all.
        (b'{ "model" : "gpt-4.1",\n "messages": [] }', "application/json", NAMES),
        # No name configured: nothing to rewrite.
        (b'{ "model" : "gpt-4o",\n "messages": [] }', "application/json", {}),
        # Not JSON, whatever it says.
        (b'{"model": "gpt-4o", broken', "application/json", NAMES),
        (b"model=gpt-4o&messages=", "application/x-www-form-urlencoded", NAMES),
        (b'["model", "gpt-4o"]', "application/json", NAMES),
    ],
)
async def test_canary_body_that_needs_no_rewrite_is_forwarded_byte_for_byte(
    make_rig: RigFactory, body: bytes, content_type: str, settings: dict[str, Any]
) -> None:
    rig = await make_rig(**candidate(**settings), traffic={"canary_percent": 100})
    resp = await rig.client.post(
        "/v1/chat/completions", data=body, headers={"Content-Type": content_type}
    )
    await resp.read()
    assert resp.headers[ARM_HEADER] == "canary"
    assert rig.candidate.seen[-1].body == body


async def test_report_shows_both_names_and_prices_the_candidate_by_its_own(
    make_rig: RigFactory,
) -> None:
    prices = {"gpt-4.1": {"input_per_1m": 2.0, "output_per_1m": 8.0}}
    rig = await make_rig(
        **candidate(**NAMES, prices=prices), traffic={"shadow_percent": 100}, shadow=shadow()
    )
    for _ in range(2):
        assert await post(rig, b'{"model":"gpt-4o","messages":[]}') == 200
    await read_pairs(rig, 2)
    now = time.time()
    report = await gather_report(
        rig.gateway.redis, config=rig.gateway.config, since=now - 60, until=now
    )
    assert report.models == [("gpt-4o", "gpt-4.1", 2)]
    shadow_arm = report.arms[2]
    # The test upstream reports 5 prompt and 7 completion tokens per answer.
    assert shadow_arm.cost_usd == pytest.approx((5 * 2.0 + 7 * 8.0) / 1e6)
    lines = render_text(report).splitlines()
    table = lines[lines.index("models") :]
    assert table[1].split() == ["production", "model", "candidate", "model", "mirrored", "pairs"]
    assert table[2].split() == ["gpt-4o", "gpt-4.1", "2"]
