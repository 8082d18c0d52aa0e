"""Copies this replica's mirror and publish counters into the shared 10-second buckets, so
`shadowgate report` can set mirrors sent beside pairs published, scored and lost, summed
over every replica for its window. It reads the Prometheus counters the hot path already
bumps, so a mirror's outcome is still counted with one increment there.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter

from gateway.metrics import Metrics
from gateway.proxy.arm_stats import (
    FIELD_MIRROR,
    FIELD_PAIRS_DROPPED,
    FIELD_PAIRS_PUBLISHED,
    ArmStats,
)


def _samples(counter: Counter, field: str) -> Iterator[tuple[str, float]]:
    """(bucket field, total) of each label set: `field` formatted with the labels."""
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                yield field.format(**sample.labels), sample.value


class CounterLedger:
    """Adds what the counters gained since the last copy to the replica's bucket counts."""

    def __init__(self, *, metrics: Metrics, arm_stats: ArmStats) -> None:
        self._metrics = metrics
        self._arm_stats = arm_stats
        self._copied: dict[str, int] = {}

    def _totals(self) -> Iterator[tuple[str, float]]:
        m = self._metrics
        yield from _samples(m.shadow, FIELD_MIRROR + "{outcome}")
        yield from _samples(m.pairs_published, FIELD_PAIRS_PUBLISHED)
        yield from _samples(m.pairs_dropped, FIELD_PAIRS_DROPPED + "{reason}")

    def copy(self) -> None:
        gains: dict[str, int] = {}
        for field, total in self._totals():
            gain = int(total) - self._copied.get(field, 0)
            if gain > 0:
                gains[field] = gain
                self._copied[field] = int(total)
        if gains:
            self._arm_stats.add(gains)
