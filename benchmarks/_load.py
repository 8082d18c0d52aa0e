"""An HTTP/1.1 load generator on raw asyncio sockets, run as its own process so it never shares
an interpreter with what it measures. Keep-alive connections, request bytes built once, just
enough response parsing (Content-Length or chunked); prints one JSON object on stdout.

    python -m benchmarks._load open --target gw=8080 --target direct=8090 --rate 500
    python -m benchmarks._load closed --target gw=8080 --connections 8 --duration 5
    python -m benchmarks._load ttfb --target gw=8080 --target direct=9001 --count 300

`open` sends to every target at `rate` req/s each, interleaved in one schedule, so all of them
see the same moments of machine noise. Latency runs from each request's scheduled time (no
coordinated omission). `closed` keeps N connections busy (maximum throughput). `ttfb` sends
streaming requests one at a time, alternating targets, and times the first body chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvloop

PATH = "/v1/chat/completions"
REQUEST_TIMEOUT_S = 5.0
# Distinct x-user-id values cycled through, so sticky arm hashing sees many users.
USERS = 256
_PR_SET_TIMERSLACK = 29
_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def build_requests(
    port: int, *, stream: bool, max_tokens: int | None = None, path: str = PATH
) -> list[bytes]:
    """One chat completion request per synthetic user, as ready-to-send bytes."""
    requests = []
    for user in range(USERS):
        document: dict[str, Any] = {
            "model": "bench",
            "user": f"user-{user}",
            "messages": [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": f"Summarise the plot of Hamlet in one line ({user})."},
            ],
        }
        if stream:
            document["stream"] = True
        if max_tokens is not None:
            document["max_tokens"] = max_tokens
        body = orjson.dumps(document)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAccept: */*\r\nx-user-id: user-{user}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


class Connection:
    """One keep-alive connection; `exchange` sends a request and reads its whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, float]:
        """Returns the status and the perf_counter time the first body bytes were in."""
        self._writer.write(request)
        reader = self._reader
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        if b"\r\ntransfer-encoding: chunked" in lowered:
            first = 0.0
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                await reader.readexactly(size + 2)
                first = first or time.perf_counter()
            return status, first
        marker = lowered.find(b"\r\ncontent-length:")
        if marker < 0:
            raise ValueError("response without Content-Length or chunked framing")
        length = int(lowered[marker + 17 : lowered.index(b"\r\n", marker + 2)])
        await reader.readexactly(length)
        return status, time.perf_counter()

    def close(self) -> None:
        self._writer.close()


@dataclass
class Samples:
    """Latencies (seconds) of the successful requests to one target, and the failures."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def record(self, status: int, latency: float) -> None:
        if 200 <= status < 300:
            self.latencies.append(latency)
        else:
            self.errors += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "ok": len(ordered),
            "errors": self.errors,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            **{f"p{label}_ms": percentile(ordered, q) * 1000 for label, q in _QUANTILES},
            "max_ms": ordered[-1] * 1000 if ordered else math.nan,
        }


_QUANTILES = (("50", 0.50), ("90", 0.90), ("99", 0.99), ("999", 0.999))


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Pool:
    """The idle keep-alive connections to one target, most recently used first."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()

    async def fill(self, connections: int) -> None:
        for _ in range(connections):
            self._idle.put_nowait(await Connection.open(self.port))

    async def get(self) -> Connection:
        return await self._idle.get()

    def put(self, connection: Connection) -> None:
        self._idle.put_nowait(connection)

    async def replace(self, broken: Connection) -> None:
        broken.close()
        with contextlib.suppress(OSError):
            self.put(await Connection.open(self.port))

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


def _precise_timer_thread() -> None:
    # The default 50 us timer slack would add itself to every scheduled send.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)


