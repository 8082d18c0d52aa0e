"""End-to-end lag from a pair being published to its score being written, with one scoring
worker process, at a fixed rate of pairs per second.

    python -m benchmarks.scoring_lag [--rates 50 200] [--seconds 20]

Pairs carry distinct answers of 60-300 words (no cache hits), published at a steady rate
into an embedded Redis; lag is the score entry's Redis time minus the publish time. A rate
above the worker's throughput shows as a growing backlog: the report says how many were
scored in the window. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.scoring_throughput import answers
from gateway.config import RedisConfig
from gateway.embedded_redis import EmbeddedRedis
from gateway.processes import Child, shadowgate_command
from gateway.records import Exchange, PairRecord
from gateway.redis_client import connect


async def reset(url: str) -> None:
    """An empty pairs stream per rate, so one rate's backlog is not the next one's lag."""
    client = connect(RedisConfig(socket_timeout_s=5), url)
    await client.delete("shadowgate:pairs", "shadowgate:scores")
    await client.aclose()


async def publish_and_measure(url: str, rate: float, seconds: float) -> dict[str, Any]:
    client = connect(RedisConfig(socket_timeout_s=5), url)
    await client.delete("shadowgate:scores")
    texts = answers(int(rate * seconds) * 2 + 2, seed=int(rate))
    published: dict[str, float] = {}
    started = time.time()
    total = int(rate * seconds)
    for n in range(total):
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.time()))
        pair = PairRecord(
            id=f"lag-{rate}-{n}", ts=time.time(), route="/v1/chat/completions",
            production=Exchange(status=200, text=texts[2 * n], latency_ms=100),
            candidate=Exchange(status=200, text=texts[2 * n + 1], latency_ms=120),
        )  # fmt: skip
        published[pair.id] = pair.ts
        await client.xadd("shadowgate:pairs", {"data": pair.to_json()})
    await asyncio.sleep(2.0)  # a little grace for the last batch
    lags = []
    entries: Any = await client.xrange("shadowgate:scores")
    for entry_id, fields in entries:
        written = int(entry_id.decode().split("-")[0]) / 1000
        pair_id = fields[b"data"].split(b'"pair_id":"', 1)[1].split(b'"', 1)[0].decode()
        if pair_id in published:
            lags.append(written - published[pair_id])
    await client.aclose()
    lags.sort()
    return {
        "rate": rate,
        "published": total,
        "scored": len(lags),
        "p50": statistics.median(lags) if lags else float("nan"),
        "p99": lags[int(0.99 * (len(lags) - 1))] if lags else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[50.0, 200.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sgl-"))
    config = workdir / "gateway.yaml"
    config.write_text(yaml.safe_dump({"upstreams": {"production": {"url": "http://127.0.0.1:1"}}}))
    with EmbeddedRedis(state_dir=workdir, persist=False) as redis_server:
        print(f"scoring lag, one worker process, {args.seconds:.0f} s per rate, this machine")
        for rate in args.rates:
            asyncio.run(reset(redis_server.url))
            worker = Child(
                "worker",
                shadowgate_command(
                    "score", "--config", str(config), "--redis-url", redis_server.url
                ),
                log_path=workdir / f"worker-{rate:.0f}.log",
                env={},
            )
            time.sleep(3.0)  # model load
            try:
                result = asyncio.run(publish_and_measure(redis_server.url, rate, args.seconds))
            finally:
                worker.stop()
            print(f"  {result['rate']:>5.0f} pairs/s: scored {result['scored']} of "
                  f"{result['published']} within the window; lag p50 {result['p50']:.2f} s, "
                  f"p99 {result['p99']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
