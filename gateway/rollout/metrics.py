"""Prometheus view of the traffic split and the canary rollout, for dashboards and alerts.

The split is this replica's live copy; the rollout state lives in Redis and is copied here by
the gateway's refresh loop (a collector cannot await). Every replica reports the same rollout,
so queries take `max` across instances, not `sum`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import get_args

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.constants import METRIC_PREFIX as P
from gateway.proxy.traffic import TrafficState
from gateway.rollout.controller import RolloutState, Status

STATUSES: tuple[str, ...] = get_args(Status)


def rolled_back(state: RolloutState) -> bool:
    """Halted by the controller's own rollback (an operator's abort is not one)."""
    last = state.history[-1].decision if state.history else None
    return state.status == "halted" and last == "rollback"


class RolloutCollector(Collector):
    """`traffic_percent{slice}` always; the rollout gauges once its state was read."""

    def __init__(self, traffic: TrafficState) -> None:
        self._traffic = traffic
        self.state: RolloutState | None = None

    def collect(self) -> Iterator[Metric]:
        split = self._traffic.current.split
        traffic = GaugeMetricFamily(
            f"{P}traffic_percent", "Live share of units per slice", labels=["slice"]
        )
        traffic.add_metric(["shadow"], split.shadow_percent)
        traffic.add_metric(["canary"], split.canary_percent)
        yield traffic
        state = self.state
        if state is None:
            return
        status = GaugeMetricFamily(
            f"{P}rollout_status", "1 for the rollout's current status", labels=["status"]
        )
        for name in STATUSES:
            status.add_metric([name], 1.0 if state.status == name else 0.0)
        yield status
        yield GaugeMetricFamily(
            f"{P}rollout_step_percent",
            "Canary percentage of the rollout's current step (0 before any rollout)",
            value=state.percent,
        )
        yield GaugeMetricFamily(
            f"{P}rollout_rolled_back",
            "1 while the rollout stands halted by its own rollback",
            value=1.0 if rolled_back(state) else 0.0,
        )
