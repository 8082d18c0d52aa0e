"""/metrics shows the live traffic split and the rollout: its step, its status, and whether
it stands rolled back by its own guardrails (an operator's abort is not a rollback)."""

from __future__ import annotations

import time

import orjson

from gateway.rollout.controller import Decision, RolloutState
from tests.conftest import RigFactory

ADMIN = {"Authorization": "Bearer admin-secret"}


async def test_metrics_show_the_split_and_a_rollout_rolled_back_by_a_guardrail(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(traffic={"shadow_percent": 20})
    assert rig.metric("shadowgate_traffic_percent", slice="shadow") == 20
    assert rig.metric("shadowgate_traffic_percent", slice="canary") == 0
    state = RolloutState(
        status="halted", steps=[5, 25, 50], step_index=1, reason="breached: error_rate",
        history=[Decision(at=time.time(), step=25, look=3, decision="rollback")],
    )  # fmt: skip
    prefix = rig.gateway.config.redis.key_prefix
    await rig.gateway.redis.set(prefix + "rollout", orjson.dumps(state.model_dump(mode="json")))
    await rig.wait_for(lambda: rig.metric("shadowgate_rollout_rolled_back") == 1)
    assert rig.metric("shadowgate_rollout_status", status="halted") == 1
    assert rig.metric("shadowgate_rollout_status", status="running") == 0
    assert rig.metric("shadowgate_rollout_step_percent") == 25


async def test_an_operator_abort_is_not_reported_as_a_rollback(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.control.post("/admin/rollout/start", json={"steps": [10, 50]}, headers=ADMIN)
    assert resp.status == 200
    await rig.wait_for(lambda: rig.metric("shadowgate_rollout_status", status="running") == 1)
    assert rig.metric("shadowgate_rollout_step_percent") == 10
    assert rig.metric("shadowgate_traffic_percent", slice="canary") == 10
    resp = await rig.control.post("/admin/rollout/abort", headers=ADMIN)
    assert resp.status == 200
    await rig.wait_for(lambda: rig.metric("shadowgate_rollout_status", status="halted") == 1)
    assert rig.metric("shadowgate_rollout_rolled_back") == 0
    assert rig.metric("shadowgate_traffic_percent", slice="canary") == 0
