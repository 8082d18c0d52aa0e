"""Negation and modality flips on the same statement: each changed sentence of production is
paired with the candidate sentence that says the same thing (`pairing.py`), and the two are
compared for polarity (`take it with food` / `do not take it with food`,
`covered` / `excluded`) and for the strength of obligation (`must` / `may`, `required` /
`optional`). Limits worded as negations (`no more than`, `do not exceed`) are not negations.

Polarity is per word, not per sentence: a content word is negated when an odd number of
negation cues precede it in its clause (`cannot board without one`: `board` negated, `one`
not). A flip is a word negated on one side and stated plainly on the other, while no word is
negated on both: `Avoid alcohol while taking it` / `Do not take it with alcohol` negate the
same thing (`alcohol`) and are not a flip, however the cues fall. When several production
sentences merged into one candidate sentence, each is compared with what the others do not
explain (`You can cancel...` / `There is no cancellation fee` / `You can cancel..., free of
charge`).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import STOPWORDS, Sentence, Token, stem, word_set
from scoring.signals.parse import Parsed

NEGATIONS: Final = word_set(
    "not no never cannot without none nothing nobody neither nor avoid avoiding excluded "
    "excludes exclude forbidden prohibited banned unsafe unavailable impossible refrain "
    "nowhere"
)
STRONG: Final = word_set(
    "must required require requires mandatory compulsory obligatory always shall necessary "
    "essential"
)
WEAK: Final = word_set(
    "may might can could optional optionally ideally welcome recommended possibly perhaps"
)
ADVICE: Final = frozenset(["should", "ought"])
CUES: Final = NEGATIONS | STRONG | WEAK | ADVICE | {"need", "needs", "have", "has", "to"}
_LIMIT: Final = re.compile(
    r"\b(?:no|not) (?:more|later|less|fewer|longer|earlier|higher|lower) than\b"
    r"|\b(?:do not|don't|never|not|must not|mustn't|should not|shouldn't) "
    r"(?:exceed|go over|go above|go beyond|take more)\b"
    # Contrast, not negation: `Canberra, not Sydney`; `not only`.
    r"|,\s*(?:but\s+)?not\b|\bnot only\b",
    re.I,
)
_AWAY: Final = re.compile(
    r"\b(?:keep|stay|kept|stays|keeps)\b(?:\W+\w+){0,3}?\W+(?:away|out|closed|shut)\b", re.I
)
_OBLIGATION: Final = re.compile(r"\b(?:need|needs|have|has) to\b", re.I)
# An obligation denied is a permission: `not needed`, `no need to`, `don't have to`.
_NOT_NEEDED: Final = re.compile(
    r"\b(?:not|no|needn't|(?:do|does|did)n't|(?:do|does) not)\s+(?:\w+\s+)?"
    r"(?:needed|necessary|required|mandatory|compulsory|need|have to|has to)\b",
    re.I,
)
_PERMISSION: Final = re.compile(r"\bif you (?:like|wish|want|prefer)\b|\bup to you\b", re.I)
# A negation reaches to the end of its clause: punctuation or a subordinating conjunction
# (`Avoid alcohol | while taking it`); `and` and `or` join words more often than clauses.
_CLAUSE_END: Final = word_set(
    ", ; : ( ) because while although though if when whenever unless since until so but whereas"
)
_DETERMINERS: Final = word_set("no none nothing nobody neither nor without nowhere")
# `keep it away`, `stay out`: the words that start `_AWAY`.
_NEGATING: Final = NEGATIONS | word_set("keep keeps kept stay stays")
_END: Final = Token(";", -1, -1)


class Polarity(NamedTuple):
    negated: set[str]
    plain: set[str]

    @property
    def words(self) -> set[str]:
        return self.negated | self.plain


def _polarity(side: Parsed, sentence: Sentence) -> Polarity:
    """Stems of a sentence's content words, negated or plain. A verb's negation (`not`,
    `never`, `avoid`, `forbidden`) covers its whole clause, subject included (`notes are not
    permitted`); a determiner's (`no`, `without`) what follows it (`food makes no
    difference`)."""
    text, toks = side.prose, side.tokens
    limits = [m.span() for m in _LIMIT.finditer(text, sentence.start, sentence.end)]
    away = {m.start() for m in _AWAY.finditer(text, sentence.start, sentence.end)}
    found = Polarity(set(), set())
    clause: list[tuple[str, int]] = []
    whole = ahead = 0
    before = ("", "")
    for t in [*toks[sentence.first : sentence.last], _END]:
        word = t.norm
        if word in _CLAUSE_END:
            for stemmed, cues in clause:
                (found.negated if (whole + cues) % 2 else found.plain).add(stemmed)
            clause, whole, ahead = [], 0, 0
        elif t.start in away or (
            (word in NEGATIONS or word.endswith("n't"))
            and not any(a <= t.start < b for a, b in limits)
            and before != ("with", "or")  # `with or without food`
        ):
            if word in _DETERMINERS:
                ahead += 1
            else:
                whole += 1
        elif word[0].isalpha() and word not in STOPWORDS and word not in CUES:
            clause.append((stem(word), ahead))
        before = (before[1], word)
    return found


def _may_negate(side: Parsed, sentence: Sentence) -> bool:
    """Whether a sentence has a negation cue at all: most have none (a quick test first)."""
    return any(
        t.norm in _NEGATING or t.norm.endswith("n't")
        for t in side.tokens[sentence.first : sentence.last]
    )


def _flipped(mine: Polarity, theirs: Polarity) -> bool:
    """A word in a negated clause on one side and in a plain one on the other, and no word
    negated on both."""
    if mine.negated & theirs.negated:
        return False
    return bool(mine.negated & theirs.plain or theirs.negated & mine.plain)


def _modality(toks: list[Token], sentence: Sentence, text: str) -> str | None:
    words = {t.norm for t in toks[sentence.first : sentence.last]}
    if _NOT_NEEDED.search(text, sentence.start, sentence.end):
        return "weak"
    if words & STRONG or _OBLIGATION.search(text[sentence.start : sentence.end]):
        return "strong"
    if words & WEAK or _PERMISSION.search(text[sentence.start : sentence.end]):
        return "weak"
    if words & ADVICE:
        return "advice"
    return None


def _span(text: str, sentence: Sentence) -> tuple[str, int, int]:
    return text[sentence.start : sentence.end], sentence.start, sentence.end


def compare(pair: PairView, statements: list[tuple[Sentence, Sentence]]) -> list[Evidence]:
    """`statements`: production sentences paired with the candidate's (`pairing.py`)."""
    p, c = pair.production, pair.candidate
    found: list[Evidence] = []
    polarities: dict[Sentence, Polarity] = {}

    def mine(sentence: Sentence) -> Polarity:
        if sentence not in polarities:
            polarities[sentence] = _polarity(p, sentence)
        return polarities[sentence]

    for sentence, other in statements:
        before, after = _span(p.prose, sentence), _span(c.prose, other)
        flipped = False
        if _may_negate(p, sentence) or _may_negate(c, other):
            theirs = _polarity(c, other)
            # Words of other production sentences merged into the same one are theirs.
            for also, same in statements:
                if same == other and also != sentence:
                    theirs.negated.difference_update(mine(also).words)
                    theirs.plain.difference_update(mine(also).words)
            flipped = _flipped(mine(sentence), theirs)
        if flipped:
            found.append(
                evidence(
                    "negation",
                    "high",
                    f"negation flipped: “{before[0]}” → “{after[0]}”",
                    before,
                    after,
                )
            )
            continue
        strength = _modality(p.tokens, sentence, p.prose)
        other_strength = _modality(c.tokens, other, c.prose)
        if (
            strength
            and other_strength
            and "strong" in (strength, other_strength)
            and (strength != other_strength)
        ):
            found.append(
                evidence(
                    "modality",
                    "medium",
                    f"{strength} → {other_strength}: “{before[0]}” → “{after[0]}”",
                    before,
                    after,
                )
            )
    return found
