"""`shadowgate review ...` for reviewers in a terminal, and `shadowgate review export`, which
writes judged items as a golden set (JSON lines) straight from Redis (`export.py`)."""

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
from gateway.control_client import add_url_option, call, env_token
from gateway.keys import Keys
from gateway.records import ReviewItem
from gateway.redis_client import configured_url
from gateway.review.blind import CHOICES
from gateway.review.export import export_golden
from gateway.review.queue import LABELS


def add_parser(sub: Any) -> None:
    review = sub.add_parser("review", help="review queued pairs from the terminal")
    add_url_option(review)
    review.add_argument("--reviewer", default=os.environ.get("USER", ""), help="your name")
    actions = review.add_subparsers(dest="action", required=True)
    nxt = actions.add_parser("next", help="claim the next item and show it")
    nxt.add_argument("--route", help="only items of this route")
    nxt.add_argument("--flag", help="only items with this candidate flag (e.g. refusal)")
    verdict = actions.add_parser("verdict", help="judge an item you hold")
    verdict.add_argument("id")
    verdict.add_argument(
        "label",
        choices=[*LABELS, *CHOICES],
        help="a label, or in blind mode which answer is better",
    )
    verdict.add_argument("--tag", action="append", default=[])
    verdict.add_argument("--note")
    release = actions.add_parser("release", help="give an item back")
    release.add_argument("id")
    actions.add_parser("stats", help="queue depth, verdicts, agreement, your progress")
    export = actions.add_parser("export", help="write judged items as a golden set")
    export.add_argument("out", type=Path)
    export.add_argument("--config", required=True, help="the gateway's config (for Redis)")
    export.add_argument("--label", choices=LABELS, action="append")
    export.add_argument("--format", choices=["jsonl"], default="jsonl")
    export.add_argument(
        "--partial", action="store_true", help="also items still waiting for verdicts"
    )
    review.set_defaults(func=run)


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    token = env_token("SHADOWGATE_REVIEWER_TOKEN", "your reviewer token")
    headers = {"x-reviewer": args.reviewer}
    return call(
        args.url, method, path, token=token, failure=f"{method} {path}", body=body, headers=headers
    )


def _prompt(request: Any) -> Any:
    messages = (request or {}).get("messages") or [] if isinstance(request, dict) else []
    return messages[-1].get("content") if messages else request


def _print_sections(sections: list[tuple[str, Any]]) -> None:
    for title, text in sections:
        print(f"--- {title}")
        print(textwrap.fill(str(text or ""), width=100))


def _print_findings(item: dict[str, Any]) -> None:
    """What the scorer found changed, one sentence a line (sides named as the item names them)."""
    findings = item.get("findings") or []
    if findings:
        print("--- what changed")
    for finding in findings:
        print(f"- {finding['text']}" + (" (within noise)" if finding.get("within_noise") else ""))


def _show(item: dict[str, Any]) -> None:
    if item.get("mode") == "blind":
        answers = item["answers"]
        print(f"item {item['id']}  route {item['route']}  {'; '.join(item.get('evidence', []))}")
        _print_sections(
            [("prompt", _prompt(item.get("request")))]
            + [
                (f"answer {letter}", answers[letter].get("text") or answers[letter].get("error"))
                for letter in ("A", "B")
            ]
        )
        _print_findings(item)
        print(f"judge with: shadowgate review verdict {item['id']} {'|'.join(CHOICES)}")
        return
    # The claimed item is the review item as queued, beside the claim's id and findings.
    review = ReviewItem.model_validate(item)
    pair = review.pair
    print(f"item {item['id']}  route {pair.route}  reasons: {', '.join(review.score.reasons)}")
    _print_sections(
        [
            ("prompt", _prompt(pair.request)),
            ("production", pair.production.text or pair.production.error),
            ("candidate", pair.candidate.text or pair.candidate.error),
        ]
    )
    _print_findings(item)
    print(f"judge with: shadowgate review verdict {item['id']} {'|'.join(LABELS)}")


def export(args: argparse.Namespace) -> int:
    config = apply_environment(load_config(Path(args.config)))
    client = redis.Redis.from_url(configured_url(config))
    tty = sys.stderr.isatty()

    def progress(seen: int, total: int) -> None:
        width = 30
        done = int(width * seen / max(total, 1))
        sys.stderr.write(f"\r[{'#' * done}{' ' * (width - done)}] {seen}/{total}")

    with args.out.open("wb") as out:
        summary = export_golden(
            client,
            Keys.for_prefix(config.redis.key_prefix).verdicts,
            out,
            labels=args.label or (),
            partial=args.partial,
            progress=progress if tty else None,
        )
    if tty:
        sys.stderr.write("\n")
    client.close()
    print(summary.line(str(args.out)))
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
        kind = "choice" if args.label in CHOICES else "label"
        body = {kind: args.label, "tags": args.tag, "note": args.note}
        result = _call(args, "POST", f"/review/{args.id}/verdict", body)
        print(f"recorded: {result[kind]} by {result['reviewer']}")
    elif args.action == "release":
        _call(args, "POST", f"/review/{args.id}/release")
        print(f"released {args.id}")
    else:
        print(
            orjson.dumps(_call(args, "GET", "/review/stats"), option=orjson.OPT_INDENT_2).decode()
        )
    return 0
