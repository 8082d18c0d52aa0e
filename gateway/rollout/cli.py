"""`shadowgate rollout status|start|pause|resume|abort` against the admin API."""

from __future__ import annotations

import argparse
import os
import urllib.error
import urllib.request
from typing import Any

import orjson

from gateway.errors import ConfigError, ShadowgateError


def add_parser(sub: Any) -> None:
    rollout = sub.add_parser("rollout", help="drive or inspect the canary rollout")
    rollout.add_argument(
        "--url",
        default=os.environ.get("SHADOWGATE_CONTROL_URL", "http://127.0.0.1:8081"),
        help="control-plane URL",
    )
    rollout.add_argument("action", choices=["status", "start", "pause", "resume", "abort"])
    rollout.add_argument("--steps", help="with start: comma-separated percentages, e.g. 1,5,25")
    rollout.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    token = os.environ.get("SHADOWGATE_ADMIN_TOKEN")
    if not token:
        raise ConfigError("SHADOWGATE_ADMIN_TOKEN: set it to the admin token")
    body: dict[str, Any] = {}
    if args.steps:
        try:
            body["steps"] = [float(s) for s in args.steps.split(",")]
        except ValueError:
            raise ConfigError(f"--steps: not a list of numbers: {args.steps!r}") from None
    method, path = (
        ("GET", "/admin/rollout")
        if args.action == "status"
        else ("POST", f"/admin/rollout/{args.action}")
    )
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        method=method,
        data=orjson.dumps(body) if method == "POST" else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            state = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = orjson.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        raise ShadowgateError(f"{args.action}: {exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise ShadowgateError(f"cannot reach {args.url}: {exc.reason}") from None
    steps = state.get("steps") or []
    at = steps[state["step_index"]] if steps else 0
    print(
        f"status {state['status']}  step {at:g}% of {', '.join(f'{s:g}' for s in steps) or '-'}"
        f"  look {state['look']}  {state.get('reason') or ''}".rstrip()
    )
    drift = state.get("drift") or {}
    if drift.get("psi_max") is not None:
        features = ", ".join(f"{k[4:]} {v:.3f}" for k, v in drift.items() if k.startswith("psi:"))
        effect = "holds promotion" if drift["action"] == "hold" else "reported only"
        print(
            f"  input drift ({drift['outcome']}): PSI max {drift['psi_max']:.3f} ({features}) "
            f"against the reference window; {effect}"
        )
    for decision in state.get("history", [])[-5:]:
        outcomes = ", ".join(f"{e['guardrail']} {e['outcome']}" for e in decision["evidence"])
        print(
            f"  {decision['decision']:<8} at {decision['step']:g}% look {decision['look']}"
            f"  {outcomes}"
        )
    return 0
