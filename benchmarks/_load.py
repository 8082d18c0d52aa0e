"""A small HTTP/1.1 load generator on raw asyncio sockets, run as its own process so it does
not share an interpreter with what it measures.

    python -m benchmarks._load --port P --mode open --rate 500 --duration 10
    python -m benchmarks._load --port P --mode closed --connections 8 --duration 10
    python -m benchmarks._load --port P --mode ttfb --count 300 --stream

Open loop sends at a fixed rate and measures from each request's scheduled time, so a stall
is charged to every request it delayed (no coordinated omission). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson
import uvloop

_BODY = orjson.dumps(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "Summarise the plot of Hamlet in one line."}],
    }
)


def build_request(path: str, *, stream: bool, user: int) -> bytes:
    body = _BODY if not stream else _BODY[:-1] + b',"stream":true}'
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"x-user-id: user-{user}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive connection; `send` returns (latency to first body byte, to the end)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, float]:
        """Send and read one response; returns its status and the time to its first body byte."""
        started = time.perf_counter()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        first_byte = 0.0
        if b"content-length:" in lowered:
            length = int(lowered.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await self.reader.readexactly(length)
            first_byte = time.perf_counter() - started
        else:  # chunked
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                if not first_byte:
                    first_byte = time.perf_counter() - started
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status, first_byte

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def open_loop(
    port: int, path: str, rate: float, duration: float, pool: int
) -> dict[str, Any]:
    idle = [await Connection.open(port) for _ in range(pool)]
    latencies: list[float] = []
    errors = 0
    tasks: set[asyncio.Task[None]] = set()
    total = int(rate * duration)
    start = time.perf_counter() + 0.05

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else await Connection.open(port)
        try:
            status, _ = await conn.send(build_request(path, stream=False, user=i % 1000))
            if status >= 500:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn.close()

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def closed_loop(port: int, path: str, connections: int, duration: float) -> dict[str, Any]:
    done = 0
    errors = 0
    deadline = time.perf_counter() + duration

    async def worker(n: int) -> None:
        nonlocal done, errors
        conn = await Connection.open(port)
        request = build_request(path, stream=False, user=n)
        while time.perf_counter() < deadline:
            status, _ = await conn.send(request)
            done += 1
            errors += status >= 500
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    elapsed = time.perf_counter() - started
    return {"requests": done, "errors": errors, "rps": done / elapsed}


async def ttfb(port: int, path: str, count: int) -> dict[str, Any]:
    conn = await Connection.open(port)
    firsts = []
    for i in range(count):
        _, first = await conn.send(build_request(path, stream=True, user=i))
        firsts.append(first)
    conn.close()
    return {"requests": count, "p50_ms": percentile(firsts, 0.5) * 1000,
            "p99_ms": percentile(firsts, 0.99) * 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--mode", choices=["open", "closed", "ttfb"], required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    if args.mode == "open":
        coro: Any = open_loop(args.port, args.path, args.rate, args.duration, args.connections)
    elif args.mode == "closed":
        coro = closed_loop(args.port, args.path, args.connections, args.duration)
    else:
        coro = ttfb(args.port, args.path, args.count)
    sys.stdout.write(orjson.dumps(uvloop.run(coro)).decode() + "\n")


if __name__ == "__main__":
    main()
