"""How far reviewers agree: an item's final label from its verdicts, Cohen's and Fleiss'
kappa, and each reviewer's agreement with the final labels.

The verdict script keeps sufficient statistics in Redis as items complete (per number of
verdicts n: items, the sum over items of the squared label counts, the label totals, and for
n = 2 the table of label pairs), so the stats cost the same however many items were judged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.review.scripts import (
    AGREEMENT_ITEMS,
    AGREEMENT_LABELS,
    AGREEMENT_PAIR,
    AGREEMENT_REVIEWER,
    AGREEMENT_SQUARES,
)

LABELS: Final = ("regression", "acceptable", "improvement")
"""The labels, most severe first: a tie between labels goes to the earlier one."""


def final_label(labels: Iterable[str]) -> tuple[str, bool]:
    """The most common label and whether it was tied (then the most severe tied one wins).

    The verdict script in review/scripts.py applies the same rule when an item completes."""
    counts = Counter(labels)
    if not counts:
        raise ValueError("no verdicts")
    most = max(counts.values())
    leaders = [label for label in LABELS if counts.get(label) == most]
    return leaders[0], len(leaders) > 1


def cohen_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Cohen's kappa of a square table (rows: the first rater's labels, columns: the
    second's); None when chance agreement is already perfect (both raters used one label)."""
    total = sum(map(sum, table))
    if not total:
        return None
    observed = sum(table[i][i] for i in range(len(table))) / total
    rows = [sum(row) / total for row in table]
    columns = [sum(row[j] for row in table) / total for j in range(len(table))]
    expected = sum(r * c for r, c in zip(rows, columns, strict=True))
    return None if expected == 1 else (observed - expected) / (1 - expected)


@dataclass
class FleissTally:
    """Fleiss' kappa for items that each have `raters` verdicts, from running sums."""

    raters: int
    items: int = 0
    squares: int = 0
    """Sum over items of the squared count of each label."""
    totals: Counter[str] = field(default_factory=Counter)

    def add(self, counts: Mapping[str, int]) -> None:
        if sum(counts.values()) != self.raters:
            raise ValueError(f"an item needs {self.raters} verdicts, got {dict(counts)}")
        self.items += 1
        self.squares += sum(c * c for c in counts.values())
        self.totals.update(counts)

    @property
    def observed(self) -> float | None:
        """Mean share of agreeing rater pairs per item."""
        n, k = self.raters, self.items
        if not k or n < 2:
            return None
        return (self.squares - k * n) / (k * n * (n - 1))

    def kappa(self) -> float | None:
        observed = self.observed
        if observed is None:
            return None
        expected = sum((t / (self.items * self.raters)) ** 2 for t in self.totals.values())
        return None if expected == 1 else (observed - expected) / (1 - expected)


def _counters(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}


def agreement(raw: Mapping[Any, Any], reviewers_per_item: int) -> dict[str, Any]:
    """Kappa over the items that completed with `reviewers_per_item` verdicts: Cohen's for
    two (rows and columns are the two reviewers in name order, so a team of two gets the
    textbook statistic), Fleiss' for any number."""
    counters = _counters(raw)
    n = reviewers_per_item
    tally = FleissTally(
        raters=n,
        items=counters.get(f"{AGREEMENT_ITEMS}{n}", 0),
        squares=counters.get(f"{AGREEMENT_SQUARES}{n}", 0),
    )
    prefix = f"{AGREEMENT_LABELS}{n}:"
    tally.totals.update({k[len(prefix) :]: v for k, v in counters.items() if k.startswith(prefix)})
    result: dict[str, Any] = {
        "reviewers_per_item": n,
        "items": tally.items,
        "method": None,
        "kappa": None,
        "observed": tally.observed,
        "fleiss_kappa": tally.kappa() if n >= 2 else None,
    }
    if n == 2:
        table = [[counters.get(f"{AGREEMENT_PAIR}{a}:{b}", 0) for b in LABELS] for a in LABELS]
        result["cohen_kappa"] = cohen_kappa(table)
        result["method"], result["kappa"] = "cohen", result["cohen_kappa"]
    elif n > 2:
        result["method"], result["kappa"] = "fleiss", result["fleiss_kappa"]
    return result


def reviewers(raw: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    """Per reviewer: verdicts given, verdicts on completed items, and the share of those that
    match the item's final (majority) label."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in _counters(raw).items():
        if key.startswith(AGREEMENT_REVIEWER):
            name, counter = key.removeprefix(AGREEMENT_REVIEWER).rsplit(":", 1)
            entry = out.setdefault(name, {"verdicts": 0, "finished": 0, "with_majority": 0})
            entry[counter] = value
    for entry in out.values():
        entry["agreement_with_majority"] = (
            entry["with_majority"] / entry["finished"] if entry["finished"] else None
        )
    return dict(sorted(out.items()))
