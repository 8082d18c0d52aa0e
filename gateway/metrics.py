"""Prometheus metrics of one gateway process, in a registry of its own (no global state).

With `serve --workers N`, each data-plane process writes its values to files (prometheus_client
multiprocess mode, PROMETHEUS_MULTIPROC_DIR set in its environment by the parent), and the
parent's registry adds up every process's files: counters and histogram buckets are summed,
gauges by the mode given with each.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.constants import METRIC_PREFIX as P

# Upstream latencies run from sub-millisecond (cached or tiny answers) to minutes (long streams).
_SUB_SECOND = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
_LATENCY_BUCKETS = (*_SUB_SECOND, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """Every metric the gateway writes, registered in `registry`."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, aggregate_dir: Path | None = None
    ) -> None:
        """`aggregate_dir`: the directory the data-plane processes write their values to. The
        exposed `registry` then adds those up, and this process's own metrics stay out of it
        (the process that aggregates serves no data-plane traffic itself)."""
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.aggregate_dir = aggregate_dir
        r = self.registry
        if aggregate_dir is not None:
            MultiProcessCollector(self.registry, path=str(aggregate_dir))  # type: ignore[no-untyped-call]
            r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"{P}requests", "Proxied requests by arm and status code", ["arm", "status"], registry=r
        )
        self.upstream_latency = Histogram(
            f"{P}upstream_latency_seconds",
            "Time from sending a request upstream to its last byte, by arm",
            ["arm"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_ttfb = Histogram(
            f"{P}upstream_ttfb_seconds",
            "Time from sending a request upstream to its response headers, by arm",
            ["arm"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            f"{P}upstream_errors",
            "Upstream failures answered by the gateway itself, by arm and kind",
            ["arm", "kind"],
            registry=r,
        )
        self.client_disconnects = Counter(
            f"{P}client_disconnects", "Clients that left before their response ended", registry=r
        )
        self.client_timeouts = Counter(
            f"{P}client_timeouts",
            "Requests answered 408 because the client was too slow, by phase (header, body)",
            ["phase"],
            registry=r,
        )
        self.requests_refused = Counter(
            f"{P}requests_refused",
            "Requests refused before reaching an upstream, by reason",
            ["reason"],
            registry=r,
        )
        self.shutdown_cuts = Counter(
            f"{P}shutdown_cuts",
            "Requests still in flight when the shutdown grace period ended, cut",
            registry=r,
        )
        self.request_targets = Counter(
            f"{P}request_targets",
            "Requests whose target was not a path, by form: absolute (rewritten to its path), "
            "authority or asterisk (refused with 400)",
            ["form"],
            registry=r,
        )
        self.shadow = Counter(f"{P}shadow", "Mirrored requests by outcome", ["outcome"], registry=r)
        self.shadow_skipped = Counter(
            f"{P}shadow_skipped",
            "Requests sampled for shadowing but not mirrored, by reason",
            ["reason"],
            registry=r,
        )
        self.shadow_in_flight = Gauge(
            f"{P}shadow_in_flight",
            "Mirrored requests currently in flight",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.pairs_published = Counter(
            f"{P}pairs_published", "Pair records written to Redis", registry=r
        )
        self.pairs_dropped = Counter(
            f"{P}pairs_dropped", "Pair records lost, by reason", ["reason"], registry=r
        )
        self.arm_stats_unconfirmed = Counter(
            f"{P}arm_stats_unconfirmed",
            "Arm-stat increments dropped when a flush may have reached Redis unanswered",
            registry=r,
        )
        self.publish_buffer = Gauge(
            f"{P}publish_buffer",
            "Pair records waiting in the local publish buffer",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Across processes: 0 as soon as one of them lost Redis.
        self.redis_up = Gauge(
            f"{P}redis_up",
            "1 when the last Redis operation succeeded",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.pii = Counter(
            f"{P}pii_scrubbed",
            "PII values replaced in mirrored data, by entity",
            ["entity"],
            registry=r,
        )
        # The serving process's own state: exposed as they are, even where the data-plane
        # processes' values are aggregated from files.
        self.child_restarts = Counter(
            f"{P}child_restarts",
            "Children of `shadowgate serve` restarted after they ended, by component",
            ["component"],
            registry=self.registry,
        )
        # Each data-plane process checks the components itself (its own publisher above all),
        # so with several, these gauges come from their files like the others, and a dead
        # process's values leave with it: a component is up while every process sees it up.
        self.component_up = Gauge(
            f"{P}component_up",
            "1 when the component works: redis answers, a scoring worker's heartbeat is live, "
            "the pair publisher is writing",
            ["component"],
            registry=r,
            multiprocess_mode="livemin",
        )
        # Every process reads the same heartbeats from Redis: the count is not summed.
        self.workers_alive = Gauge(
            f"{P}scoring_workers_alive",
            "Scoring workers whose heartbeat in Redis is live",
            registry=r,
            multiprocess_mode="livemax",
        )


class ProcessMetrics:
    """The data-plane processes of `serve --workers N`, as their parent sees them."""

    def __init__(self, metrics: Metrics) -> None:
        self.data_processes = Gauge(
            f"{P}data_processes", "Data-plane processes serving now", registry=metrics.registry
        )
        # Restarted data-plane processes count beside the embedded Redis and worker.
        self.restarts = metrics.child_restarts
