"""`shadowgate score`: one scoring worker process, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING

import uvloop

from gateway.config import Config
from gateway.keys import Keys
from gateway.redis_client import connect
from gateway.tracing.setup import load_tracing
from scoring.embedder import Embedder
from scoring.heartbeat import Heartbeat
from scoring.llm_judge.stage import open_judge
from scoring.worker import ScoringWorker

if TYPE_CHECKING:
    from scoring.tracing import EvaluationEvents

log = logging.getLogger("shadowgate.score")


async def _run(
    config: Config, redis_url: str, embedder: Embedder, evaluations: EvaluationEvents | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis = connect(config.redis, redis_url)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    worker: ScoringWorker | None = None
    heartbeat = Heartbeat(
        redis=redis,
        keys=Keys.for_prefix(config.redis.key_prefix),
        name=consumer,
        interval_s=config.scoring.heartbeat_s,
    )
    beating = asyncio.create_task(
        heartbeat.run(lambda: worker.scored if worker is not None else 0), name="heartbeat"
    )
    try:
        async with open_judge(config, redis) as judge:
            worker = ScoringWorker(
                config=config,
                redis=redis,
                embedder=embedder,
                consumer=consumer,
                judge=judge,
                evaluations=evaluations,
            )
            log.info("scoring worker %s started (judge %s)", consumer, "on" if judge else "off")
            await worker.run(stop)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await heartbeat.clear()
        await redis.aclose()
        scored = worker.scored if worker is not None else 0
        log.info("scoring worker %s stopped after %d pairs", consumer, scored)


def run_score(config: Config, *, redis_url: str) -> int:
    """Load the model (a missing one fails here, before any pair), then score until stopped."""
    embedder = Embedder(config.scoring)
    tracing = load_tracing(service_name="shadowgate-worker", environ=os.environ)
    evaluations = None
    if tracing is not None:
        from scoring.tracing import EvaluationEvents

        evaluations = EvaluationEvents(tracing)
    try:
        uvloop.run(_run(config, redis_url, embedder, evaluations))
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0
