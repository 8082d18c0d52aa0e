"""nginx as the physical reference: an nginx master with one worker, from a config generated in
a temp dir, listening on 127.0.0.1 only and stopped with its parent. It can serve a fixed JSON
answer, and `proxy_pass` with keep-alive upstream connections to a port (its own or another's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import psutil

from gateway.serving.processes import Child

_MAIN = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{servers}}}
"""
_ANSWER = """\
  server {{
    listen 127.0.0.1:{port};
    location / {{
      default_type application/json;
      return 200 '{body}';
    }}
  }}
"""
_PROXY = """\
  upstream origin {{
    server 127.0.0.1:{upstream};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
"""


def chat_completion(size: int) -> bytes:
    """An OpenAI chat completion JSON document of exactly `size` bytes."""
    document = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 160, "total_tokens": 184},
    }
    padding = size - len(orjson.dumps(document))
    if padding < 0:
        raise ValueError(f"a chat completion needs more than {size} bytes")
    words = ("word " * (padding // 5 + 1))[:padding]
    document["choices"][0]["message"]["content"] = words  # type: ignore[index]
    return orjson.dumps(document)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


class Nginx:
    """One nginx instance: `answer` serves `body` on a port, `proxy` forwards a port to one."""

    def __init__(
        self,
        name: str,
        *,
        binary: str,
        workdir: Path,
        answer: tuple[int, bytes] | None = None,
        proxy: tuple[int, int] | None = None,
    ) -> None:
        servers = ""
        self.ports: list[int] = []
        if answer is not None:
            port, body = answer
            if b"'" in body or b"$" in body or b"\\" in body:
                raise ValueError("the answer must not contain nginx quoting characters")
            servers += _ANSWER.format(port=port, body=body.decode())
            self.ports.append(port)
        if proxy is not None:
            port, upstream = proxy
            servers += _PROXY.format(port=port, upstream=upstream)
            self.ports.append(port)
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "nginx.conf"
        conf.write_text(_MAIN.format(dir=workdir, servers=servers))
        self.child = Child(
            name,
            # -e: the error log from the very start, before the config is read.
            [binary, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")],
            log_path=workdir / "nginx.out",
            env={},
            die_with_parent=True,
        )

    def wait_ready(self) -> None:
        for port in self.ports:
            self.child.wait_ready(f"http://127.0.0.1:{port}/healthz", timeout_s=10)

    def worker(self) -> psutil.Process:
        """The single worker process, which serves every port of this instance."""
        return psutil.Process(self.child.process.pid).children()[0]

    def stop(self) -> None:
        self.child.stop()
