"""Warnings and limits production gave that the candidate dropped: a changed production
sentence carrying a warning cue (a negation, an obligation, a limit, a danger word) whose
content words, or one of whose values, the candidate does not state anywhere. A warning
reworded into a sentence that says the same thing (`pairing.py`) with a cue of its own and
the same values is kept (`The maximum is 4 doses a day` / `Give no more than 4 doses`)."""

from __future__ import annotations

import re
from typing import Final

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import Sentence, content
from scoring.signals.negation import CUES, NEGATIONS, STRONG
from scoring.signals.parse import Parsed

_WARNING: Final = re.compile(
    r"\b(?:warning|caution|danger|dangerous|toxic|poison\w*|risk\w*|harm\w*|emergency|"
    r"immediately|at most|no more than|maximum|max|limit\w*|exceed\w*|only|never|avoid\w*|"
    r"keep \w+ (?:away|out)|out of reach|seek|doctor|call 9\d\d|do not|don't|must)\b",
    re.I,
)
_CUES: Final = NEGATIONS | STRONG
COVERED: Final = 0.4
"""Share of a sentence's content words the candidate must state for it to count as kept."""


def _warns(side: Parsed, sentence: Sentence) -> bool:
    return any(t.norm in _CUES for t in side.tokens[sentence.first : sentence.last]) or bool(
        _WARNING.search(side.prose, sentence.start, sentence.end)
    )


def compare(
    pair: PairView,
    statements: list[tuple[Sentence, Sentence]],
    changed: frozenset[tuple[int, int]] = frozenset(),
) -> list[Evidence]:
    """`statements`: production sentences paired with the candidate's (`pairing.py`);
    `changed`: production spans of values already reported as changed (not dropped)."""
    if not pair.blocks:
        return []
    p, c = pair.production, pair.candidate
    partners = dict(statements)
    found: list[Evidence] = []
    for sentence in p.sentences:
        if pair.block_at("production", sentence.start, sentence.end) is None:
            continue
        if not _warns(p, sentence):
            continue
        text = p.prose[sentence.start : sentence.end]
        mine = content(p.tokens, sentence.first, sentence.last, CUES)
        if not mine:
            continue
        partner = partners.get(sentence)
        worded = len(mine & c.content_words) / len(mine) >= COVERED or (
            partner is not None and _warns(c, partner)
        )
        stated = [
            v for v in p.stated(sentence) if not v.unit_only and (v.start, v.end) not in changed
        ]
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
