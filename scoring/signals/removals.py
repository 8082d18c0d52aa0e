"""Warnings and limits production gave that the candidate dropped: a changed production
sentence carrying a warning cue (a negation, an obligation, a limit, a danger word) whose
content words, or one of whose values, the candidate does not state anywhere."""

from __future__ import annotations

import re
from typing import Final

from scoring.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import content
from scoring.signals.negation import CUES, NEGATIONS, STRONG
from scoring.signals.quantities import values

_WARNING: Final = re.compile(
    r"\b(?:warning|caution|danger|dangerous|toxic|poison\w*|risk\w*|harm\w*|emergency|"
    r"immediately|at most|no more than|maximum|max|limit\w*|exceed\w*|only|never|avoid\w*|"
    r"keep \w+ (?:away|out)|out of reach|seek|doctor|call 9\d\d|do not|don't|must)\b",
    re.I,
)
COVERED: Final = 0.4
"""Share of a sentence's content words the candidate must state for it to count as kept."""


def compare(pair: PairView, changed: frozenset[tuple[int, int]] = frozenset()) -> list[Evidence]:
    """`changed`: production spans of values already reported as changed (not dropped)."""
    if not pair.blocks:
        return []
    p, c = pair.production, pair.candidate
    c_words = content(c.tokens, 0, len(c.tokens), frozenset())
    found: list[Evidence] = []
    for sentence in p.sentences:
        if pair.block_at("production", sentence.start, sentence.end) is None:
            continue
        text = p.prose[sentence.start : sentence.end]
        words = {t.norm for t in p.tokens[sentence.first : sentence.last]}
        if not (_WARNING.search(text) or words & (NEGATIONS | STRONG)):
            continue
        mine = content(p.tokens, sentence.first, sentence.last, CUES)
        if not mine:
            continue
        worded = len(mine & c_words) / len(mine) >= COVERED
        stated = [v for v in values(p.prose, [(sentence.start, sentence.end)])
                  if not v.unit_only and (v.start, v.end) not in changed]  # fmt: skip
        if worded and all(any(v.same(o) for o in c.values) for v in stated):
            continue
        found.append(
            evidence(
                "removed_statement",
                "high",
                f"warning or limit removed: “{text}”",
                production=(text, sentence.start, sentence.end),
            )
        )
    return found
