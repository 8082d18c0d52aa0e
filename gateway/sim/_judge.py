"""The simulator's judge profile: answers the LLM judge's prompt (`scoring.llm_judge.prompt`)
deterministically, from plain heuristics on the two answers in it, so tests and the demo have
a judge without a network.

A stand-in, not a model: it notices refusals, changed tool calls, JSON and code (read with
the signals' parser, as a model would read them), cut-off answers, values (numbers with their
units, times) that production gave and the candidate dropped or changed, and a flipped
negation or obligation. Anything else is acceptable.
"""

from __future__ import annotations

import re
from typing import Final

import orjson

from scoring.llm_judge.prompt import blocks_of
from scoring.signals.parse import MISSING, Parsed, parse

_REFUSAL: Final = re.compile(
    r"\b(I(?:'m| am) (?:sorry|afraid|unable|not able)|I can(?:'|no)t (?:help|assist|provide)"
    r"|I must decline)",
    re.I,
)
_SMALL: Final = {
    word: n
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_TENS: Final = {
    word: 10 * n
    for n, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), start=3)
}
_SCALES: Final = {"hundred": 100, "thousand": 1000}
# Units folded to one base unit each, so "650 mg" and "0.65 g" are the same value.
_UNITS: Final = {
    name: (base, scale)
    for base, scale, names in (
        ("g", 0.001, "mg milligram milligrams"),
        ("g", 1.0, "g gram grams"),
        ("g", 1000.0, "kg kilogram kilograms"),
        ("l", 0.001, "ml"),
        ("l", 1.0, "l litre litres liter liters"),
        ("%", 1.0, "% percent"),
    )
    for name in names.split()
}
_CLOCK: Final = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b\.?|\b(\d{1,2}):(\d{2})\b", re.I
)
_NUMBER: Final = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(%|[a-z]+)?", re.I)
_WORD: Final = re.compile(r"[a-z]+(?:'[a-z]+)?|%|\d+(?:\.\d+)?", re.I)
_NEGATIONS: Final = frozenset(["not", "no", "never", "cannot", "without", "nothing", "none", "nor"])
_STRONG: Final = frozenset(["must", "required", "mandatory", "always", "compulsory", "need"])
_WEAK: Final = frozenset(["may", "might", "optional", "can", "could"])


def _spelled(text: str) -> str:
    """Number words as digits ("two hundred" -> "200"), so spelled-out values compare equal."""
    out: list[str] = []
    value: int | None = None
    for token in re.split(r"(\s+|-)", text):
        word = token.lower()
        if word in _SMALL or word in _TENS:
            value = (value or 0) + _SMALL.get(word, _TENS.get(word, 0))
        elif word in _SCALES and value is not None:
            value *= _SCALES[word]
        elif value is not None and (not word.strip() or word == "-"):
            continue
        else:
            if value is not None:
                out.append(f"{value} ")
                value = None
            out.append(token)
    if value is not None:
        out.append(str(value))
    return "".join(out)


def _minutes(match: re.Match[str]) -> int:
    if match.group(3):  # 12-hour clock
        hour = int(match.group(1)) % 12 + (12 if match.group(3).lower() == "p" else 0)
        return hour * 60 + int(match.group(2) or 0)
    return int(match.group(4)) * 60 + int(match.group(5))


def _values(text: str) -> set[str]:
    """The values an answer states: times of day in minutes, numbers in a base unit."""
    text = _spelled(text)
    found = {f"time {_minutes(m)}" for m in _CLOCK.finditer(text)}
    for match in _NUMBER.finditer(_CLOCK.sub(" ", text)):
        number = float(match.group(1).replace(",", ""))
        unit, scale = _UNITS.get((match.group(2) or "").lower(), ("", 1.0))
        found.add(f"{number * scale:g}{unit}")
    return found


def _count(words: list[str], vocabulary: frozenset[str]) -> int:
    return sum(1 for w in words if w in vocabulary)


def _negations(words: list[str]) -> int:
    return sum(1 for w in words if w in _NEGATIONS or w.endswith("n't"))


def _calls(parsed: Parsed) -> list[bytes]:
    calls = [
        orjson.dumps([c.name, c.arguments], option=orjson.OPT_SORT_KEYS) for c in parsed.tool_calls
    ]
    return sorted(calls)


def _code(parsed: Parsed) -> list[str]:
    return ["".join(block.code.split()) for block in parsed.code]


def _verdict(production: str, candidate: str) -> tuple[str, str]:
    prod, cand = production.strip(), candidate.strip()
    prod_refuses, cand_refuses = (
        not prod or bool(_REFUSAL.search(prod[:300])),
        not cand or bool(_REFUSAL.search(cand[:300])),
    )
    if cand_refuses and not prod_refuses:
        return "regression", "the candidate refuses or says nothing where production answered"
    if prod_refuses and not cand_refuses:
        return "improvement", "the candidate answers where production refused"
    # Structure as the judge would read it: tool calls (streamed deltas joined), JSON, code.
    prod_parsed, cand_parsed = parse(prod), parse(cand)
    if prod_parsed.tool_calls or cand_parsed.tool_calls:
        if _calls(prod_parsed) == _calls(cand_parsed):
            return "acceptable", "the same tool calls"
        return "regression", "a tool call or its arguments changed"
    if prod_parsed.document is not MISSING:
        if prod_parsed.document == cand_parsed.document:
            return "acceptable", "the same JSON"
        return "regression", "a value in the JSON answer changed"
    if _code(prod_parsed) != _code(cand_parsed):
        return "regression", "the code in the answer changed"
    prod, cand = prod_parsed.prose.strip(), cand_parsed.prose.strip()
    if prod[-1:] in ".!?)" and cand[-1:] not in ".!?)\"'`" and len(cand) < len(prod):
        return "regression", "the candidate's answer stops mid-sentence"
    lost = _values(prod) - _values(cand)
    if lost:
        return "regression", "production's " + ", ".join(sorted(lost)) + " missing or changed"
    prod_words = [w.lower() for w in _WORD.findall(prod)]
    cand_words = [w.lower() for w in _WORD.findall(cand)]
    if _negations(prod_words) != _negations(cand_words):
        return "regression", "a statement is negated in one answer and not in the other"
    strong = _count(prod_words, _STRONG) - _count(cand_words, _STRONG)
    weak = _count(prod_words, _WEAK) - _count(cand_words, _WEAK)
    if strong * weak < 0:
        return "regression", "an obligation became optional, or the reverse"
    return "acceptable", "the same content in other words"


def judge_answer(texts: list[str]) -> str:
    """The judge's JSON answer to a judge prompt (the chat messages' texts)."""
    blocks = blocks_of("\n".join(texts))
    if "production" not in blocks or "candidate" not in blocks:
        return orjson.dumps({"verdict": "acceptable", "reason": "no answers to compare"}).decode()
    label, reason = _verdict(blocks["production"], blocks["candidate"])
    return orjson.dumps({"verdict": label, "reason": reason}).decode()
