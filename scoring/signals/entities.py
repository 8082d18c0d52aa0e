"""Names replaced in the aligned text: a city, drug, product or person in production's changed
block that the candidate never mentions, where the candidate's block names one production
never mentions. A name counts when it is capitalised inside a sentence, mixes letters and
digits (`BA117`), or is a word too rare for the embedder's WordPiece vocabulary (`ibuprofen`,
`PostgreSQL`); the vocabulary ships with the embedder, so this costs no extra data. Names
that merely moved, or that the other answer states elsewhere, are not a change.
"""

from __future__ import annotations

from typing import Final

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import STOPWORDS, Token, stem
from scoring.signals.dates import MONTHS, WEEKDAYS
from scoring.signals.parse import Parsed

_CONNECTORS: Final = frozenset({"de", "la", "le", "du", "of", "von", "van", "der", "del", "da"})
_NOT_NAMES: Final = frozenset({"i", "ok", "am", "pm", *MONTHS, *WEEKDAYS, *(m[:3] for m in MONTHS)})


def _known(lower: str, vocabulary: frozenset[str]) -> bool:
    """In the vocabulary as it is or in an inflected form (`bake`: only `baked` is there)."""
    if lower in vocabulary:
        return True
    forms = (
        lower + "s",
        lower + "d",
        lower + "ed",
        lower + "ing",
        lower[:-1] + "ing",
        lower[:-1],
        lower[:-2],
        lower[:-3],
    )
    return any(form in vocabulary for form in forms if len(form) >= 3)


def _is_name(word: str, initial: bool, vocabulary: frozenset[str]) -> bool:
    if word.islower():  # most words: a name only if too rare for the vocabulary
        return (
            len(word) >= 4
            and not _known(word, vocabulary)
            and word.isalpha()
            and (word not in STOPWORDS)
        )
    lower = word.lower()
    if len(word) < 2 or lower in _NOT_NAMES or lower in STOPWORDS or not word[0].isalpha():
        return False
    if any(ch.isdigit() for ch in word):
        return True
    if word[0].isupper() or any(ch.isupper() for ch in word[1:]):
        return not initial or not _known(lower, vocabulary)
    return False


def _names(
    side: Parsed, first: int, last: int, vocabulary: frozenset[str]
) -> list[tuple[str, int, int]]:
    """Name phrases among tokens [first, last) as (text, start, end)."""
    toks = side.tokens
    starts = {s.first for s in side.sentences}
    found: list[tuple[str, int, int]] = []
    run: list[Token] = []

    def flush() -> None:
        while run and run[-1].norm in _CONNECTORS:
            run.pop()
        if run:
            found.append((side.prose[run[0].start : run[-1].end], run[0].start, run[-1].end))
        run.clear()

    for i in range(first, last):
        token = toks[i]
        word = side.prose[token.start : token.end]
        initial = i in starts or (i > 0 and toks[i - 1].norm in ("-", "*", "•", "#", "(", '"'))
        if _is_name(word, initial, vocabulary) or (
            run and (token.norm in _CONNECTORS or token.norm == ".")
        ):
            run.append(token)
        else:
            flush()
    flush()
    return found


def _shape(name: str) -> str:
    """`rare` for a lower-case rare word, `name` for anything capitalised or with digits."""
    return "rare" if name.islower() and name.isalpha() else "name"


def _mentioned(name: str, side: Parsed) -> bool:
    if name.islower() and name.isalpha():
        return stem(name) in side.content_words
    return name.lower() in side.prose_lower


def compare(pair: PairView, vocabulary: frozenset[str]) -> list[Evidence]:
    p, c = pair.production, pair.candidate
    removed = [n for b in pair.blocks for n in _names(p, b.p0, b.p1, vocabulary)]
    added = [n for b in pair.blocks for n in _names(c, b.c0, b.c1, vocabulary)]
    if not removed or not added:
        return []
    removed = [n for n in removed if not _mentioned(n[0], c)]
    added = [n for n in added if not _mentioned(n[0], p)]
    found: list[Evidence] = []
    for old in removed:
        new = next((n for n in added if _shape(n[0]) == _shape(old[0])), None)
        if new is not None:
            added.remove(new)
            found.append(evidence("entity", "high", f"{old[0]} → {new[0]}", old, new))
    return found
