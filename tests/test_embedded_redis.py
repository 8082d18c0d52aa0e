from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from gateway.errors import ConfigError
from gateway.serving.embedded_redis import EmbeddedRedis


def test_embedded_redis_answers_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(state_dir=tmp_path)
    server.start()
    pid = server.pid
    assert pid is not None
    client = redis.Redis(unix_socket_path=str(server.socket_path))
    assert client.ping()
    client.close()
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_embedded_redis_keeps_data_across_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(state_dir=tmp_path) as server:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        client.set("k", "v")
        client.close()
    with EmbeddedRedis(state_dir=tmp_path) as server:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        assert client.get("k") == b"v"
        client.close()


def test_embedded_redis_refuses_overlong_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ConfigError, match=r"^state_dir: .* too long for a unix socket"):
        EmbeddedRedis(state_dir=deep).start()
