"""Publish-to-score lag and the scoring backlog with one scoring worker process, offered load
going through the gateway's own admission check, publisher and backlog refresh.

    python -m benchmarks.scoring_lag [--seconds 30] [--capacity-pairs 400] [--cap 100]

1. Capacity: after a warm-up, `--capacity-pairs` pairs are published at once; one worker's
   capacity is that count over the time until none waits.
2. 80% of capacity for `--seconds`: lag from publishing a pair to its score being written
   (target: p99 within 2 s).
3. 2x capacity for `--seconds`, shedding past `shadow.max_backlog` (default: 2 s of the
   measured capacity): the shed share, the largest backlog seen, the lag.
4. The worker paused (SIGSTOP) while `--paused-pairs` pairs are published, shedding off,
   into a stream capped near `--cap`: what the cap alone does. The pairs it trims unscored
   are counted, not lost without a trace.

After each phase the worker drains the backlog, then the phase's books are printed: offered
= shed + published, and published = scored + dead-lettered + lost + still waiting. Pairs
carry distinct answers of 60-300 words (no cache hits), in an embedded Redis. A gateway runs
in-process with a candidate that is never called: each offered mirror asks the dispatcher
whether it may start and, if so, hands a pair to the publisher. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import logging
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.scoring_throughput import answers
from gateway.config import Config, parse_config
from gateway.constants import KEY_SCORES
from gateway.records import Exchange, PairRecord, ScoreRecord
from gateway.runtime import Gateway
from gateway.serving.embedded_redis import EmbeddedRedis
from gateway.serving.processes import Child, shadowgate_command
from scoring.backlog import Backlog

PREFIX = "shadowgate:"


def gateway_config(*, max_backlog: int, stream_maxlen: int) -> Config:
    """A gateway with a candidate to mirror to; the cap and bound as given, unchecked (phase
    4 sets the bound above the cap on purpose, which a config file may not)."""
    config = parse_config(
        {
            "upstreams": {
                "production": {"url": "http://127.0.0.1:1"},
                "candidate": {"url": "http://127.0.0.1:2"},
            },
            "traffic": {"shadow_percent": 100},
        },
        env={},
    )
    return config.model_copy(
        update={
            "shadow": config.shadow.model_copy(update={"max_backlog": max_backlog}),
            "publish": config.publish.model_copy(update={"stream_maxlen": stream_maxlen}),
        }
    )


@dataclasses.dataclass
class Phase:
    name: str
    rate: float
    offered: int = 0
    shed: int = 0
    published: dict[str, float] = dataclasses.field(default_factory=dict)
    backlog_max: int = 0
    lags: list[float] = dataclasses.field(default_factory=list)
    books: dict[str, int] = dataclasses.field(default_factory=dict)


async def wait_drained(gateway: Gateway, timeout_s: float = 300.0) -> Backlog:
    """The backlog once the worker has caught up (or the timeout passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        backlog = await gateway.backlog_meter.measure()
        if backlog.waiting == 0 or time.monotonic() > deadline:
            return backlog
        await asyncio.sleep(0.1)


def new_pair(pair_id: str, texts: Iterator[str]) -> PairRecord:
    return PairRecord(
        id=pair_id, ts=time.time(), route="/v1/chat/completions",
        production=Exchange(status=200, text=next(texts), latency_ms=100),
        candidate=Exchange(status=200, text=next(texts), latency_ms=120),
    )  # fmt: skip


async def offer(gateway: Gateway, phase: Phase, seconds: float, texts: Iterator[str]) -> None:
    """Offer mirrors at `phase.rate` for `seconds`, as the proxy would."""
    dispatcher = gateway.dispatcher
    assert dispatcher is not None
    started = time.monotonic()
    for n in range(int(phase.rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / phase.rate - time.monotonic()))
        phase.offered += 1
        if gateway.backlog.last is not None:
            phase.backlog_max = max(phase.backlog_max, gateway.backlog.last.waiting)
        if not dispatcher.admits():
            phase.shed += 1
            continue
        pair = new_pair(f"{phase.name}-{n}", texts)
        if gateway.publisher.submit(pair):
            phase.published[pair.id] = pair.ts


async def lags(gateway: Gateway, published: dict[str, float]) -> list[float]:
    """Seconds from publishing each pair to its score's entry in the scores stream."""
    found = []
    entries: Any = await gateway.redis.xrange(PREFIX + KEY_SCORES)
    for entry_id, fields in entries:
        score = ScoreRecord.model_validate_json(fields[b"data"])
        if score.pair_id in published:
            written = int(entry_id.decode().split("-")[0]) / 1000
            found.append(written - published[score.pair_id])
    return found


async def run_phase(
    redis_url: str,
    config: Config,
    phase: Phase,
    seconds: float,
    texts: Iterator[str],
    *,
    pause: Child | None = None,
) -> Phase:
    async with Gateway(config=config, redis_url=redis_url) as gateway:
        before = await wait_drained(gateway)
        if pause is not None:
            pause.process.send_signal(signal.SIGSTOP)
        try:
            await offer(gateway, phase, seconds, texts)
        finally:
            if pause is not None:
                pause.process.send_signal(signal.SIGCONT)
        after = await wait_drained(gateway)
        phase.lags = await lags(gateway, phase.published)
    phase.books = {
        name: getattr(after, name) - getattr(before, name)
        for name in ("published", "scored", "dead_lettered", "waiting")
    }
    for reason, count in after.lost.items():
        phase.books[f"lost {reason}"] = count - before.lost.get(reason, 0)
    return phase


async def capacity(redis_url: str, pairs: int, texts: Iterator[str]) -> float:
    """Pairs per second one worker scores, from a queue of `pairs` published at once."""
    config = gateway_config(max_backlog=10**9, stream_maxlen=100_000)
    await run_phase(redis_url, config, Phase("warm-up", rate=1000), 0.032, texts)
    async with Gateway(config=config, redis_url=redis_url) as gateway:
        published = (await gateway.backlog_meter.measure()).published
        for n in range(pairs):
            gateway.publisher.submit(new_pair(f"capacity-{n}", texts))
        started = time.monotonic()
        while (await gateway.backlog_meter.measure()).published < published + pairs:
            await asyncio.sleep(0.01)
        await wait_drained(gateway)
        return pairs / (time.monotonic() - started)


def distinct_answers() -> Iterator[str]:
    """Answers without end, made a thousand at a time."""
    for seed in itertools.count(11):
        yield from answers(1000, seed=seed)


def quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


def report(phase: Phase) -> None:
    b = phase.books
    lost = sum(n for name, n in b.items() if name.startswith("lost"))
    unaccounted = (phase.offered - phase.shed - b["published"]) + (
        b["published"] - b["scored"] - b["dead_lettered"] - lost - b["waiting"]
    )
    share = 100 * phase.shed / phase.offered
    p50, p99, top = (quantile(phase.lags, q) for q in (0.5, 0.99, 1.0))
    print(f"  {phase.name}: {phase.rate:.1f} pairs/s offered")
    print(f"    offered {phase.offered}, shed {phase.shed} ({share:.1f}%), published "
          f"{b['published']}; largest backlog seen {phase.backlog_max}")  # fmt: skip
    print(f"    lag publish->score: p50 {p50:.2f} s, p99 {p99:.2f} s, max {top:.2f} s "
          f"({len(phase.lags)} pairs)")  # fmt: skip
    losses = ", ".join(f"{n} {name[5:]}" for name, n in b.items() if name.startswith("lost"))
    print(f"    books: scored {b['scored']}, dead-lettered {b['dead_lettered']}, lost {lost} "
          f"({losses}), waiting {b['waiting']}; unaccounted {unaccounted}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per load phase (30)")
    parser.add_argument("--capacity-pairs", type=int, default=400)
    parser.add_argument("--max-backlog", type=int, default=0,
                        help="shedding bound; 0: 2 s of the measured capacity")  # fmt: skip
    parser.add_argument("--cap", type=int, default=100, help="stream cap of phase 4 (100)")
    parser.add_argument("--paused-pairs", type=int, default=500, help="of phase 4 (500)")
    args = parser.parse_args()
    logging.getLogger("shadowgate").setLevel(logging.ERROR)  # the figures say it all
    workdir = Path(tempfile.mkdtemp(prefix="sgl-"))
    config_path = workdir / "gateway.yaml"
    config_path.write_text(
        yaml.safe_dump({"upstreams": {"production": {"url": "http://127.0.0.1:1"}}})
    )
    texts = distinct_answers()
    with EmbeddedRedis(state_dir=workdir, persist=False) as redis_server:
        url = redis_server.url
        worker = Child(
            "worker",
            shadowgate_command("score", "--config", str(config_path), "--redis-url", url),
            log_path=workdir / "worker.log",
            env={},
        )
        try:
            rate = asyncio.run(capacity(url, args.capacity_pairs, texts))
            bound = args.max_backlog or max(1, int(2 * rate))
            print(f"scoring lag, one worker process (2 threads), {args.seconds:.0f} s per phase")
            print(f"  capacity: {rate:.1f} pairs/s ({args.capacity_pairs} queued pairs)")
            shedding = gateway_config(max_backlog=bound, stream_maxlen=100_000)
            for phase in (
                Phase("80% of capacity", 0.8 * rate),
                Phase(f"2x capacity, shed past {bound} waiting", 2 * rate),
            ):
                report(asyncio.run(run_phase(url, shedding, phase, args.seconds, texts)))
            capped = gateway_config(max_backlog=10**9, stream_maxlen=args.cap)
            paused = Phase(f"worker paused, no shedding, stream cap {args.cap}", 1000.0)
            seconds = args.paused_pairs / paused.rate
            report(asyncio.run(run_phase(url, capped, paused, seconds, texts, pause=worker)))
        finally:
            worker.stop()


if __name__ == "__main__":
    main()
