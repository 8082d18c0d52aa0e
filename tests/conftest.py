"""Shared fixtures: a real embedded redis-server for the whole run (flushed per test) and a
gateway running in-process between two recording upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestClient, TestServer
from blockbuster import blockbuster_ctx

from gateway.apps import build_control_app, build_data_server
from gateway.config import Config, parse_config
from gateway.runtime import Gateway
from gateway.serving.embedded_redis import EmbeddedRedis
from scoring.embedder import default_tokenizer_path
from scoring.signals.detect import Detector, load_vocabulary
from tests.stall_proxy import StallProxy
from tests.upstreams import Recorder, build_upstream

if TYPE_CHECKING:
    from gateway.tracing.spans import Tracing


@pytest.fixture(autouse=True)
def no_blocking_calls_in_the_event_loop() -> Iterator[None]:
    """Fail any blocking call (file, socket, sleep) that project code makes on the loop."""
    with blockbuster_ctx(["gateway", "scoring"]):
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(state_dir=tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: EmbeddedRedis) -> str:
    """URL of the shared embedded server, emptied before each test."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    return redis_server.url


@pytest.fixture
async def stall_proxy(redis_url: str, tmp_path: Path) -> AsyncIterator[StallProxy]:
    """A proxy in front of the shared server that can hold what a client sends on the wire."""
    proxy = StallProxy(target=redis_url.removeprefix("unix://"), path=tmp_path / "proxy.sock")
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path


class DataPlaneServer(BaseTestServer):
    """The data plane built as `shadowgate serve` builds it, on a free port."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self._gateway = gateway

    async def _make_runner(self, **kwargs: Any) -> web.ServerRunner:
        return web.ServerRunner(build_data_server(self._gateway))


class Rig:
    """A running gateway with its two upstreams and clients for both planes."""

    def __init__(
        self,
        *,
        gateway: Gateway,
        client: TestClient[Any, Any],
        control: TestClient[Any, Any],
        production: Recorder,
        candidate: Recorder,
    ) -> None:
        self.gateway = gateway
        self.client = client
        self.control = control
        self.production = production
        self.candidate = candidate

    def metric(self, name: str, **labels: str) -> float:
        value = self.gateway.metrics.registry.get_sample_value(name, labels or None)
        return value or 0.0

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                await asyncio.sleep(0.01)


RigFactory = Callable[..., Awaitable[Rig]]


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


@pytest.fixture
async def make_rig(redis_url: str, tmp_path: Path) -> AsyncIterator[RigFactory]:
    """Builds gateways on demand: `await make_rig(traffic={...}, shadow={...})`."""
    stack: list[Any] = []

    async def factory(
        redis_at: str | None = None, tracing: Tracing | None = None, **overrides: Any
    ) -> Rig:
        production, candidate = Recorder(), Recorder()
        production_server = TestServer(build_upstream(production))
        candidate_server = TestServer(build_upstream(candidate))
        for server in (production_server, candidate_server):
            # The recorders keep the bytes on the wire: a compressed body stays compressed.
            await server.start_server(auto_decompress=False)
            stack.append(server)
        data: dict[str, Any] = {
            "upstreams": {
                "production": {"url": str(production_server.make_url("")).rstrip("/")},
                "candidate": {
                    "url": str(candidate_server.make_url("")).rstrip("/"),
                    "api_key": "candidate-key",
                },
            },
            "state_dir": str(tmp_path),
            # Rigs in one test are separate deployments: they must not share the live split.
            "redis": {"traffic_poll_s": 0.05, "key_prefix": f"sg{len(stack)}:"},
            "control": {"admin_token": "admin-secret"},
        }
        _merge(data, overrides)
        config: Config = parse_config(data, env={})
        gateway = Gateway(config=config, redis_url=redis_at or redis_url, tracing=tracing)
        await gateway.__aenter__()
        stack.append(gateway)
        client: TestClient[web.BaseRequest, None] = TestClient(
            DataPlaneServer(gateway), auto_decompress=False
        )
        control = TestClient(TestServer(build_control_app(gateway)))
        await client.start_server()
        await control.start_server()
        stack.extend([client, control])
        return Rig(
            gateway=gateway,
            client=client,
            control=control,
            production=production,
            candidate=candidate,
        )

    yield factory
    for item in reversed(stack):
        if isinstance(item, Gateway):
            await item.__aexit__(None, None, None)
        elif isinstance(item, TestClient):
            await item.close()
        else:
            await item.close()


@pytest.fixture
def candidate_sides(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Blind review: the letters the candidate's answer gets, item by item in queue order
    (instead of a random draw); the test fills the list."""
    sides: list[str] = []
    monkeypatch.setattr("gateway.review.blind.draw_candidate_side", lambda: sides.pop(0))
    return sides


@pytest.fixture(scope="session")
def detector() -> Detector:
    """The content signals' detector, with the embedding model's vocabulary."""
    return Detector(vocabulary=load_vocabulary(default_tokenizer_path()))
