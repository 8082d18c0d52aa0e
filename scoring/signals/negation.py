"""Negation and modality flips on the same statement: each changed sentence of production is
paired with the candidate sentence that shares most of its content words (wherever it moved
to), and the two are compared for polarity (`take it with food` / `do not take it with food`,
`covered` / `excluded`) and for the strength of obligation (`must` / `may`, `required` /
`optional`). Limits worded as negations (`no more than`, `do not exceed`) are not negations.
"""

from __future__ import annotations

import re
from typing import Final

from scoring.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import Sentence, Token, content, word_set

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
    r"\b(?:keep|stay|kept|stays|keeps)\b(?:\W+\w+){0,3}?\W+(?:away|out)\b", re.I
)
_OBLIGATION: Final = re.compile(r"\b(?:need|needs|have|has) to\b", re.I)
_PERMISSION: Final = re.compile(r"\bif you (?:like|wish|want|prefer)\b|\bup to you\b", re.I)
SIMILAR: Final = 0.5
"""Share of the shorter sentence's content words the other must have to be the same
statement (at least two words)."""


def _negations(toks: list[Token], sentence: Sentence, text: str) -> int:
    words = text[sentence.start : sentence.end]
    limits = sum(1 for _ in _LIMIT.finditer(words))
    away = sum(1 for _ in _AWAY.finditer(words))
    count = sum(
        1
        for t in toks[sentence.first : sentence.last]
        if t.norm in NEGATIONS or t.norm.endswith("n't")
    )
    return count - limits + away


def _modality(toks: list[Token], sentence: Sentence, text: str) -> str | None:
    words = {t.norm for t in toks[sentence.first : sentence.last]}
    if words & STRONG or _OBLIGATION.search(text[sentence.start : sentence.end]):
        return "strong"
    if words & WEAK or _PERMISSION.search(text[sentence.start : sentence.end]):
        return "weak"
    if words & ADVICE:
        return "advice"
    return None


def _overlap(a: set[str], b: set[str]) -> float:
    shared = len(a & b)
    return shared / min(len(a), len(b)) if shared >= 2 else 0.0


def _span(text: str, sentence: Sentence) -> tuple[str, int, int]:
    return text[sentence.start : sentence.end], sentence.start, sentence.end


def compare(pair: PairView) -> list[Evidence]:
    if not pair.blocks:
        return []
    p, c = pair.production, pair.candidate
    c_content = [content(c.tokens, s.first, s.last, CUES) for s in c.sentences]
    found: list[Evidence] = []
    for sentence in p.sentences:
        if pair.block_at("production", sentence.start, sentence.end) is None:
            continue
        mine = content(p.tokens, sentence.first, sentence.last, CUES)
        if not mine or not c_content:
            continue
        score, best = max((_overlap(mine, other), n) for n, other in enumerate(c_content))
        if score < SIMILAR:
            continue
        other = c.sentences[best]
        before, after = _span(p.prose, sentence), _span(c.prose, other)
        if _negations(p.tokens, sentence, p.prose) % 2 != _negations(c.tokens, other, c.prose) % 2:
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
