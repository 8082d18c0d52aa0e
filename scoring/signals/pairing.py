"""Which candidate sentence says what a changed production sentence said, wherever it moved and
however it was reworded, so that two statements can be compared for polarity and obligation.

Two passes. A sentence that shares at least two content words and half of the shorter one's
with a candidate sentence is paired with the best such sentence (several production sentences
may merge into one). The changed sentences left over on both sides are then paired one to one,
best first, when they share at least one content word or value: a reworded statement often
keeps only its predicate (`Give it with food` / `It is best not given after a meal`), and once
every other sentence has found its partner the leftovers are what was reworded.
"""

from __future__ import annotations

from typing import Final

from scoring.signals._pair import PairView
from scoring.signals._text import Sentence, Token, content, dice

SIMILAR: Final = 0.5
"""Share of the shorter sentence's content words the other must have to be the same
statement in the first pass (at least two words)."""


def _words(toks: list[Token], sentence: Sentence, ignore: frozenset[str]) -> set[str]:
    """Content stems and numbers of a sentence: `4 g` in both is as good as a shared word."""
    found = content(toks, sentence.first, sentence.last, ignore)
    found.update(t.norm for t in toks[sentence.first : sentence.last] if t.norm[0].isdigit())
    return found


def _overlap(a: set[str], b: set[str]) -> float:
    shared = len(a & b)
    return shared / min(len(a), len(b)) if shared >= 2 else 0.0


def sentence_pairs(pair: PairView, ignore: frozenset[str]) -> list[tuple[Sentence, Sentence]]:
    """(production sentence, candidate sentence) for each changed production sentence whose
    statement the candidate makes somewhere; `ignore`: words that are not content (cues)."""
    if not pair.blocks:
        return []
    p, c = pair.production, pair.candidate
    changed = [s for s in p.sentences if pair.block_at("production", s.start, s.end) is not None]
    if not changed or not c.sentences:
        return []
    theirs = [_words(c.tokens, s, ignore) for s in c.sentences]
    # Candidate sentences no block touches are production's own, already accounted for.
    free = {
        n for n, s in enumerate(c.sentences)
        if pair.block_at("candidate", s.start, s.end) is not None
    }  # fmt: skip
    paired: list[tuple[Sentence, Sentence]] = []
    left: list[tuple[Sentence, set[str]]] = []
    for sentence in changed:
        mine = _words(p.tokens, sentence, ignore)
        if not mine:
            continue
        score, _, best = max(
            (_overlap(mine, other), dice(mine, other), n) for n, other in enumerate(theirs)
        )
        if score >= SIMILAR:
            paired.append((sentence, c.sentences[best]))
            free.discard(best)
        else:
            left.append((sentence, mine))
    options = sorted(
        ((dice(mine, theirs[n]), i, n) for i, (_, mine) in enumerate(left) for n in free
         if mine & theirs[n]),
        reverse=True,
    )  # fmt: skip
    used_p: set[int] = set()
    for _, i, n in options:
        if i in used_p or n not in free:
            continue
        used_p.add(i)
        free.discard(n)
        paired.append((left[i][0], c.sentences[n]))
    return paired
