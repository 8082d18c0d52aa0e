"""The report's plots as PNG images: matplotlib's Agg canvas through the object-oriented API
(no pyplot), so drawing keeps no global figure state."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gateway.proxy.arm_stats import BUCKET_S, LATENCY_BOUNDS
from gateway.report.model import Report

COLOURS = {"production": "#4c72b0", "canary": "#dd8452", "shadow": "#55a868", "noise": "#8c8c8c"}
_POINTS = 120


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _axes(width: float = 7.0, height: float = 3.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def traffic(report: Report) -> bytes | None:
    """Requests and errors per minute-ish step, production and canary."""
    if not report.timeline or not any(sum(c.values()) for _, c in report.timeline):
        return None
    span = report.timeline[-1][0] - report.timeline[0][0] + BUCKET_S
    step = max(BUCKET_S, math.ceil(span / _POINTS / BUCKET_S) * BUCKET_S)
    first = report.timeline[0][0]
    sums: dict[int, dict[str, int]] = {}
    for start, counts in report.timeline:
        slot = sums.setdefault(first + (start - first) // step * step, {})
        for name, count in counts.items():
            slot[name] = slot.get(name, 0) + count
    times = sorted(sums)
    minutes = [(t - times[-1]) / 60 for t in times]
    fig, ax = _axes()
    for arm in ("production", "canary"):
        per_minute = 60 / step
        ax.plot(
            minutes,
            [sums[t].get(f"{arm}:requests", 0) * per_minute for t in times],
            color=COLOURS[arm],
            label=f"{arm} requests",
        )
        ax.plot(
            minutes,
            [sums[t].get(f"{arm}:errors", 0) * per_minute for t in times],
            color=COLOURS[arm],
            linestyle="--",
            label=f"{arm} errors",
        )
    ax.set_xlabel("minutes before the end of the window")
    ax.set_ylabel("per minute")
    ax.legend(fontsize="small")
    return _png(fig)


def latency(report: Report) -> bytes | None:
    """Share of each arm's requests per latency bucket."""
    arms = [a for a in report.arms if sum(a.latency_buckets)]
    if not arms:
        return None
    labels = [f"≤{b:g}" for b in LATENCY_BOUNDS] + [f">{LATENCY_BOUNDS[-1]:g}"]
    fig, ax = _axes()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        total = sum(arm.latency_buckets)
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(
            xs,
            [c / total for c in arm.latency_buckets],
            width,
            color=COLOURS[arm.arm],
            label=arm.arm,
        )
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels, rotation=45)
    ax.set_xlabel("latency bucket (s)")
    ax.set_ylabel("share of requests")
    ax.legend(fontsize="small")
    return _png(fig)


def errors(report: Report) -> bytes | None:
    """Each arm's error rate with its Wilson 95% interval."""
    arms = [a for a in report.arms if a.error_interval is not None]
    if not arms:
        return None
    fig, ax = _axes(5.0, 3.0)
    for x, arm in enumerate(arms):
        assert arm.error_interval is not None and arm.error_rate is not None
        low, high = arm.error_interval
        rate = 100 * arm.error_rate
        spread = [[max(0.0, rate - 100 * low)], [max(0.0, 100 * high - rate)]]
        ax.errorbar([x], [rate], yerr=spread, fmt="o", capsize=6, color=COLOURS[arm.arm])
    ax.set_xticks(range(len(arms)), [a.arm for a in arms])
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.set_ylabel("error rate, % (95% CI)")
    return _png(fig)


def divergence(report: Report) -> bytes | None:
    """Candidate-vs-production divergence against production's own noise, and the excess."""
    d = report.divergence
    if not d.semantic:
        return None
    fig = Figure(figsize=(9.0, 3.2))
    left, right = fig.subplots(1, 2)
    top = max([*d.semantic, *d.noise, d.threshold]) * 1.05 or 1.0
    bins = [top * i / 30 for i in range(31)]
    for values, colour, label in (
        (d.semantic, COLOURS["shadow"], "candidate vs production"),
        (d.noise, COLOURS["noise"], "production vs itself"),
    ):
        if values:
            left.hist(values, bins=bins, alpha=0.6, color=colour, label=label, density=True)
    left.set_xlabel("1 - cosine")
    left.set_ylabel("density")
    left.legend(fontsize="small")
    if d.excess:
        right.hist(d.excess, bins=30, color=COLOURS["shadow"])
    right.axvline(d.threshold, color="black", linestyle="--", label="review threshold")
    right.set_xlabel("excess over the noise floor")
    right.set_ylabel("pairs")
    right.legend(fontsize="small")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return _png(fig)


def flags(report: Report) -> bytes | None:
    """Share of scored pairs raising each flag, candidate against production."""
    d = report.divergence
    if not d.flags or not d.scored:
        return None
    names = list(d.flags)
    fig, ax = _axes(6.0, 0.5 + 0.45 * len(names))
    ys = range(len(names))
    ax.barh(
        [y + 0.2 for y in ys],
        [100 * d.flags[n].candidate / d.scored for n in names],
        0.4,
        color=COLOURS["shadow"],
        label="candidate",
    )
    ax.barh(
        [y - 0.2 for y in ys],
        [100 * d.flags[n].production / d.scored for n in names],
        0.4,
        color=COLOURS["production"],
        label="production",
    )
    ax.set_yticks(list(ys), names)
    ax.set_xlabel("% of scored pairs")
    ax.legend(fontsize="small")
    return _png(fig)


def drift(report: Report) -> bytes | None:
    """PSI per prompt feature, with the threshold."""
    rows = [
        r
        for r in report.drift
        if r.canary_vs_production is not None or r.vs_previous_window is not None
    ]
    if not rows:
        return None
    fig, ax = _axes(6.0, 3.0)
    xs = range(len(rows))
    ax.bar(
        [x - 0.2 for x in xs],
        [r.canary_vs_production or 0.0 for r in rows],
        0.4,
        color=COLOURS["canary"],
        label="canary vs production",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [r.vs_previous_window or 0.0 for r in rows],
        0.4,
        color=COLOURS["noise"],
        label="window vs previous window",
    )
    ax.axhline(report.psi_threshold, color="black", linestyle="--", label="threshold")
    ax.set_xticks(list(xs), [r.feature for r in rows])
    ax.set_ylabel("PSI")
    ax.legend(fontsize="small")
    return _png(fig)


PLOTS: tuple[tuple[str, Callable[[Report], bytes | None]], ...] = (
    ("Requests and errors over time", traffic),
    ("Error rate by arm", errors),
    ("Latency by arm", latency),
    ("Divergence against the noise floor", divergence),
    ("Behavioural flags", flags),
    ("Input drift", drift),
)


def figures(report: Report) -> list[tuple[str, bytes]]:
    """(title, PNG) of every plot that has data to show."""
    drawn = ((title, draw(report)) for title, draw in PLOTS)
    return [(title, png) for title, png in drawn if png is not None]
