"""The gateway's cost on the user's path, measured in one run on this machine.

    python -m benchmarks.proxy_bench [--quick]

Against nginx serving a fixed 1 KB JSON answer: direct, through an nginx `proxy_pass` (the
physical reference) and through shadowgate, at a fixed 500 req/s (open loop) and at maximum
throughput (closed loop); shadowgate again with `shadow_percent: 100` and a candidate that
never answers; streaming time to first byte against the simulator; the gateway's RSS before
and after a long run with every request mirrored. Prints figures and ratios; asserts nothing.
Needs nginx (`apt-get install nginx-light`). Loopback only.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import psutil
import yaml

from gateway.processes import Child, free_port, shadowgate_command

ADMIN_TOKEN = "bench-admin"
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x" * 820},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 200, "total_tokens": 209},
    }
).decode()

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 2048; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{origin};
    location / {{ default_type application/json; return 200 '{answer}'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy};
    location / {{
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def hung_server(port: int) -> None:
    """Accept connections and never answer: a candidate that hangs."""
    with socket.create_server(("127.0.0.1", port)) as server:
        held = []
        while True:
            conn, _ = server.accept()
            held.append(conn)


def load(port: int, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._load", "--port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


def admin_put(control_port: int, body: dict[str, float]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{control_port}/admin/traffic",
        method="PUT",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def metrics_text(control_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{control_port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def start_gateway(
    workdir: Path, name: str, production: str, candidate: str, children: list[Child]
) -> tuple[Child, int, int]:
    port, control = free_port(), free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "control": {"host": "127.0.0.1", "port": control},
        "upstreams": {"production": {"url": production}, "candidate": {"url": candidate}},
        "shadow": {"timeout_s": 300, "noise_percent": 0},
        "state_dir": str(workdir / name),
        "log_level": "warning",
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    child = Child(
        name,
        shadowgate_command("serve", "--config", str(path)),
        log_path=workdir / f"{name}.log",
        env={"SHADOWGATE_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    children.append(child)
    child.wait_ready(f"http://127.0.0.1:{control}/readyz", timeout_s=30)
    return child, port, control


def run(quick: bool) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("proxy_bench: nginx is not installed (apt-get install nginx-light)")
    seconds = "4" if quick else "10"
    long_run = 10_000 if quick else 50_000
    workdir = Path(tempfile.mkdtemp(prefix="sgb-"))
    children: list[Child] = []
    rows: list[tuple[str, str]] = []
    try:
        origin, nginx_proxy, hung = free_port(), free_port(), free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(dir=workdir, origin=origin, proxy=nginx_proxy, answer=ANSWER)
        )
        children.append(
            Child(
                "nginx",
                [nginx, "-c", str(conf), "-p", str(workdir)],
                log_path=workdir / "nginx.out",
                env={},
            )
        )
        children.append(
            Child(
                "hung",
                [sys.executable, "-m", "benchmarks.proxy_bench", "--hung", str(hung)],
                log_path=workdir / "hung.out",
                env={},
            )
        )
        sims = {}
        for name in ("sim-production", "sim-candidate"):
            sims[name] = free_port()
            sim = Child(
                name,
                shadowgate_command("simulate", "--profile", "fast", "--port", str(sims[name])),
                log_path=workdir / f"{name}.log",
                env={},
            )
            children.append(sim)
            sim.wait_ready(f"http://127.0.0.1:{sims[name]}/healthz")
        time.sleep(0.5)
        _, gw_port, gw_control = start_gateway(
            workdir, "gw-nginx", f"http://127.0.0.1:{origin}", f"http://127.0.0.1:{hung}",
            children,
        )  # fmt: skip
        sim_gw, sim_gw_port, sim_gw_control = start_gateway(
            workdir,
            "gw-sim",
            f"http://127.0.0.1:{sims['sim-production']}",
            f"http://127.0.0.1:{sims['sim-candidate']}",
            children,
        )
        for port in (origin, nginx_proxy, gw_port):  # warm up pools and code paths
            load(port, "--mode", "closed", "--connections", "4", "--duration", "1")

        fixed = ("--mode", "open", "--rate", "500", "--duration", seconds, "--connections", "16")
        direct = load(origin, *fixed)
        via_nginx = load(nginx_proxy, *fixed)
        via_gw = load(gw_port, *fixed)
        admin_put(gw_control, {"shadow_percent": 100})
        time.sleep(1.2)
        via_gw_shadow = load(gw_port, *fixed)
        admin_put(gw_control, {"shadow_percent": 0})
        dropped = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics_text(gw_control).splitlines()
            if line.startswith('shadowgate_shadow_total{outcome="dropped_saturated"}')
        )

        def added(row: dict[str, Any], key: str) -> float:
            return float(row[key] - direct[key])

        rows.append(
            ("direct p50 / p99 at 500 req/s", f"{direct['p50_ms']:.3f} / {direct['p99_ms']:.3f} ms")
        )
        rows.append(
            (
                "nginx proxy_pass added p50 / p99",
                f"{added(via_nginx, 'p50_ms'):.3f} / {added(via_nginx, 'p99_ms'):.3f} ms",
            )
        )
        rows.append(
            (
                "shadowgate added p50 / p99",
                f"{added(via_gw, 'p50_ms'):.3f} / {added(via_gw, 'p99_ms'):.3f} ms",
            )
        )
        rows.append(
            (
                "shadowgate, shadow 100% + hung candidate: p50 / p99",
                f"{via_gw_shadow['p50_ms']:.3f} / {via_gw_shadow['p99_ms']:.3f} ms "
                f"({dropped:.0f} mirrors dropped_saturated)",
            )
        )
        rows.append(("user p99 with shadow 100% / shadow 0%",
                     f"{via_gw_shadow['p99_ms'] / via_gw['p99_ms']:.3f}"))  # fmt: skip

        closed = ("--mode", "closed", "--connections", "8", "--duration", seconds)
        targets = (("direct", origin), ("nginx", nginx_proxy), ("gateway", gw_port))
        rps = {name: load(port, *closed)["rps"] for name, port in targets}
        rows.append(
            (
                "max req/s direct / nginx / shadowgate (8 connections)",
                f"{rps['direct']:.0f} / {rps['nginx']:.0f} / {rps['gateway']:.0f}",
            )
        )
        rows.append(
            ("shadowgate max req/s vs nginx proxy_pass", f"{rps['gateway'] / rps['nginx']:.3f}")
        )

        stream_direct = load(sims["sim-production"], "--mode", "ttfb", "--count", "300")
        stream_gw = load(sim_gw_port, "--mode", "ttfb", "--count", "300")
        rows.append(
            (
                "streaming TTFB p50 direct / via shadowgate",
                f"{stream_direct['p50_ms']:.3f} / {stream_gw['p50_ms']:.3f} ms",
            )
        )
        rows.append(("streaming TTFB added p50 / p99",
                     f"{stream_gw['p50_ms'] - stream_direct['p50_ms']:.3f} / "
                     f"{stream_gw['p99_ms'] - stream_direct['p99_ms']:.3f} ms"))  # fmt: skip

        admin_put(sim_gw_control, {"shadow_percent": 100})
        time.sleep(1.2)
        process = psutil.Process(sim_gw.process.pid)
        rss_before = process.memory_info().rss
        done = 0
        while done < long_run:
            result = load(sim_gw_port, "--mode", "closed", "--connections", "8", "--duration", "5")
            done += int(result["requests"])
        time.sleep(2)
        rss_after = process.memory_info().rss
        published = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics_text(sim_gw_control).splitlines()
            if line.startswith("shadowgate_pairs_published_total")
        )
        growth = (rss_after - rss_before) / 2**20
        rows.append((f"gateway RSS before / after {done} requests, all mirrored",
                     f"{rss_before / 2**20:.1f} / {rss_after / 2**20:.1f} MiB "
                     f"(+{growth:.1f} MiB, {published:.0f} pairs published)"))  # fmt: skip
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    width = max(len(name) for name, _ in rows)
    print("shadowgate proxy benchmark (loopback, this machine, one run)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about a minute)")
    parser.add_argument("--hung", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hung:
        hung_server(args.hung)
    else:
        run(args.quick)


if __name__ == "__main__":
    main()
