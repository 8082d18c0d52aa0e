"""Word tokens and sentences of an answer, with character offsets into the answer's text."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, NamedTuple

_CURLY_APOSTROPHE: Final = "\u2019"
_WORD: Final = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# A title or a common abbreviation does not end a sentence (`Dr. Patel`, `e.g. rice`).
_ABBREVIATIONS: Final = "".join(
    rf"(?<!\b{re.escape(a)})"
    for a in ("Dr.", "Mr.", "Mrs.", "Ms.", "St.", "Prof.", "e.g.", "i.e.", "vs.", "approx.")
)
_SENTENCE_END: Final = re.compile(rf"(?<=[.!?:]){_ABBREVIATIONS}\s+|\n+")


class Token(NamedTuple):
    norm: str
    start: int
    end: int


class Sentence(NamedTuple):
    start: int
    end: int
    first: int
    """Index of its first token."""
    last: int
    """Index one past its last token."""


def tokens(text: str) -> list[Token]:
    """Word and punctuation tokens, lower-cased, curly apostrophes straightened."""
    if _CURLY_APOSTROPHE in text:
        text = text.replace(_CURLY_APOSTROPHE, "'")
    lower = text.lower()
    if len(lower) != len(text):  # `İ` lower-cases to two characters: offsets would shift
        return [Token(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
    # The hottest loop of the signals: tuple.__new__ skips NamedTuple's keyword handling.
    make = tuple.__new__
    return [make(Token, (m.group(), m.start(), m.end())) for m in _WORD.finditer(lower)]


def sentences(text: str, toks: list[Token]) -> list[Sentence]:
    """Sentences (and list items, lines) as spans over `text` and `toks`."""
    out: list[Sentence] = []
    index = 0
    bounds = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for end in bounds:
        first = index
        while index < len(toks) and toks[index].start < end:
            index += 1
        if index > first:
            out.append(Sentence(toks[first].start, toks[index - 1].end, first, index))
    return out


def sentence_at(sentences_: list[Sentence], token: int) -> int:
    """Index of the sentence that holds token number `token` (binary search)."""
    lo, hi = 0, len(sentences_) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sentences_[mid].first <= token:
            lo = mid
        else:
            hi = mid - 1
    return lo


def word_set(text: str) -> frozenset[str]:
    """The words of a space-separated list."""
    return frozenset(text.split())


STOPWORDS: Final = word_set(
    "a an the and or but if of to in on at by for with from as is are was were be been "
    "being it its it's this that these those there here you your yours we our us they them "
    "their i me my he she his her him so than then too very also just about into over under "
    "up down out off again once more most some any each all both such only own same other s "
    "t do does did doing have has had having will would shall should can could may might "
    "must what which who whom when where why how"
)


_SUFFIX: Final = re.compile(r"(?:'s|ies|es|s|ed|en|ing|ly)$")


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """A crude stem: common English endings and a final e off, then the first five letters,
    so `limits` and `limited`, `file` and `filing`, `give` and `given` meet."""
    base = _SUFFIX.sub("", word)
    base = base if len(base) >= 3 else word
    return (base[:-1] if base.endswith("e") and len(base) > 3 else base)[:5]


def content(toks: list[Token], first: int, last: int, ignore: frozenset[str]) -> set[str]:
    """Stems of the content words among tokens [first, last): no stopwords, no `ignore`."""
    return {
        stem(t.norm)
        for t in toks[first:last]
        if t.norm[0].isalpha() and t.norm not in STOPWORDS and t.norm not in ignore
    }


def dice(a: set[str], b: set[str]) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 1.0
