"""`shadowgate rollout status|start|pause|resume|abort` against the admin API."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.control_client import add_url_option, call, env_token
from gateway.errors import ConfigError


def add_parser(sub: Any) -> None:
    rollout = sub.add_parser("rollout", help="drive or inspect the canary rollout")
    add_url_option(rollout)
    rollout.add_argument("action", choices=["status", "start", "pause", "resume", "abort"])
    rollout.add_argument("--steps", help="with start: comma-separated percentages, e.g. 1,5,25")
    rollout.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    token = env_token("SHADOWGATE_ADMIN_TOKEN", "the admin token")
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
    body_sent = body if method == "POST" else None
    state = call(args.url, method, path, token=token, failure=args.action, body=body_sent)
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
