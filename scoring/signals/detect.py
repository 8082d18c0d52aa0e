"""The signals of one pair, in one call: parse both answers once, align their words, and ask
each signal what changed. Pure and synchronous; the worker calls it per pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gateway.records import Evidence
from scoring.embedder import whole_words
from scoring.signals import (
    code,
    entities,
    json_fields,
    language,
    negation,
    numbers,
    removals,
    tools,
)
from scoring.signals._pair import PairView
from scoring.signals.pairing import sentence_pairs
from scoring.signals.parse import Parsed, parse


def load_vocabulary(tokenizer_json: Path) -> frozenset[str]:
    """The whole words of a WordPiece `tokenizer.json` (for use without an `Embedder`)."""
    model: Any = orjson.loads(tokenizer_json.read_bytes()).get("model", {})
    return whole_words(model.get("vocab", {}))


def _text(answer: str | Parsed | None) -> str:
    return answer.text if isinstance(answer, Parsed) else answer or ""


class Detector:
    """Compares what two answers assert; holds only the (read-only) vocabulary."""

    def __init__(self, *, vocabulary: frozenset[str]) -> None:
        self._vocabulary = vocabulary

    def compare(
        self,
        production: str | Parsed | None,
        candidate: str | Parsed | None,
        *,
        prompt: str = "",
        wants_json: bool = False,
        content: bool = True,
    ) -> list[Evidence]:
        """Evidence of what changed from production's answer to the candidate's. `prompt` is
        the user's last message; with `content=False` (a refusal, an empty answer) only
        structure is compared. An answer compared more than once (production's, against the
        candidate's and the noise sample's) may be passed parsed, so it is taken apart once."""
        if _text(production) == _text(candidate):
            return []
        pair = PairView(
            production if isinstance(production, Parsed) else parse(production),
            candidate if isinstance(candidate, Parsed) else parse(candidate),
        )
        found = tools.compare(pair) + json_fields.compare(pair, wants_json=wants_json)
        found += code.compare(pair)
        if not content:
            return found
        found += language.compare(pair)
        if found and found[-1].kind == "language":
            return found  # every word differs; the other prose signals would only echo it
        changed_values = numbers.compare(pair, prompt)
        found += changed_values
        statements = sentence_pairs(pair, negation.CUES)
        found += negation.compare(pair, statements)
        found += entities.compare(pair, self._vocabulary)
        explained = frozenset(
            e.production_span for e in changed_values if e.production_span and e.candidate_span
        )
        found += removals.compare(pair, statements, explained)
        return found
