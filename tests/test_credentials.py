"""The candidate never receives a user's credentials, headers or query parameters, on any arm:
checked on the raw bytes it receives. No header value is ever logged, not even from a request
aiohttp cannot parse."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from tests.conftest import RigFactory
from tests.raw_upstream import RawUpstream
from tests.test_query_credentials import SECRETS, STRIPPED, TARGET

USER_CREDENTIALS = {
    "Authorization": "Bearer sk-user-secret-1",
    "api-key": "azure-user-secret-2",
    "X-Api-Key": "anthropic-user-secret-3",
    "Cookie": "session=cookie-user-secret-4",
    "OpenAI-Organization": "org-user-secret-5",
    "OpenAI-Project": "proj_user-secret-6",
    "Proxy-Authorization": "Basic proxy-user-secret-7",
    "X-Tenant-Token": "tenant-user-secret-8",
}
ARMS: dict[str, dict[str, Any]] = {
    "canary": {"canary_percent": 100},
    "shadow": {"shadow_percent": 100},
}


@pytest.mark.parametrize("arm", list(ARMS))
async def test_candidate_receives_none_of_the_users_credentials(
    make_rig: RigFactory, arm: str
) -> None:
    candidate = await RawUpstream().start()
    try:
        rig = await make_rig(
            traffic=ARMS[arm],
            shadow={"noise_percent": 0},
            upstreams={
                "candidate": {
                    "url": candidate.url,
                    "credential_headers": ["x-tenant-token"],
                    "credential_params": ["Tenant_Sig"],
                }
            },
        )
        resp = await rig.client.post(
            TARGET,
            data=orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            headers={"Content-Type": "application/json", "x-user-id": "u1", **USER_CREDENTIALS},
        )
        assert resp.status == 200
        await resp.read()
        await rig.wait_for(lambda: len(candidate.requests) == 1)
    finally:
        await candidate.close()
    (raw,) = candidate.requests
    head = raw.split(b"\r\n\r\n", 1)[0].lower() + b"\r\n"
    assert raw.split(b"\r\n", 1)[0] == f"POST {STRIPPED} HTTP/1.1".encode()
    for query_secret in SECRETS:
        assert query_secret.encode() not in raw, "a query credential reached the candidate"
    for name, value in USER_CREDENTIALS.items():
        secret = value.split()[-1].split("=")[-1].encode().lower()
        assert secret not in raw.lower(), f"{name} reached the candidate"
        if name != "Authorization":
            assert name.lower().encode() + b":" not in head
    assert b"\r\nauthorization: bearer candidate-key\r\n" in head
    assert head.count(b"\r\nauthorization:") == 1


async def test_production_still_receives_the_users_credentials(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/echo", headers=USER_CREDENTIALS)
    assert resp.status == 200
    seen = rig.production.seen[-1].headers
    for name, value in USER_CREDENTIALS.items():
        if name != "Proxy-Authorization":  # hop-by-hop: for the next proxy, not the origin
            assert seen[name] == value


MALFORMED = {
    "control_char": b"Authorization: Bearer admin-secret\x01x\r\n",
    "space_before_colon": b"Authorization : Bearer admin-secret\r\n",
    "bare_lf": b"Authorization: Bearer admin-secret\nX-Other: y\r\n",
    "folded": b"Authorization: Bearer admin-secret\r\n folded\r\n",
    "too_long": b"Authorization: Bearer admin-secret" + b"x" * 9000 + b"\r\n",
}


@pytest.mark.parametrize("plane", ["control", "data"])
@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_authorization_is_refused_and_never_logged(
    make_rig: RigFactory, caplog: pytest.LogCaptureFixture, plane: str, header: bytes
) -> None:
    rig = await make_rig()
    server = rig.control.server if plane == "control" else rig.client.server
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    caplog.set_level(logging.DEBUG)
    try:
        writer.write(b"GET /admin/traffic HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 ")
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "admin-secret" not in logged
    assert any("bad request" in record.getMessage().lower() for record in caplog.records)


async def test_token_with_undecodable_bytes_is_refused_not_a_500(
    make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await make_rig()
    port = rig.control.server.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"GET /admin/traffic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer admin-secret\xff\r\n\r\n"
        )
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert "admin-secret" not in caplog.text
