"""The rollout controller: promotes a good candidate step by step, rolls a bad one back,
and one replica at a time drives it."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from typing import Any

import orjson
import pytest

from tests.conftest import Rig, RigFactory

ADMIN = {"Authorization": "Bearer admin-secret"}
ROLLOUT: dict[str, Any] = {
    "steps": [10, 50, 100],
    "min_samples": 30,
    "error_margin": 0.05,
    "slow_share": 0.5,
    "interval_s": 3600,
}


async def traffic(rig: Rig, requests: int, seed: int, content: str = "hi") -> None:
    rng = random.Random(seed)
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    for _ in range(requests):
        resp = await rig.client.post(
            "/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json", "x-user-id": f"u{rng.random()}"},
        )
        await resp.read()
    await rig.gateway.arm_stats.flush()


async def rollout_cli(rig: Rig, *args: str) -> tuple[int | None, str]:
    url = str(rig.control.make_url("")).rstrip("/")
    env = {**os.environ, "SHADOWGATE_ADMIN_TOKEN": "admin-secret"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "rollout", "--url", url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    return process.returncode, out.decode().strip()


async def start(rig: Rig, **body: Any) -> dict[str, Any]:
    resp = await rig.control.post("/admin/rollout/start", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


async def test_a_good_candidate_is_promoted_through_every_step(make_rig: RigFactory) -> None:
    rig = await make_rig(rollout=ROLLOUT)
    await rig.wait_for(lambda: rig.gateway.rollout.is_leader)
    await start(rig)
    assert rig.gateway.traffic.current.canary_bp == 1000
    seen = []
    for round_ in range(12):
        await traffic(rig, 400, seed=round_)
        state = await rig.gateway.rollout.tick()
        seen.append(state.percent)
        if state.status == "done":
            break
    assert state.status == "done"
    assert rig.gateway.traffic.current.canary_bp == 10_000
    assert seen == sorted(seen)
    assert seen[-1] == 100.0
    decisions = [d.decision for d in state.history]
    assert decisions[0] == "start"
    assert decisions.count("promote") == 3
    assert "rollback" not in decisions


async def test_a_candidate_failing_more_requests_is_rolled_back(make_rig: RigFactory) -> None:
    rig = await make_rig(rollout={**ROLLOUT, "error_margin": 0.005})
    rig.candidate.fail_every = 10  # 10% of the candidate's answers are 500s
    await rig.wait_for(lambda: rig.gateway.rollout.is_leader)
    await start(rig, steps=[50, 100])
    for round_ in range(10):
        await traffic(rig, 300, seed=round_)
        state = await rig.gateway.rollout.tick()
        if state.status != "running":
            break
    assert state.status == "halted"
    assert "error_rate" in state.reason
    assert rig.gateway.traffic.current.canary_bp == 0
    last = state.history[-1]
    evidence = {e["guardrail"]: e for e in last.evidence}
    assert evidence["error_rate"]["outcome"] == "breach"
    assert evidence["error_rate"]["canary"] > evidence["error_rate"]["production"]
    view = await (await rig.control.get("/admin/rollout", headers=ADMIN)).json()
    assert view["status"] == "halted"


@pytest.mark.parametrize(
    ("action", "content", "decision"),
    [
        ("hold", "Сколько стоит доставка в Казань?", "hold"),
        ("report", "Сколько стоит доставка в Казань?", "promote"),
        ("hold", "hi", "promote"),
    ],
)
async def test_input_drift_holds_a_step_only_when_configured_to(
    make_rig: RigFactory, action: str, content: str, decision: str
) -> None:
    rig = await make_rig(rollout={**ROLLOUT, "psi_action": action})
    await rig.wait_for(lambda: rig.gateway.rollout.is_leader)
    await traffic(rig, 60, seed=1)  # production's prompts before the rollout: the reference
    await start(rig, steps=[50, 100])
    await traffic(rig, 300, seed=2, content=content)
    state = await rig.gateway.rollout.tick()
    last = state.history[-1]
    assert last.decision == decision
    drift = {e["guardrail"]: e for e in last.evidence}["input_drift"]
    assert drift["action"] == action
    assert drift["reference_samples"] >= 60
    if content == "hi":
        assert drift["outcome"] == "pass"
        assert drift["psi_max"] == pytest.approx(0.0, abs=1e-9)
        return
    assert drift["outcome"] == "drift"
    assert drift["psi:language"] > 0.25
    assert drift["psi:route"] == pytest.approx(0.0, abs=1e-9)
    view = await (await rig.control.get("/admin/rollout", headers=ADMIN)).json()
    assert view["drift"]["outcome"] == "drift"
    if action == "hold":
        assert (last.reason, state.reason, state.percent) == ("input_drift", "input_drift", 50.0)
        assert all(e["outcome"] == "pass" for e in last.evidence[:-1])
        code, out = await rollout_cli(rig, "status")
        assert code == 0
        assert "status running  step 50% of 50, 100  look 2  input_drift" in out
        assert "input drift (drift): PSI max" in out
        assert "holds promotion" in out
    else:
        assert state.percent == 100.0


@pytest.mark.parametrize(("action", "status"), [("hold", "running"), ("rollback", "halted")])
async def test_the_llm_judges_regressions_hold_or_roll_back_a_step_as_configured(
    make_rig: RigFactory, action: str, status: str
) -> None:
    rollout = {**ROLLOUT, "judge_regression_share": 0.2, "judge_action": action}
    rig = await make_rig(rollout=rollout)
    await rig.wait_for(lambda: rig.gateway.rollout.is_leader)
    await start(rig, steps=[50, 100])
    await traffic(rig, 300, seed=1)
    # What scoring workers write for pairs the judge saw during the step.
    aggregates = rig.gateway.config.redis.key_prefix + "aggregates"
    await rig.gateway.redis.hincrbyfloat(aggregates, "judge:verdict:regression", 40)
    await rig.gateway.redis.hincrbyfloat(aggregates, "judge:verdict:acceptable", 20)
    state = await rig.gateway.rollout.tick()
    last = state.history[-1]
    evidence = {e["guardrail"]: e for e in last.evidence}
    assert evidence["judge_regressions"]["outcome"] == "breach"
    assert evidence["judge_regressions"]["samples"] == 60
    assert evidence["error_rate"]["outcome"] == "pass"
    assert state.status == status
    if action == "hold":
        assert (last.decision, last.reason, state.percent) == ("hold", "judge_regressions", 50.0)
    else:
        assert "judge_regressions" in state.reason
        assert rig.gateway.traffic.current.canary_bp == 0


async def test_only_one_replica_drives_and_a_stale_leader_cannot_write(
    make_rig: RigFactory,
) -> None:
    one = await make_rig(rollout={**ROLLOUT, "lock_ttl_s": 0.3})
    two = await make_rig(
        rollout={**ROLLOUT, "lock_ttl_s": 0.3},
        redis={"key_prefix": one.gateway.config.redis.key_prefix},
    )
    # Both replicas' controllers tried to lead as they started: exactly one holds the lock.
    await one.wait_for(lambda: one.gateway.rollout.is_leader or two.gateway.rollout.is_leader)
    await asyncio.sleep(0.05)
    leaders = [one.gateway.rollout.is_leader, two.gateway.rollout.is_leader]
    assert leaders.count(True) == 1
    first, second = (one, two) if leaders[0] else (two, one)
    await start(first)
    await asyncio.sleep(0.5)  # the leader stalls past its lock
    assert await second.gateway.rollout.lead()
    state = await first.gateway.rollout.state()
    state.look = 99
    assert not await first.gateway.rollout._save(state)
    assert (await second.gateway.rollout.state()).look == 1


async def test_operator_commands_and_their_refusals(make_rig: RigFactory) -> None:
    rig = await make_rig(rollout=ROLLOUT)
    resp = await rig.control.post("/admin/rollout/pause", headers=ADMIN)
    assert resp.status == 409
    resp = await rig.control.post("/admin/rollout/start", json={"steps": [50, 10]}, headers=ADMIN)
    assert resp.status == 400
    assert "strictly increasing" in await resp.text()
    await start(rig, steps=[5, 20])
    assert (await (await rig.control.post("/admin/rollout/pause", headers=ADMIN)).json())[
        "status"
    ] == "paused"
    assert (await rig.gateway.rollout.tick()).status == "paused"
    resumed = await (await rig.control.post("/admin/rollout/resume", headers=ADMIN)).json()
    assert resumed["status"] == "running"
    aborted = await (await rig.control.post("/admin/rollout/abort", headers=ADMIN)).json()
    assert aborted["status"] == "halted"
    assert rig.gateway.traffic.current.canary_bp == 0
    assert (await rig.control.get("/admin/rollout")).status == 401


async def test_rollout_cli_starts_and_shows_status(make_rig: RigFactory) -> None:
    rig = await make_rig(rollout=ROLLOUT)
    outputs = []
    for args in (["start", "--steps", "2,20"], ["status"], ["pause"], ["pause"]):
        outputs.append(await rollout_cli(rig, *args))
    assert outputs[0][0] == 0
    assert outputs[1][1].startswith("status running  step 2% of 2, 20  look 1")
    assert outputs[2][1].startswith("status paused")
    assert outputs[3] == (1, "shadowgate: pause: 409 cannot pause a rollout that is paused")
