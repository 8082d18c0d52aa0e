"""The production path: forwarding, header rules, streaming, timeouts and disconnects."""

from __future__ import annotations

import asyncio
import gzip
import io

import orjson
import pytest

from gateway.constants import ARM_HEADER
from tests.conftest import RigFactory


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_any_method_and_path_reaches_production_unchanged(
    make_rig: RigFactory, method: str
) -> None:
    rig = await make_rig()
    body = b"" if method in ("GET", "DELETE") else b"raw \x00 bytes"
    resp = await rig.client.request(method, "/any/path%2Fx?q=1&q=2", data=body or None)
    assert resp.status == 200
    assert resp.headers[ARM_HEADER] == "production"
    seen = rig.production.seen[-1]
    assert (seen.method, seen.path_qs, seen.body) == (method, "/any/path%2Fx?q=1&q=2", body)


async def test_hop_by_hop_headers_are_dropped_both_ways(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get(
        "/echo",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic abc",
            "Upgrade": "websocket",
            "X-End-To-End": "kept",
        },
    )
    assert resp.status == 200
    sent = {k.lower() for k, _ in rig.production.seen[-1].multi_headers}
    for hop in ("x-secret-hop", "keep-alive", "te", "trailer", "proxy-authorization", "upgrade"):
        assert hop not in sent
    assert rig.production.seen[-1].headers["X-End-To-End"] == "kept"
    # The upstream named X-Private in its Connection header: it must not reach the client.
    assert "X-Private" not in resp.headers
    assert resp.headers["X-Upstream"] == "yes"


async def test_forwarding_headers_and_request_id_are_added(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/echo", headers={"X-Forwarded-For": "10.1.1.1"})
    seen = rig.production.seen[-1].headers
    assert seen["X-Forwarded-For"].startswith("10.1.1.1, 127.0.0.1")
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["Host"] == rig.gateway.production.base_url.removeprefix("http://")
    assert len(resp.headers["x-request-id"]) == 32
    assert seen["x-request-id"] == resp.headers["x-request-id"]


async def test_client_request_id_is_kept(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/echo", headers={"x-request-id": "req-42"})
    assert resp.headers["x-request-id"] == "req-42"
    assert rig.production.seen[-1].headers["x-request-id"] == "req-42"


async def test_compressed_body_passes_through_untouched(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/gzip", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await resp.read()) == b'{"compressed": true}'
    # The gateway's client adds no Accept-Encoding of its own.
    resp = await rig.client.get("/echo", skip_auto_headers=["Accept-Encoding"])
    assert "Accept-Encoding" not in rig.production.seen[-1].headers


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"])
async def test_compressed_request_body_reaches_production_untouched(
    make_rig: RigFactory, path: str
) -> None:
    rig = await make_rig()
    body = gzip.compress(b'{"model": "m", "messages": []}')
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = await rig.client.post(path, data=body, headers=headers)
    assert resp.status in (200, 400)  # whatever production made of it, it got the bytes
    seen = rig.production.seen[-1]
    assert seen.body == body
    assert seen.headers["Content-Encoding"] == "gzip"


async def test_sse_chunk_reaches_client_before_upstream_sends_the_next(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/sse")
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["X-Accel-Buffering"] == "no"
    first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
    assert first == b"data: first\n\n"
    assert not rig.production.release.is_set()
    rig.production.release.set()
    assert await resp.content.read() == b"data: second\n\n"


async def test_large_request_body_is_streamed_to_production(make_rig: RigFactory) -> None:
    rig = await make_rig()
    body = b"x" * (5 << 20)
    resp = await rig.client.post("/v1/chat/completions", data=io.BytesIO(body))
    assert resp.status == 400  # the upstream's own answer to a non-JSON body
    assert rig.production.seen[-1].body == body


async def test_expect_100_continue_is_answered_before_the_body(make_rig: RigFactory) -> None:
    rig = await make_rig()
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.client.server.port)
    body = b'{"model": "m", "messages": []}'
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    async with asyncio.timeout(2):
        interim = await reader.readuntil(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert rig.production.seen[-1].body == body
    assert "expect" not in {k.lower() for k, _ in rig.production.seen[-1].multi_headers}


async def test_unknown_expectation_is_refused_with_417(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.post("/v1/chat/completions", data=b"{}", headers={"Expect": "magic"})
    assert resp.status == 417
    assert rig.production.seen == []


async def test_redirects_are_passed_to_the_client_not_followed(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"
    assert len(rig.production.seen) == 1


async def test_unreachable_upstream_is_an_openai_style_502(make_rig: RigFactory) -> None:
    rig = await make_rig(upstreams={"production": {"url": "http://127.0.0.1:9"}})
    resp = await rig.client.post("/v1/chat/completions", json={"messages": []})
    assert resp.status == 502
    assert resp.headers[ARM_HEADER] == "production"
    error = orjson.loads(await resp.read())["error"]
    assert error["code"] == "upstream_unreachable"
    assert rig.metric("shadowgate_requests_total", arm="production", status="502") == 1


async def test_upstream_cutting_a_small_answer_short_is_a_502(make_rig: RigFactory) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/short")
    assert resp.status == 502
    assert orjson.loads(await resp.read())["error"]["code"] == "upstream_broken_response"


async def test_upstream_silent_past_first_byte_timeout_is_a_504(make_rig: RigFactory) -> None:
    rig = await make_rig(upstreams={"production": {"first_byte_timeout_s": 0.2}})
    resp = await rig.client.get("/hang")
    assert resp.status == 504
    assert orjson.loads(await resp.read())["error"]["code"] == "upstream_timeout"


async def test_client_leaving_mid_stream_cancels_upstream_and_frees_pool(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    resp = await rig.client.get("/sse")
    assert await resp.content.readuntil(b"\n\n") == b"data: first\n\n"
    resp.close()
    await asyncio.wait_for(rig.production.cancelled.wait(), 5)
    await rig.wait_for(lambda: rig.gateway.production.pool_in_use() == 0)
    assert rig.metric("shadowgate_client_disconnects_total") == 1


async def test_client_leaving_before_first_byte_cancels_upstream(make_rig: RigFactory) -> None:
    rig = await make_rig()
    task = asyncio.create_task(rig.client.get("/hang"))
    await asyncio.wait_for(rig.production.started.wait(), 5)
    task.cancel()
    await asyncio.wait_for(rig.production.cancelled.wait(), 5)
    await rig.wait_for(lambda: rig.gateway.production.pool_in_use() == 0)


async def test_canary_user_is_served_by_candidate_with_its_credentials(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(traffic={"canary_percent": 100})
    resp = await rig.client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi a@b.co"}]},
        headers={"Authorization": "Bearer user-key", "x-user-id": "u1"},
    )
    assert resp.status == 200
    assert resp.headers[ARM_HEADER] == "canary"
    assert not rig.production.seen
    seen = rig.candidate.seen[-1]
    assert seen.headers["Authorization"] == "Bearer candidate-key"
    # A canary user is really served by the candidate: the body is not scrubbed.
    assert b"a@b.co" in seen.body
    assert "x-shadowgate-shadow" not in seen.headers
