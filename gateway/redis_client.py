"""Opens the asyncio Redis client with short timeouts: callers own their retry and backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo

from gateway.config import Config, RedisConfig


def connect(config: RedisConfig, url: str) -> Redis:
    """A client for `url`; connects lazily, so a dead Redis does not stop start-up."""
    return Redis.from_url(
        url,
        socket_timeout=config.socket_timeout_s,
        socket_connect_timeout=config.socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        # Given explicitly: otherwise each new connection looks the version up in the
        # installed package metadata, a blocking file read on the event loop.
        driver_info=DriverInfo(name="redis-py", lib_version=redis.__version__),
    )


def configured_url(config: Config) -> str:
    """`redis.url`, or the socket of the embedded server `shadowgate serve` runs without one."""
    return config.redis.url or f"unix://{(config.state_dir / 'redis.sock').resolve()}"


@asynccontextmanager
async def connected_pipeline(redis: Redis) -> AsyncIterator[Pipeline]:
    """A pipeline on a connection taken and connected before the block runs.

    An error raised before the block is entered means nothing of it was sent; one raised
    inside may come after Redis applied some commands (the client never retries). A block
    that fails or is cancelled may leave a reply nobody will read, so its connection is
    closed before it goes back to the pool rather than handed to the next caller."""
    connection = await redis.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    pipe = redis.pipeline(transaction=False)
    pipe.connection = connection  # the pipeline hands it back to the pool when done
    try:
        yield pipe
    except BaseException:
        # Still ours (execute() keeps it when loading a script fails or is cancelled).
        if pipe.connection is not None:
            await pipe.connection.disconnect(nowait=True)
        raise
    finally:
        await pipe.reset()  # type: ignore[no-untyped-call]


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that redis-py turned into a connection error.

    Cancelled in the middle of a command, redis-py drops the connection and may raise
    ConnectionError instead of CancelledError; a retry loop that catches RedisError would
    then swallow its own shutdown."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def as_text(value: object) -> str:
    """A value from a Redis reply as str: bytes decoded (a client without decode_responses),
    anything else through str()."""
    return value.decode() if isinstance(value, bytes) else str(value)