async def open_loop(
    targets: dict[str, int], *, rate: float, duration: float, connections: int
) -> dict[str, Any]:
    """Each target at `rate` req/s for `duration` s; latency from the scheduled send time."""
    loop = asyncio.get_running_loop()
    names = list(targets)
    pools = {name: Pool(port) for name, port in targets.items()}
    for pool in pools.values():
        await pool.fill(connections)
    requests = {name: build_requests(port, stream=False) for name, port in targets.items()}
    samples = {name: Samples() for name in names}
    lateness: list[float] = []
    rounds = int(rate * duration)
    total = rounds * len(names)
    interval = 1.0 / (rate * len(names))
    # Each round visits every target once in a fresh random order: with a fixed order, the
    # target sent just after a slow one would always share the loop with its response.
    shuffle = random.Random(0)
    order: list[str] = []
    for _ in range(rounds):
        order += shuffle.sample(names, len(names))
    tasks: set[asyncio.Task[None]] = set()
    all_sent = asyncio.Event()
    stop = threading.Event()

    async def one(name: str, index: int, scheduled: float) -> None:
        pool = pools[name]
        connection = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                connection = await pool.get()
                status, _ = await connection.exchange(requests[name][index % USERS])
            samples[name].record(status, time.perf_counter() - scheduled)
            pool.put(connection)
        except (*_ERRORS, TimeoutError):
            samples[name].errors += 1
            if connection is not None:
                await pool.replace(connection)

    def fire(index: int, scheduled: float) -> None:
        lateness.append(time.perf_counter() - scheduled)
        task = loop.create_task(one(order[index], index // len(names), scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if index == total - 1:
            all_sent.set()

    def schedule(start: float) -> None:
        # Loop timers are no good here: asyncio's wake up to a millisecond late and uvloop's
        # busy-spin below a millisecond, taking a core from the processes being measured. A
        # thread sleeps to each send time and wakes the loop, which does the I/O.
        _precise_timer_thread()
        for index in range(total):
            scheduled = start + index * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if stop.is_set():
                return
            try:
                loop.call_soon_threadsafe(fire, index, scheduled)
            except RuntimeError:  # the loop is closing
                return

    thread = threading.Thread(target=schedule, args=(time.perf_counter() + 0.1,), daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        await all_sent.wait()
        if tasks:
            await asyncio.wait(tasks)
    finally:
        stop.set()
        for pool in pools.values():
            pool.close()
    lateness.sort()
    return {
        "mode": "open",
        "rate_per_target": rate,
        "elapsed_s": time.perf_counter() - started,
        "lateness_p50_ms": percentile(lateness, 0.5) * 1000,
        "lateness_p99_ms": percentile(lateness, 0.99) * 1000,
        "targets": {name: samples[name].summary() for name in names},
    }


async def closed_loop(
    port: int, *, connections: int, duration: float, max_requests: int, stream_every: int
) -> dict[str, Any]:
    """`connections` clients, each sending its next request as soon as the last one ended."""
    plain = build_requests(port, stream=False)
    streaming = build_requests(port, stream=True)
    samples = Samples()
    issued = 0
    deadline = time.perf_counter() + duration

    async def client() -> None:
        nonlocal issued
        connection = await Connection.open(port)
        try:
            while issued < max_requests and time.perf_counter() < deadline:
                index = issued
                issued += 1
                batch = streaming if stream_every and index % stream_every == 0 else plain
                sent = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        status, _ = await connection.exchange(batch[index % USERS])
                except (*_ERRORS, TimeoutError):
                    samples.errors += 1
                    connection.close()
                    connection = await Connection.open(port)
                    continue
                samples.record(status, time.perf_counter() - sent)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    summary = samples.summary()
    return {
        "mode": "closed",
        "elapsed_s": elapsed,
        "rps": summary["ok"] / elapsed,
        "targets": {"closed": summary},
    }


async def first_byte(targets: dict[str, int], *, count: int, max_tokens: int) -> dict[str, Any]:
    """`count` streaming requests per target, one at a time, targets taking turns."""
    connections = {name: await Connection.open(port) for name, port in targets.items()}
    requests = {
        name: build_requests(port, stream=True, max_tokens=max_tokens)
        for name, port in targets.items()
    }
    samples = {name: Samples() for name in targets}
    names = list(targets)
    try:
        for index in range(count):
            # Alternate who goes first, so neither target always follows the other.
            for name in names if index % 2 == 0 else reversed(names):
                sent = time.perf_counter()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, first = await connections[name].exchange(requests[name][index % USERS])
                samples[name].record(status, first - sent)
    finally:
        for connection in connections.values():
            connection.close()
    return {"mode": "ttfb", "targets": {name: samples[name].summary() for name in names}}


def _target(value: str) -> tuple[str, int]:
    name, _, port = value.partition("=")
    if not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {value!r}")
    return name, int(port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._load")
    parser.add_argument("mode", choices=["open", "closed", "ttfb"])
    parser.add_argument("--target", type=_target, action="append", required=True)
    parser.add_argument("--rate", type=float, default=500.0, help="req/s per target (open)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (open, closed)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10**9, help="at most (closed)")
    parser.add_argument("--stream-every", type=int, default=0, help="every Nth streams (closed)")
    parser.add_argument("--count", type=int, default=300, help="requests per target (ttfb)")
    parser.add_argument("--max-tokens", type=int, default=16, help="per stream (ttfb)")
    args = parser.parse_args(argv)
    targets = dict(args.target)
    if args.mode == "open":
        result = uvloop.run(
            open_loop(targets, rate=args.rate, duration=args.duration, connections=args.connections)
        )
    elif args.mode == "closed":
        if len(targets) != 1:
            parser.error("closed mode takes one --target")
        result = uvloop.run(
            closed_loop(
                next(iter(targets.values())),
                connections=args.connections,
                duration=args.duration,
                max_requests=args.requests,
                stream_every=args.stream_every,
            )
        )
    else:
        result = uvloop.run(first_byte(targets, count=args.count, max_tokens=args.max_tokens))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
