"""Both answers of a pair, parsed and word-aligned once, shared by every signal."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property

from gateway.records import Evidence, Severity
from scoring.signals._text import Sentence
from scoring.signals.align import Change, changes
from scoring.signals.parse import Parsed
from scoring.signals.quantities import may_state

SIDES = ("production", "candidate")


@dataclass
class PairView:
    production: Parsed
    candidate: Parsed
    blocks: list[Change] = field(init=False)

    def __post_init__(self) -> None:
        self.blocks = changes(self.production.tokens, self.candidate.tokens)

    def side(self, name: str) -> Parsed:
        return self.production if name == "production" else self.candidate

    @cached_property
    def _ranges(self) -> dict[str, tuple[list[int], list[int], list[int]]]:
        """Per side: starts, ends and block numbers of the changed character ranges."""
        out = {}
        for name in SIDES:
            toks = self.side(name).tokens
            starts, ends, ids = [], [], []
            for n, block in enumerate(self.blocks):
                lo, hi = (block.p0, block.p1) if name == "production" else (block.c0, block.c1)
                if hi == lo and toks:
                    # An insertion on the other side: the tokens either side of it changed.
                    lo, hi = max(0, lo - 1), min(len(toks), hi + 1)
                if hi > lo:
                    starts.append(toks[lo].start)
                    ends.append(toks[hi - 1].end)
                    ids.append(n)
            out[name] = (starts, ends, ids)
        return out

    @cached_property
    def changed_sentences(self) -> dict[str, list[Sentence]]:
        """Per side: the sentences that overlap a changed block and may state a value (a
        digit, a number word, a month...: see `quantities.may_state`)."""
        out: dict[str, list[Sentence]] = {}
        for name in SIDES:
            side = self.side(name)
            out[name] = [
                s
                for s in side.sentences
                if self.block_at(name, s.start, s.end) is not None
                and may_state(side.tokens[s.first : s.last])
            ]
        return out

    @cached_property
    def changed_share(self) -> float:
        """Share of production's tokens inside changed blocks."""
        total = len(self.production.tokens)
        return sum(b.p1 - b.p0 for b in self.blocks) / total if total else 1.0

    def block_at(self, side: str, start: int, end: int) -> int | None:
        """The changed block that overlaps characters [start, end) of one side, if any."""
        starts, ends, ids = self._ranges[side]
        i = bisect_right(starts, end - 1) - 1
        if i >= 0 and ends[i] > start:
            return ids[i]
        return None


def evidence(
    kind: str,
    severity: Severity,
    message: str,
    production: tuple[str, int, int] | None = None,
    candidate: tuple[str, int, int] | None = None,
    path: str | None = None,
) -> Evidence:
    """An evidence item from (text, start, end) of each side."""
    return Evidence(
        kind=kind,
        severity=severity,
        message=message,
        production=production[0] if production else None,
        candidate=candidate[0] if candidate else None,
        production_span=(production[1], production[2]) if production else None,
        candidate_span=(candidate[1], candidate[2]) if candidate else None,
        path=path,
    )
