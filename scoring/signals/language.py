"""A switch of language: each answer's language told from its script (CJK, Cyrillic, Arabic,
...) or, for Latin script, from the share of its words that are common function words of
one of ten languages. Cheap (a set lookup per word) and needs no model; it only speaks when
both answers are long enough and clearly one language each."""

from __future__ import annotations

import re
from typing import Final

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._text import Token

_FUNCTION_WORDS: Final = {
    "en": "the and is are of to in for with that this it you your not be on at from by we "
    "can will have has or as was were they their which",
    "es": "el la los las de del y es son en para con que por una un su sus no se lo al "
    "como más pero está están este esta",
    "fr": "le la les de des du et est sont en pour avec que qui une un sur pas ne se au aux "
    "dans par vous nous ce cette il elle",
    "de": "der die das und ist sind ein eine einen mit für von zu den dem nicht sie es auf "
    "im in ich wir ihr auch oder wenn",
    "it": "il lo la gli le di del della e è sono per con che un una non si al nel alla "
    "come più ma questo questa",
    "pt": "o a os as de do da dos das e é são em para com que um uma não se ao no na por "
    "mais mas este esta você",
    "nl": "de het een en is zijn van voor met dat die niet op in te aan er ook als bij of "
    "je wij u hij zij",
    "pl": "i w z na się nie do jest to że o co jak ale od po przez dla są oraz tak",
    "sv": "och är att en ett det som på för med inte av till har om jag vi de den",
    "tr": "ve bir bu da de için ile çok daha olarak gibi ne var değil ama",
}
_LANGS: Final = tuple(_FUNCTION_WORDS)
_WORD_LANGS: Final[dict[str, tuple[int, ...]]] = {}
for _n, _words in enumerate(_FUNCTION_WORDS.values()):
    for _w in _words.split():
        _WORD_LANGS[_w] = (*_WORD_LANGS.get(_w, ()), _n)
_SCRIPTS: Final = tuple(
    (code, re.compile(f"[{chr(low)}-{chr(high)}]"))
    for code, low, high in (
        ("ja", 0x3040, 0x30FF),
        ("zh", 0x4E00, 0x9FFF),
        ("ko", 0xAC00, 0xD7AF),
        ("ru", 0x0400, 0x04FF),
        ("ar", 0x0600, 0x06FF),
        ("he", 0x0590, 0x05FF),
        ("el", 0x0370, 0x03FF),
        ("hi", 0x0900, 0x097F),
        ("th", 0x0E00, 0x0E7F),
    )
)
MIN_WORDS: Final = 6


def detect(text: str, toks: list[Token]) -> str | None:
    """The answer's language code, or None when unsure."""
    if not text.isascii():
        letters = sum(1 for ch in text if ch.isalpha())
        for code, script in _SCRIPTS:
            # Kana is enough for Japanese, which also writes kanji.
            share = 0.05 if code == "ja" else 0.3
            if letters >= 12 and len(script.findall(text)) > share * letters:
                return code
    counts = [0] * len(_LANGS)
    words = 0
    for t in toks:
        if t.norm.isalpha():
            words += 1
            for n in _WORD_LANGS.get(t.norm, ()):
                counts[n] += 1
    if words < MIN_WORDS:
        return None
    ranked = sorted(zip(counts, _LANGS, strict=True), reverse=True)
    (best, lang), (second, _) = ranked[0], ranked[1]
    if best >= 3 and best >= 1.5 * second and best >= 0.15 * words:
        return lang
    return None


CHANGED: Final = 0.5
"""A switch of language changes most words; below this share of changed words, no check."""


def compare(pair: PairView) -> list[Evidence]:
    if pair.changed_share < CHANGED:
        return []
    p, c = pair.production, pair.candidate
    before = detect(p.prose, p.tokens)
    after = detect(c.prose, c.tokens) if before else None
    if before and after and before != after:
        return [
            evidence(
                "language",
                "high",
                f"language {before} → {after}",
                (before, 0, len(p.text)),
                (after, 0, len(c.text)),
            )
        ]
    return []
