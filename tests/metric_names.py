"""Metric names: the ones a PromQL expression reads, and the ones an exposition offers."""

from __future__ import annotations

import re

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from scoring.aggregates import metric_families
from tests.conftest import RigFactory

# Grafana's interval macros, replaced by a duration so that the query parses.
_GRAFANA_MACRO = re.compile(r"\$\{?__(rate_interval|interval|range)\b\}?")

# Sample names a family of each type writes (`_created` only where it has samples).
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
    "gauge": ("",),
}


def promql_metric_names(expr: str) -> set[str]:
    """Every metric name a query selects (by name or by a `__name__=` matcher)."""
    tree = promql_parser.parse(_GRAFANA_MACRO.sub("5m", expr))
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(
                m.value
                for m in node.matchers.matchers
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
            )

    promql_parser.walk(tree, visit)
    return names


def exposition_names(text: str) -> set[str]:
    """Every sample name a Prometheus text exposition offers, also for families that have
    no sample yet (a labelled counter before its first increment)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def aggregate_names() -> set[str]:
    """Names of the scoring aggregates, which appear on /metrics once workers wrote some."""
    names: set[str] = set()
    for family in metric_families({}, review_depth=0.0):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


async def live_metric_names(make_rig: RigFactory) -> set[str]:
    """What a running gateway's /metrics offers, plus the scoring aggregates (written by
    workers) and the rollout gauges (once the rollout state was read)."""
    rig = await make_rig()
    await (await rig.client.get("/echo")).read()
    await rig.wait_for(lambda: rig.gateway.rollout_view.state is not None)
    text = await (await rig.control.get("/metrics")).text()
    return exposition_names(text) | aggregate_names()
