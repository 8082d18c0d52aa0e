"""Numbers, quantities, money, percentages, dates and times that changed between the answers.

Only values inside changed word blocks are examined. A value on one side that the other side
states anywhere (in another unit, in words, in another sentence) is not a change, so spelled
out numbers, unit conversions and moved sentences stay quiet. What is left is paired up,
changed block first, then by dimension: `dose 500 mg -> 5 g` (high), a value removed
(medium; high when it was a limit such as `at most 4 g`), a value added (low).
"""

from __future__ import annotations

import re
from typing import Final

from gateway.records import Evidence, Severity
from scoring.signals._pair import SIDES, PairView, evidence
from scoring.signals.quantities import Value, values

_LIMIT: Final = re.compile(
    r"(?:at most|more than|less than|fewer than|maximum|max\.?|limit|up to|exceed|or less|"
    r"at least|minimum|no later than|before|within|never)\W+(?:\w+\W+){0,3}\Z",
    re.I,
)


def _unmatched(mine: list[Value], theirs: list[Value]) -> list[Value]:
    """Values of `mine` with no equal value left in `theirs` (each used once)."""
    pool = list(theirs)
    left = []
    for value in mine:
        for n, other in enumerate(pool):
            if value.same(other):
                del pool[n]
                break
        else:
            left.append(value)
    return left


def _amounts(found: list[Value]) -> list[Value]:
    return [v for v in found if not v.unit_only]


def _vague(value: Value) -> bool:
    """A bare count (`on day one`) or a unit without a number (`a day`): often reworded."""
    return value.dimension == "count" or value.unit_only


def _describe(value: Value) -> tuple[str, int, int]:
    return value.text, value.start, value.end


def compare(pair: PairView, prompt: str = "") -> list[Evidence]:
    """`prompt`: the user's request; a value the candidate takes from it is not new."""
    if not pair.blocks:
        return []
    production, candidate = (
        [
            v
            for sentence in pair.changed_sentences[name]
            for v in pair.side(name).stated(sentence)
            if pair.block_at(name, v.start, v.end) is not None
        ]
        for name in SIDES
    )
    removed = _unmatched(production, candidate)
    added = _unmatched(candidate, production)
    # Values of a changed block that the other answer states anywhere are not changes; a
    # rate's unit (`600 requests per minute`) states no amount (`retry after 60 seconds`).
    if removed:
        removed = _unmatched(removed, _amounts(pair.candidate.values))
    if added:
        added = _unmatched(added, _amounts(pair.production.values))
    if added and prompt:
        added = _unmatched(added, values(prompt))
    found: list[Evidence] = []
    for old in list(removed):
        block = pair.block_at("production", old.start, old.end)
        same_block = [
            v
            for v in added
            if v.kind == old.kind and pair.block_at("candidate", v.start, v.end) == block
        ]
        same_dimension = [v for v in added if v.kind == old.kind and v.dimension == old.dimension]
        options = [v for v in same_block if v.dimension == old.dimension] or same_dimension
        options = options or same_block
        if not options:
            continue
        new = options[0]
        removed.remove(old)
        added.remove(new)
        found.append(
            evidence(
                old.kind,
                "high",
                f"{old.kind} {old.text} → {new.text}",
                _describe(old),
                _describe(new),
            )
        )
    for old in removed:
        before = pair.production.prose[max(0, old.start - 60) : old.start]
        limit = bool(_LIMIT.search(before))
        what = "limit" if limit else old.kind
        # A bare count (`on day one`) is often reworded away; a quantity rarely is.
        severity: Severity = "low" if _vague(old) else "high" if limit else "medium"
        found.append(
            evidence(old.kind, severity, f"{what} {old.text} removed", production=_describe(old))
        )
    for new in added:
        found.append(
            evidence(new.kind, "low", f"{new.kind} {new.text} added", candidate=_describe(new))
        )
    return found
