"""The Grafana dashboard (config/grafana/shadowgate.json) reads only metrics the gateway
exports, and covers arms, shadow outcomes, divergence, flags, review and rollout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import RigFactory
from tests.metric_names import live_metric_names, promql_metric_names

DASHBOARD = Path(__file__).resolve().parent.parent / "config" / "grafana" / "shadowgate.json"


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query, rows' nested panels included."""
    found: list[tuple[str, str]] = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []) if "expr" in t)
    return found


def test_dashboard_is_grafana_json_with_a_prometheus_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "shadowgate"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for title, _ in _queries(dashboard):
        assert title


async def test_every_dashboard_query_names_a_metric_the_gateway_exports(
    make_rig: RigFactory,
) -> None:
    exported = await live_metric_names(make_rig)
    queries = _queries(json.loads(DASHBOARD.read_text()))
    assert queries
    unknown = {
        (title, name)
        for title, expr in queries
        for name in promql_metric_names(expr)
        if name not in exported
    }
    assert not unknown, f"queries name metrics the gateway does not export: {sorted(unknown)}"


def test_dashboard_shows_arms_shadow_divergence_review_and_rollout() -> None:
    used = {
        name for _, expr in _queries(json.loads(DASHBOARD.read_text()))
        for name in promql_metric_names(expr)
    }  # fmt: skip
    wanted = {
        "shadowgate_requests_total",  # requests by arm
        "shadowgate_upstream_latency_seconds_bucket",  # latency by arm
        "shadowgate_shadow_total",  # shadow outcomes
        "shadowgate_divergence_excess_bucket",  # divergence
        "shadowgate_flags_total",  # flags
        "shadowgate_review_queue_depth",  # review queue
        "shadowgate_rollout_step_percent",  # rollout step
    }
    assert wanted <= used, sorted(wanted - used)
