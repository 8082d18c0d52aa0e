"""Tool calls compared as parsed JSON: names, and arguments field by field independent of key
order, formatting and call ids; calls missing from or added by the candidate; a tool call
answered with prose instead."""

from __future__ import annotations

from typing import Any

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._structured import diff, shown
from scoring.signals.parse import ToolCall


def _span(call: ToolCall, text: str) -> tuple[str, int, int]:
    return text[call.start : call.end][:80], call.start, call.end


def compare(pair: PairView) -> list[Evidence]:
    p, c = pair.production, pair.candidate
    if not p.tool_calls and not c.tool_calls:
        return []
    left = list(c.tool_calls)
    unmatched: list[ToolCall] = []
    for call in p.tool_calls:  # identical calls first, in any order
        same = next(
            (o for o in left if o.name == call.name and not diff(call.arguments, o.arguments)), None
        )
        if same is None:
            unmatched.append(call)
        else:
            left.remove(same)
    found: list[Evidence] = []

    def item(message: str, before: ToolCall | None, after: ToolCall | None, path: str) -> None:
        found.append(
            evidence(
                "tool_call",
                "high",
                message,
                _span(before, p.text) if before else None,
                _span(after, c.text) if after else None,
                path=path,
            )
        )

    for call in unmatched:
        same_name = next((o for o in left if o.name == call.name), None)
        other = same_name or (left[0] if left else None)
        if other is None:
            item(f"call {call.name} missing", call, None, call.name)
            continue
        left.remove(other)
        if other.name != call.name:
            item(f"tool {call.name} → {other.name}", call, other, call.name)
            continue
        for d in diff(_args(call), _args(other)):
            what = (
                f": {shown(d.production)} → {shown(d.candidate)}"
                if d.what == "changed"
                else f" {d.what}"
            )
            item(f"{call.name}({d.path}){what}", call, other, f"{call.name}.{d.path}")
    for call in left:
        item(f"extra call {call.name}", None, call, call.name)
    return found


def _args(call: ToolCall) -> Any:
    return call.arguments if isinstance(call.arguments, dict) else {"": call.arguments}
