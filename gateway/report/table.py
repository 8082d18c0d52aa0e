"""The report as tables of formatted cells, shared by the terminal and the HTML renderings,
and the terminal rendering: plain columns, the first left-aligned, the others right."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from gateway.proxy.arm_stats import LATENCY_BOUNDS
from gateway.report.model import ArmReport, Quantiles, Report
from scoring.stats import wilson


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    notes: list[str] = field(default_factory=list)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return f">{LATENCY_BOUNDS[-1]:g} s"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _share(k: int, n: int, *, interval: bool = False) -> str:
    if not n:
        return "-"
    text = f"{100 * k / n:.1f}%"
    if interval:
        low, high = wilson(k, n, 0.95)
        text += f" ({100 * low:.1f}-{100 * high:.1f}%)"
    return text


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _quantile_cells(q: Quantiles) -> tuple[str, str, str]:
    return _seconds(q.p50), _seconds(q.p95), _seconds(q.p99)


def _arm_tables(arms: list[ArmReport]) -> list[Table]:
    traffic = Table(
        "requests",
        ("arm", "requests", "errors", "error rate (95% CI)", "counted over"),
        [
            (
                a.arm,
                str(a.requests),
                str(a.errors),
                _share(a.errors, a.requests, interval=True),
                a.source,
            )
            for a in arms
        ],
        ["errors: 5xx, timeouts and unreachable upstreams"],
    )
    latency = Table(
        "latency",
        ("arm", "p50", "p95", "p99", "ttfb p50", "ttfb p95", "ttfb p99"),
        [(a.arm, *_quantile_cells(a.latency_s), *_quantile_cells(a.ttfb_s)) for a in arms],
        [
            "production and canary: interpolated within histogram buckets; shadow: exact",
            "ttfb: time to the upstream's response headers (the first token of a stream, when "
            "the model sends headers with it)",
        ],
    )
    usage = Table(
        "tokens and cost per request",
        ("arm", "with usage", "prompt tokens", "completion tokens", "USD per request"),
        [
            (
                a.arm,
                str(a.usage_samples),
                _number(a.prompt_tokens, 1),
                _number(a.completion_tokens, 1),
                _number(a.cost_usd, 6),
            )
            for a in arms
        ],
        [
            "from mirrored requests' usage: production's answers and the candidate's to the same "
            "prompts; canary answers are not captured",
            "cost needs upstreams.<name>.prices",
        ],
    )
    return [traffic, latency, usage]


def _models_table(report: Report) -> Table:
    return Table(
        "models",
        ("production model", "candidate model", "mirrored pairs"),
        [(production, candidate, str(n)) for production, candidate, n in report.models],
        [
            "the candidate's name comes from upstreams.candidate.model / model_map; canary "
            "requests carry it too"
        ],
    )


def _quantile_row(name: str, values: list[float]) -> tuple[str, ...]:
    if not values:
        return (name, "0", "-", "-", "-")
    cells = (_number(float(v)) for v in np.quantile(values, [0.5, 0.9, 0.99]))
    return (name, str(len(values)), *cells)


def _breakdown(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _pairs_table(report: Report) -> Table:
    a = report.pairs
    waiting = "-" if a.waiting is None else str(a.waiting)
    oldest = "" if a.oldest_age_s is None else f", the oldest for {_seconds(a.oldest_age_s)}"
    return Table(
        "mirrors and pairs: sent, scored, lost",
        (
            "",
            "mirrored",
            "shed",
            "published",
            "dropped",
            "scored",
            "dead-lettered",
            "lost",
            "waiting now",
        ),
        [
            (
                "pairs",
                str(a.mirrored),
                str(sum(a.shed.values())),
                str(a.published),
                str(sum(a.dropped.values())),
                str(report.divergence.scored),
                str(a.dead_lettered),
                str(sum(a.lost.values())),
                waiting,
            )
        ],
        [
            f"shed before sending: {_breakdown(a.shed)}",
            f"dropped before Redis: {_breakdown(a.dropped)}",
            f"lost after publishing: {_breakdown(a.lost)} (trimmed_unscored: the stream cap "
            "trimmed them before any worker read them; trimmed_pending: while a worker that "
            "then stopped held them)",
            f"waiting now: pairs not yet scored, whenever published{oldest}",
            "the rest: counted in the window as each happened, so a pair mirrored near its end "
            "may be scored after it",
        ],
    )


def _divergence_tables(report: Report) -> list[Table]:
    d = report.divergence
    above = sum(1 for x in d.excess if x > d.threshold)
    divergence = Table(
        f"divergence of {d.scored} scored pairs",
        ("", "pairs", "p50", "p90", "p99"),
        [
            _quantile_row("candidate vs production", d.semantic),
            _quantile_row("production vs itself (noise)", d.noise),
            _quantile_row("noise floor applied", d.noise_floor),
            _quantile_row("excess over the floor", d.excess),
        ],
        [
            f"excess above the review threshold {d.threshold:g}: {above} of {len(d.excess)}, "
            f"{_share(above, len(d.excess), interval=True)}; queued for review: {d.queued}"
        ],
    )
    flags = Table(
        "behavioural flags (share of scored pairs)",
        ("flag", "candidate", "production", "candidate only (95% CI)"),
        [
            (
                name,
                _share(c.candidate, d.scored),
                _share(c.production, d.scored),
                _share(c.new, d.scored, interval=True),
            )
            for name, c in d.flags.items()
        ],
    )
    total = sum(report.verdicts.values())
    verdicts = Table(
        f"reviewer verdicts ({total})",
        ("label", "verdicts", "share"),
        [(label, str(n), _share(n, total)) for label, n in report.verdicts.items()],
    )
    return [divergence, flags, verdicts]


def _drift_table(report: Report) -> Table:
    def cell(value: float | None) -> str:
        mark = " !" if value is not None and value > report.psi_threshold else ""
        return _number(value) + mark

    n = report.drift_samples
    return Table(
        "input drift (PSI of prompt features)",
        ("feature", "canary vs production", "window vs previous window"),
        [
            (r.feature, cell(r.canary_vs_production), cell(r.vs_previous_window))
            for r in report.drift
        ],
        [
            f"prompts counted: canary {n.get('canary', 0)}, production {n.get('production', 0)}, "
            f"previous window {n.get('previous window', 0)}; ! marks PSI above "
            f"{report.psi_threshold:g}"
        ],
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def headline(report: Report) -> list[str]:
    """The report's title and the rollout's state."""
    lines = [f"shadowgate report: {_when(report.since)} to {_when(report.until)} UTC"]
    state = report.rollout
    if state is not None and state.steps:
        lines.append(
            f"rollout: {state.status} at {state.percent:g}% (step {state.step_index + 1} of "
            f"{len(state.steps)}, look {state.look}) {state.reason}".rstrip()
        )
    lines.append(f"scoring workers alive now: {report.workers_alive}")
    if report.capped:
        lines.append(f"newest records only (--max-records) from: {', '.join(report.capped)}")
    lost = sum(report.pairs.lost.values())
    if lost:
        lines.append(
            f"pairs lost unscored in the window: {lost} "
            f"({_breakdown(report.pairs.lost)}); see the pairs table"
        )
    if report.unreadable:
        left_out = ", ".join(f"{name} {n}" for name, n in report.unreadable.items())
        lines.append(f"records that did not parse, left out: {left_out}")
    return lines


def tables(report: Report) -> list[Table]:
    """Every table of the report, in reading order."""
    return [
        *_arm_tables(report.arms),
        _pairs_table(report),
        _models_table(report),
        *_divergence_tables(report),
        _drift_table(report),
    ]


def format_table(table: Table) -> list[str]:
    """A table as aligned plain-text lines."""
    widths = [
        max(len(row[i]) for row in [table.headers, *table.rows]) for i in range(len(table.headers))
    ]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  " + "  ".join([first, *rest]).rstrip()

    lines = [table.title, line(table.headers)]
    lines.extend(line(row) for row in table.rows)
    if not table.rows:
        lines.append("  (none)")
    lines.extend(f"  {note}" for note in table.notes)
    return lines


def render_text(report: Report) -> str:
    """The whole report for a terminal."""
    lines = headline(report)
    for table in tables(report):
        lines.append("")
        lines.extend(format_table(table))
    return "\n".join(lines) + "\n"
