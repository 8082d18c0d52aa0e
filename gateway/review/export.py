"""`shadowgate review export`: the judged items as a golden set (JSON lines), straight from
the `verdicts` stream.

One line per item, not per verdict: its final label, every reviewer's verdict and how far
they agreed. Only items whose verdicts are all in are written unless `partial` is asked for
(then an item still waiting is labelled by the verdicts it has, by the same majority rule).
Items that most reviewers found both bad are left out: neither answer can be the approved one
a regression suite compares against.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import IO, Any

import redis
from pydantic import ValidationError

from gateway.records import GoldenCase, GoldenVote, Verdict
from gateway.review.agreement import final_label


@dataclass
class _Item:
    verdicts: list[Verdict] = field(default_factory=list)
    final: tuple[str, bool] | None = None
    """From the verdict that completed the item (the stream entry's `final` field)."""


@dataclass
class ExportSummary:
    items: int = 0
    verdicts: int = 0
    written: int = 0
    awaiting: int = 0
    both_bad: int = 0
    other_labels: int = 0
    unreadable: int = 0
    """Verdicts that did not parse, left out."""

    def line(self, out: str) -> str:
        left = [
            f"{n} {why}"
            for n, why in (
                (self.awaiting, "awaiting verdicts"),
                (self.both_bad, "both answers bad"),
                (self.other_labels, "with another label"),
                (self.unreadable, "unreadable verdicts"),
            )
            if n
        ]
        text = f"wrote {self.written} of {self.items} items ({self.verdicts} verdicts) to {out}"
        return text + (f"; left out: {', '.join(left)}" if left else "")


def _read(
    client: redis.Redis,
    key: str,
    summary: ExportSummary,
    progress: Callable[[int, int], None] | None,
) -> dict[str, _Item]:
    total = int(client.xlen(key))
    items: dict[str, _Item] = {}
    seen, start = 0, "-"
    while True:
        entries: Any = client.xrange(key, min=start, count=500)
        if start != "-":
            entries = entries[1:]
        if not entries:
            return items
        for _, fields in entries:
            seen += 1
            try:
                verdict = Verdict.from_json(fields[b"data"])
            except (KeyError, ValueError, ValidationError):
                summary.unreadable += 1
                continue
            item = items.setdefault(verdict.item_id, _Item())
            item.verdicts.append(verdict)
            if b"final" in fields:
                item.final = (fields[b"final"].decode(), fields.get(b"tied") == b"1")
            elif verdict.schema_version < 2:  # one reviewer per item back then
                item.final = (verdict.label, False)
        start = entries[-1][0].decode()
        if progress:
            progress(seen, total)


def _golden(item: _Item, label: str, tied: bool) -> GoldenCase:
    first = item.verdicts[0]
    pair = first.item.pair if first.item else None
    labels = [v.label for v in item.verdicts]
    return GoldenCase(
        pair_id=first.pair_id,
        route=first.route,
        request=pair.request if pair else None,
        production=pair.production.text if pair else None,
        candidate=pair.candidate.text if pair else None,
        label=label,
        tied=tied,
        complete=item.final is not None,
        agreement=labels.count(label) / len(labels),
        tags=list(dict.fromkeys(t for v in item.verdicts for t in v.tags)),
        verdicts=[GoldenVote.of(v) for v in item.verdicts],
    )


def export_golden(
    client: redis.Redis,
    key: str,
    out: IO[bytes],
    *,
    labels: Collection[str] = (),
    partial: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Write the golden cases of the verdicts stream `key` to `out`, one JSON line each."""
    summary = ExportSummary()
    for item in _read(client, key, summary, progress).values():
        summary.items += 1
        summary.verdicts += len(item.verdicts)
        if item.final is None and not partial:
            summary.awaiting += 1
            continue
        label, tied = item.final or final_label(v.label for v in item.verdicts)
        if 2 * sum(v.choice == "both_bad" for v in item.verdicts) >= len(item.verdicts):
            summary.both_bad += 1
            continue
        if labels and label not in labels:
            summary.other_labels += 1
            continue
        out.write(_golden(item, label, tied).to_json() + b"\n")
        summary.written += 1
    return summary
