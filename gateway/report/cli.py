"""`shadowgate report --since 1h [--html OUT]`: production, the canary and the shadow arm over
a window, read from the gateway's Redis; a table in the terminal, plots in the HTML file."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any

import uvloop
from redis.exceptions import RedisError

from gateway.config import Config, apply_environment, load_config
from gateway.errors import ConfigError, ShadowgateError
from gateway.redis_client import configured_url, connect
from gateway.report.build import gather_report
from gateway.report.model import Report
from gateway.report.table import render_text

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 90s, 15m, 1h or 2d."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--since: expected a duration such as 15m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="production, canary and shadow over a time window")
    report.add_argument(
        "--config",
        default=os.environ.get("SHADOWGATE_CONFIG"),
        help="the gateway's config (default: $SHADOWGATE_CONFIG)",
    )
    report.add_argument("--redis-url", help="overrides redis.url")
    report.add_argument("--since", default="1h", help="window up to now: 15m, 1h, 2d (1h)")
    report.add_argument("--html", type=Path, metavar="OUT", help="also write an HTML report")
    report.add_argument(
        "--max-records",
        type=int,
        default=10_000,
        help="newest records read from each stream (10000)",
    )
    report.set_defaults(func=run)


async def load_report(config: Config, url: str, *, since_s: float, max_records: int) -> Report:
    """Gather the report of the last `since_s` seconds from the Redis at `url`."""
    redis = connect(config.redis, url)
    until = time.time()
    try:
        return await gather_report(
            redis, config=config, since=until - since_s, until=until, max_records=max_records
        )
    except (RedisError, OSError) as exc:
        raise ShadowgateError(f"cannot read from Redis at {url}: {exc}") from None
    finally:
        await redis.aclose()


def run(args: argparse.Namespace) -> int:
    if not args.config:
        raise ConfigError("--config: the gateway's config file (or set SHADOWGATE_CONFIG)")
    config = apply_environment(load_config(Path(args.config)))
    since_s = parse_duration(args.since)
    url = args.redis_url or configured_url(config)
    report = uvloop.run(load_report(config, url, since_s=since_s, max_records=args.max_records))
    print(render_text(report), end="")
    if args.html is not None:
        try:
            from gateway.report.html import render_html
        except ImportError as exc:
            raise ShadowgateError(
                f"--html needs {exc.name}: pip install 'shadowgate[report]'"
            ) from None
        args.html.write_text(render_html(report), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0
