"""Control plane: health, metrics, and the admin traffic API shared by all replicas."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import RigFactory

ADMIN = {"Authorization": "Bearer admin-secret"}


async def test_health_and_readiness(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.control.get("/healthz")
    assert resp.status == 200
    resp = await rig.control.get("/readyz")
    assert resp.status == 200
    body = orjson.loads(await resp.read())
    assert (body["ready"], body["redis"]) == (True, "up")


async def test_metrics_expose_requests_by_arm_and_status(make_rig: RigFactory) -> None:
    rig = await make_rig()
    await rig.client.get("/echo")
    resp = await rig.control.get("/metrics")
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert 'shadowgate_requests_total{arm="production",status="200"} 1.0' in text
    assert "shadowgate_upstream_latency_seconds_bucket" in text


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic x"}, 401)],
)
async def test_admin_api_refuses_missing_or_wrong_token(
    make_rig: RigFactory, headers: dict[str, str], status: int
) -> None:
    rig = await make_rig()
    resp = await rig.control.get("/admin/traffic", headers=headers)
    assert resp.status == status
    assert "error" in orjson.loads(await resp.read())


async def test_admin_api_is_disabled_without_a_configured_token(make_rig: RigFactory) -> None:
    rig = await make_rig(control={"admin_token": None})
    resp = await rig.control.get("/admin/traffic", headers=ADMIN)
    assert resp.status == 403
    assert "no admin token" in (await resp.text())


async def test_put_traffic_reaches_every_replica_within_a_second(make_rig: RigFactory) -> None:
    one = await make_rig()
    two = await make_rig(redis={"key_prefix": one.gateway.config.redis.key_prefix})
    resp = await one.control.put("/admin/traffic", json={"canary_percent": 25}, headers=ADMIN)
    assert resp.status == 200
    assert orjson.loads(await resp.read())["canary_percent"] == 25
    await two.wait_for(lambda: two.gateway.traffic.current.canary_bp == 2500, timeout_s=1.0)
    resp = await two.control.get("/admin/traffic", headers=ADMIN)
    assert orjson.loads(await resp.read())["canary_percent"] == 25


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"shadow_percent": 101}', "shadow_percent"),
        (b'{"canary_percent": "lots"}', "canary_percent"),
        (b'{"shadow": 5}', "shadow: unknown field"),
        (b"not json", "JSON object"),
        (b"{}", "JSON object"),
    ],
)
async def test_put_traffic_refuses_bad_values_and_keeps_the_old_ones(
    make_rig: RigFactory, body: bytes, message: str
) -> None:
    rig = await make_rig(traffic={"shadow_percent": 10})
    resp = await rig.control.put("/admin/traffic", data=body, headers=ADMIN)
    assert resp.status == 400
    assert message in orjson.loads(await resp.read())["error"]["message"]
    assert rig.gateway.traffic.current.split.shadow_percent == 10


async def test_new_replica_adopts_the_live_split_not_its_file(make_rig: RigFactory) -> None:
    one = await make_rig(traffic={"shadow_percent": 10})
    await one.control.put("/admin/traffic", json={"shadow_percent": 40}, headers=ADMIN)
    two = await make_rig(
        traffic={"shadow_percent": 1}, redis={"key_prefix": one.gateway.config.redis.key_prefix}
    )
    assert two.gateway.traffic.current.split.shadow_percent == 40


async def test_put_traffic_with_redis_down_is_a_503(make_rig: RigFactory, tmp_path: object) -> None:
    rig = await make_rig(redis_at=f"unix://{tmp_path}/none.sock")
    resp = await rig.control.put("/admin/traffic", json={"shadow_percent": 5}, headers=ADMIN)
    assert resp.status == 503
    assert rig.gateway.traffic.current.split.shadow_percent == 0
    resp = await rig.control.get("/readyz")
    assert orjson.loads(await resp.read())["redis"] == "down"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"steps=5,20", "application/x-www-form-urlencoded", "it is not JSON"),
        (b'{"steps": [5, 20]', "application/json", "it is not JSON"),
        (b"[5, 20]", "application/json", "not a JSON list"),
    ],
    ids=["form", "truncated", "list"],
)
async def test_rollout_start_with_a_body_that_is_not_a_json_object_is_a_400(
    make_rig: RigFactory, body: bytes, content_type: str, message: str
) -> None:
    rig = await make_rig()
    resp = await rig.control.post(
        "/admin/rollout/start", data=body, headers={**ADMIN, "Content-Type": content_type}
    )
    assert resp.status == 400
    assert message in orjson.loads(await resp.read())["error"]["message"]
    assert (await rig.gateway.rollout.state()).status != "running"


@pytest.mark.parametrize("redis_alive", [True, False], ids=["redis_up", "redis_down"])
async def test_redis_up_reflects_the_connection_before_any_publish(
    make_rig: RigFactory, tmp_path: Path, redis_alive: bool
) -> None:
    rig = await make_rig(redis_at=None if redis_alive else f"unix://{tmp_path}/none.sock")
    resp = await rig.control.get("/metrics")
    text = await resp.text()
    assert f"shadowgate_redis_up {1.0 if redis_alive else 0.0}" in text
    assert rig.metric("shadowgate_pairs_published_total") == 0


@pytest.mark.parametrize(
    "stored", [b"{not json", b'{"status": "lost"}'], ids=["not_json", "not_a_state"]
)
async def test_a_rollout_state_that_does_not_parse_is_a_500_not_a_conflict(
    make_rig: RigFactory, stored: bytes
) -> None:
    """409 is for the rollout's own refusals and 400 for a bad request: a ValueError from
    anywhere else is the server's fault."""
    rig = await make_rig()
    await rig.gateway.redis.set(rig.gateway.config.redis.key_prefix + "rollout", stored)
    resp = await rig.control.post("/admin/rollout/pause", headers=ADMIN)
    assert resp.status == 500
