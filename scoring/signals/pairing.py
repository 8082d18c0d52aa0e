"""Which candidate sentence says what a changed production sentence said, wherever it moved and
however it was reworded, so that two statements can be compared for polarity and obligation.

Two passes. A sentence that shares at least two content words and half of the shorter one's
with a candidate sentence is paired with the best such sentence (several production sentences
may merge into one). Each production sentence left over is then paired, best first, with the
changed candidate sentence whose words the sentences already paired with it leave unsaid, when
it shares at least one of those: a reworded statement often keeps only its predicate (`Give it
with food` / `It is best not given after a meal`), and once every other statement has found its
partner, what is left over on both sides is what was reworded.
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
    touched = [
        n
        for n, s in enumerate(c.sentences)
        if pair.block_at("candidate", s.start, s.end) is not None
    ]
    # What of each candidate sentence the production sentences paired with it leave unsaid.
    unsaid = {n: set(theirs[n]) for n in touched}
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
            if best in unsaid:
                unsaid[best] -= mine
        else:
            left.append((sentence, mine))
    # A sentence no statement claimed yet comes before the rest of a claimed one.
    free = {n for n in touched if unsaid[n] == theirs[n]}
    options = sorted(
        (
            (n in free, dice(mine, unsaid[n]), i, n)
            for i, (_, mine) in enumerate(left)
            for n in touched
            if mine & unsaid[n]
        ),
        reverse=True,
    )
    done: set[int] = set()
    for _, _, i, n in options:
        sentence, mine = left[i]
        if i in done or not mine & unsaid[n]:
            continue
        done.add(i)
        unsaid[n] -= mine
        paired.append((sentence, c.sentences[n]))
    return paired
