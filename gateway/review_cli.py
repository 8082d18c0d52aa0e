"""`shadowgate review ...` for reviewers in a terminal, and `shadowgate review export`, which
writes judged items as a golden set (JSON lines) straight from Redis."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import redis

from gateway.config import apply_environment, load_config
from gateway.constants import KEY_VERDICTS
from gateway.errors import ConfigError, ShadowgateError
from gateway.redis_client import configured_url
from gateway.review import LABELS


def add_parser(sub: Any) -> None:
    review = sub.add_parser("review", help="review queued pairs from the terminal")
    review.add_argument("--url", default=os.environ.get("SHADOWGATE_CONTROL_URL",
                        "http://127.0.0.1:8081"), help="control-plane URL")  # fmt: skip
    review.add_argument("--reviewer", default=os.environ.get("USER", ""), help="your name")
    actions = review.add_subparsers(dest="action", required=True)
    nxt = actions.add_parser("next", help="claim the next item and show it")
    nxt.add_argument("--route", help="only items of this route")
    nxt.add_argument("--flag", help="only items with this candidate flag (e.g. refusal)")
    verdict = actions.add_parser("verdict", help="judge an item you hold")
    verdict.add_argument("id")
    verdict.add_argument("label", choices=LABELS)
    verdict.add_argument("--tag", action="append", default=[])
    verdict.add_argument("--note")
    release = actions.add_parser("release", help="give an item back")
    release.add_argument("id")
    actions.add_parser("stats", help="queue depth, verdicts, time to verdict")
    export = actions.add_parser("export", help="write judged items as a golden set")
    export.add_argument("out", type=Path)
    export.add_argument("--config", required=True, help="the gateway's config (for Redis)")
    export.add_argument("--label", choices=LABELS, action="append")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    review.set_defaults(func=run)


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    token = os.environ.get("SHADOWGATE_REVIEWER_TOKEN")
    if not token:
        raise ConfigError("SHADOWGATE_REVIEWER_TOKEN: set it to your reviewer token")
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        method=method,
        data=orjson.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "x-reviewer": args.reviewer,
                 "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return orjson.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        detail = orjson.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        raise ShadowgateError(f"{method} {path}: {exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise ShadowgateError(f"cannot reach {args.url}: {exc.reason}") from None


def _show(item: dict[str, Any]) -> None:
    pair, score = item["pair"], item.get("score", {})
    messages = (pair.get("request") or {}).get("messages") or []
    prompt = messages[-1].get("content") if messages else pair.get("request")
    print(
        f"item {item['id']}  route {pair['route']}  reasons: {', '.join(score.get('reasons', []))}"
    )
    for title, text in (
        ("prompt", prompt),
        ("production", pair["production"].get("text") or pair["production"].get("error")),
        ("candidate", pair["candidate"].get("text") or pair["candidate"].get("error")),
    ):
        print(f"--- {title}")
        print(textwrap.fill(str(text or ""), width=100))
    print(f"judge with: shadowgate review verdict {item['id']} regression|acceptable|improvement")


def export(args: argparse.Namespace) -> int:
    config = apply_environment(load_config(Path(args.config)))
    client = redis.Redis.from_url(configured_url(config))
    key = config.redis.key_prefix + KEY_VERDICTS
    total = int(client.xlen(key))
    written = 0
    seen = 0
    tty = sys.stderr.isatty()
    with args.out.open("wb") as out:
        start = "-"
        while True:
            entries: Any = client.xrange(key, min=start, count=500)
            if start != "-":
                entries = entries[1:]
            if not entries:
                break
            for _, fields in entries:
                seen += 1
                verdict = orjson.loads(fields[b"data"])
                if args.label and verdict["label"] not in args.label:
                    continue
                pair = (verdict.get("item") or {}).get("pair") or {}
                record = {
                    "pair_id": verdict.get("pair_id"),
                    "route": verdict.get("route"),
                    "request": pair.get("request"),
                    "production": (pair.get("production") or {}).get("text"),
                    "candidate": (pair.get("candidate") or {}).get("text"),
                    "label": verdict["label"],
                    "tags": verdict.get("tags", []),
                    "note": verdict.get("note"),
                    "reviewer": verdict.get("reviewer"),
                    "decided_at": verdict.get("decided_at"),
                }
                out.write(orjson.dumps(record) + b"\n")
                written += 1
            start = entries[-1][0].decode()
            if tty:
                width = 30
                done = int(width * seen / max(total, 1))
                sys.stderr.write(f"\r[{'#' * done}{' ' * (width - done)}] {seen}/{total}")
    if tty:
        sys.stderr.write("\n")
    client.close()
    print(f"wrote {written} of {total} verdicts to {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "export":
        return export(args)
    if args.action == "next":
        query = urllib.parse.urlencode(
            {k: v for k, v in (("route", args.route), ("flag", args.flag)) if v}
        )
        item = _call(args, "POST", "/review/claim" + (f"?{query}" if query else ""))
        if item is None:
            print("the review queue is empty")
        else:
            _show(item)
    elif args.action == "verdict":
        body = {"label": args.label, "tags": args.tag, "note": args.note}
        result = _call(args, "POST", f"/review/{args.id}/verdict", body)
        print(f"recorded: {result['label']} by {result['reviewer']}")
    elif args.action == "release":
        _call(args, "POST", f"/review/{args.id}/release")
        print(f"released {args.id}")
    else:
        print(
            orjson.dumps(_call(args, "GET", "/review/stats"), option=orjson.OPT_INDENT_2).decode()
        )
    return 0
