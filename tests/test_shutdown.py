"""Shutdown: readiness turns 503 first, streams get their grace period, nothing is lost
uncounted (mirrors in flight, pair records in the publish buffer)."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.serving.lifecycle import drain
from gateway.serving.processes import Child, free_port, shadowgate_command
from tests.conftest import Rig, RigFactory

HANG_S = 10.0
CHAT = "/v1/chat/completions"


def _data_runner(rig: Rig) -> web.BaseRunner:
    runner = rig.client.server.runner
    assert runner is not None
    return runner


async def _refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_readyz_is_503_while_an_in_flight_stream_finishes(make_rig: RigFactory) -> None:
    rig = await make_rig(listen={"shutdown_grace_s": HANG_S})
    port = rig.client.server.port
    assert port is not None
    resp = await rig.client.get("/sse")
    assert await resp.content.readuntil(b"\n\n") == b"data: first\n\n"

    draining = asyncio.create_task(drain(rig.gateway, _data_runner(rig)))
    async with asyncio.timeout(HANG_S):
        while not await _refuses_connections(port):
            await asyncio.sleep(0.02)
    ready = await rig.control.get("/readyz")
    assert ready.status == 503
    assert not draining.done()  # still waiting for the stream

    rig.production.release.set()
    assert await resp.content.read() == b"data: second\n\n"
    async with asyncio.timeout(HANG_S):
        await draining
    assert rig.metric("shadowgate_shutdown_cuts_total") == 0
    assert rig.metric("shadowgate_client_disconnects_total") == 0


async def test_stream_running_past_the_grace_period_is_cut_and_counted(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(listen={"shutdown_grace_s": 0.3})
    resp = await rig.client.get("/sse")
    assert await resp.content.readuntil(b"\n\n") == b"data: first\n\n"
    async with asyncio.timeout(HANG_S):
        await drain(rig.gateway, _data_runner(rig))
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.content.read()
    assert rig.metric("shadowgate_shutdown_cuts_total") == 1
    assert rig.metric("shadowgate_client_disconnects_total") == 0
    await asyncio.wait_for(rig.production.cancelled.wait(), HANG_S)
    assert rig.gateway.production.pool_in_use() == 0


def _held_candidate(answer: asyncio.Event, asked: list[str]) -> web.Application:
    """A candidate that answers a chat request only once `answer` is set."""

    async def chat(request: web.Request) -> web.Response:
        asked.append(await request.text())
        await answer.wait()
        message = {"role": "assistant", "content": "The capital of France is Paris."}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response({"object": "chat.completion", "choices": [choice]})

    app = web.Application()
    app.router.add_post(CHAT, chat)
    return app


@pytest.mark.parametrize("answers_in_grace", [True, False])
async def test_mirrors_in_flight_at_shutdown_are_published_or_counted(
    make_rig: RigFactory, answers_in_grace: bool
) -> None:
    answer, asked = asyncio.Event(), list[str]()
    candidate = TestServer(_held_candidate(answer, asked))
    await candidate.start_server()
    try:
        rig = await make_rig(
            traffic={"shadow_percent": 100},
            shadow={"noise_percent": 0, "shutdown_grace_s": HANG_S if answers_in_grace else 0.2},
            upstreams={"candidate": {"url": str(candidate.make_url("")).rstrip("/")}},
        )
        for user in ("u1", "u2"):
            resp = await rig.client.post(CHAT, json={"model": "m", "messages": [], "user": user})
            assert resp.status == 200
        await rig.wait_for(lambda: len(asked) == 2)

        closing = asyncio.create_task(rig.gateway.__aexit__(None, None, None))
        if answers_in_grace:
            await asyncio.sleep(0.1)
            answer.set()
        async with asyncio.timeout(HANG_S):
            await closing
    finally:
        await candidate.close()

    reader = aioredis.Redis.from_url(rig.gateway.redis_url)
    written = await reader.xlen(rig.gateway.config.redis.key_prefix + "pairs")
    await reader.aclose()
    published = rig.metric("shadowgate_pairs_published_total")
    dropped = rig.metric("shadowgate_shadow_total", outcome="dropped_shutdown")
    assert (written, published, dropped) == ((2, 2, 0) if answers_in_grace else (0, 0, 2))
    assert rig.metric("shadowgate_pairs_dropped_total", reason="shutdown") == 0


class _SlowStream(BaseHTTPRequestHandler):
    """Production for the process test: a close-delimited answer whose second half waits."""

    release: threading.Event

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"first\n")
        self.wfile.flush()
        self.release.wait(HANG_S)
        self.wfile.write(b"second\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_production() -> Iterator[tuple[int, threading.Event]]:
    release = threading.Event()
    handler = type("Handler", (_SlowStream,), {"release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], release
    release.set()
    server.shutdown()
    server.server_close()


def _readyz_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.e2e
def test_sigterm_turns_readyz_503_and_lets_the_stream_finish(
    tmp_path: Path, slow_production: tuple[int, threading.Event]
) -> None:
    production_port, release = slow_production
    ports = {"gateway": free_port(), "control": free_port()}
    config_path = tmp_path / "gateway.yaml"
    config = {
        "listen": {"host": "127.0.0.1", "port": ports["gateway"], "shutdown_grace_s": HANG_S},
        "control": {"host": "127.0.0.1", "port": ports["control"]},
        "upstreams": {"production": {"url": f"http://127.0.0.1:{production_port}"}},
        "state_dir": str(tmp_path / "state"),
    }
    config_path.write_text(yaml.safe_dump(config))
    gateway = Child(
        "gateway",
        shadowgate_command("serve", "--config", str(config_path)),
        log_path=tmp_path / "gateway.log",
        env={},
    )
    readyz = f"http://127.0.0.1:{ports['control']}/readyz"
    try:
        gateway.wait_ready(readyz, timeout_s=30)
        client = http.client.HTTPConnection("127.0.0.1", ports["gateway"], timeout=HANG_S)
        client.request("POST", "/v1/stream", body=orjson.dumps({"input": "x"}))
        response = client.getresponse()
        assert response.readline() == b"first\n"

        gateway.process.terminate()
        deadline = time.monotonic() + HANG_S
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", ports["gateway"])) != 0:
                    break
            time.sleep(0.02)
        else:
            pytest.fail("the data port still accepts connections after SIGTERM")
        # The port is closed and the stream still runs: readiness must already say no.
        assert _readyz_status(readyz) == 503

        release.set()
        assert response.read() == b"second\n"
        client.close()
        assert gateway.process.wait(HANG_S) == 0
    finally:
        gateway.stop()
