"""Values an answer states, normalised so that different ways of writing the same value compare
equal: numbers in digits or words (`five` = 5, `1,000` = 1000), quantities in one base unit
per dimension (`0.5 g` = `500 mg`, `100.4 °F` = `38 °C`, `2 hours` = `120 minutes`), money by
currency, percentages, and the dates and times of day `dates` reads. Hand-written on purpose:
the libraries that do this (quantulum3, pint, dateparser) cost milliseconds per answer, and
the worker has a budget of one for every signal together.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from scoring.signals._text import Token
from scoring.signals.dates import (
    DATE_WORDS,
    MONTHS,
    TIME_WORDS,
    WEEKDAYS,
    DateParts,
    dates,
    times,
)
from scoring.signals.units import CURRENCY_AFTER, UNIT_ALTS, normalise, unit_of


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# The English number words below a hundred, by value (`TENS[2]` is twenty).
ONES: Final = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
TENS: Final = ("", "", *_words("twenty thirty forty fifty sixty seventy eighty ninety"))
_SMALL: Final = {w: n for n, w in enumerate(ONES)}
_TENS: Final = {w: 10 * n for n, w in enumerate(TENS) if w}
_SCALES: Final = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 10**9}
_WORDNUM: Final = "|".join(sorted([*_SMALL, *_TENS, *_SCALES], key=len, reverse=True))

_NUMBER: Final = (
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
    rf"|(?:{_WORDNUM})(?:(?:\s+and\s+|\s+|-)(?:{_WORDNUM}))*"
    r"|\b(?-i:a|an|per|every|each)(?=\s+(?:day|week|month|year|hour|minute|second)\b)"
)
ONE_UNIT: Final = frozenset({"a", "an", "per", "every", "each"})
_QUANTITY: Final = re.compile(
    # The lookahead fails fast inside words and on spaces, most of any text.
    rf"(?=[\d$€£¥]|\b[a-z])(?P<cur>[$€£¥]|\b(?:usd|eur|gbp|chf|jpy)\s?)?"
    rf"(?<![\w.,])(?P<num>{_NUMBER})"
    rf"(?:(?:\s?|-)(?P<unit>{UNIT_ALTS}|{CURRENCY_AFTER})(?![\w/]))?",
    re.I,
)


class Value(NamedTuple):
    """A value stated in an answer: `kind` is number, date or time."""

    kind: str
    dimension: str
    """number: mass, volume, ..., money:USD, count; date: date; time: time."""
    amount: float
    date: DateParts = (None, None, None, None)
    """(year, month, day, weekday) of a date, each None when not stated."""
    text: str = ""
    start: int = 0
    end: int = 0
    factor: float = 1.0
    """What the stated number was multiplied by to reach the base unit."""

    @property
    def unit_only(self) -> bool:
        """`a day`, `per week`: a unit without a number, often reworded (`daily`)."""
        return self.text.split(maxsplit=1)[0].lower() in ONE_UNIT

    def same(self, other: Value) -> bool:
        """Whether two values state the same thing (dates: no stated field disagrees)."""
        if self.kind != other.kind or self.dimension != other.dimension:
            return False
        if self.kind == "date":
            shared = [
                (a, b)
                for a, b in zip(self.date, other.date, strict=True)
                if a is not None and b is not None
            ]
            return bool(shared) and all(a == b for a, b in shared)
        tolerance = 0.051 if self.dimension == "celsius" else 1e-9 * max(1.0, abs(self.amount))
        return abs(self.amount - other.amount) <= tolerance


_VALUE_WORDS: Final = frozenset(
    {*_SMALL, *_TENS, *_SCALES, *"noon midday midnight $ € £ ¥".split(), *MONTHS, *WEEKDAYS}
    | {name[:3] for name in (*MONTHS, *WEEKDAYS)}
)


_TIME_UNITS: Final = frozenset({"day", "week", "month", "year", "hour", "minute", "second"})


def may_state(tokens: list[Token]) -> bool:
    """Whether word tokens could hold a value: a quick test before the regular expressions."""
    for n, t in enumerate(tokens):
        if t.norm[0].isdigit() or t.norm in _VALUE_WORDS:
            return True
        if t.norm in ONE_UNIT and n + 1 < len(tokens) and tokens[n + 1].norm in _TIME_UNITS:
            return True
    return False


def word_number(text: str) -> float | None:
    """`five hundred and twelve` -> 512; None if a word is not a number word."""
    total = current = 0
    for word in re.split(r"[\s-]+", text.lower()):
        if word == "and":
            continue
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
        else:
            return None
    return float(total + current)


def _number(text: str) -> float | None:
    if text.lower() in ONE_UNIT:
        return 1.0
    if text[0].isdigit():
        return float(text.replace(",", ""))
    return word_number(text)


# Substrings without which a window holds no spelled-out number and no `a day`: a few `in`
# tests are far cheaper than running the full pattern over every sentence.
_WORD_HINTS: Final = (
    *ONES[:13],
    "teen",
    *TENS[2:],
    *_SCALES,
    *(
        f"{word} {unit}"
        for word in ONE_UNIT
        for unit in ("day", "week", "month", "year", "hour", "minute", "second")
    ),
)
_NUMBER_START: Final = re.compile(r"[\d$€£¥]")
_CODE_BEFORE: Final = re.compile(r"(?:usd|eur|gbp|chf|jpy)\s?\Z", re.I)


def _dates(text: str, taken: list[tuple[int, int]], start: int, end: int) -> list[Value]:
    found = dates(text, start, end)
    taken.extend(m.span() for m, _ in found)
    return [Value("date", "date", 0.0, parts, m.group(), m.start(), m.end()) for m, parts in found]


def _times(text: str, taken: list[tuple[int, int]], start: int, end: int) -> list[Value]:
    found = times(text, start, end)
    taken.extend(m.span() for m, _ in found)
    return [
        Value("time", "time", float(minutes), text=m.group(), start=m.start(), end=m.end())
        for m, minutes in found
    ]


def _overlaps(start: int, end: int, taken: list[tuple[int, int]]) -> bool:
    return any(start < b and a < end for a, b in taken)


def _joined_to_identifier(text: str, start: int) -> bool:
    """`INV-2291`, `A-113`, `GPT-4`: a number glued to a word by a hyphen is a name."""
    return start >= 2 and text[start - 1] in "-_#" and text[start - 2].isalnum()


_CURRENCY_SIGNS: Final = frozenset("$€£¥")
_ANCHORS: Final = frozenset({*_SMALL, *_TENS, *_SCALES, *ONE_UNIT, *_CURRENCY_SIGNS})


def sentence_values(text: str, toks: list[Token]) -> list[Value]:
    """The values among the word tokens of one sentence of `text`, as `values` finds them.
    The tokens say where a value may start (a digit, a currency sign, a number word) and
    whether a date or a time may be there, so most sentences run no pattern at all and the
    rest run the quantity pattern only where a value may start."""
    anchors = []
    dated = timed = False
    for t in toks:
        if t.norm[0].isdigit():
            anchors.append(t.start)
            dated = timed = True
        elif t.norm in _ANCHORS:
            anchors.append(t.start)
        elif t.norm in DATE_WORDS:
            dated = True
        elif t.norm in TIME_WORDS:
            timed = True
    if not (anchors or dated or timed):
        return []
    return _window(text, toks[0].start, toks[-1].end, anchors, dated=dated, timed=timed)


def values(text: str, windows: list[tuple[int, int]] | None = None) -> list[Value]:
    """Every number, quantity, date and time stated in `text` (or in its `windows`, character
    ranges such as the sentences that changed), in order of appearance."""
    found: list[Value] = []
    for start, end in windows if windows is not None else [(0, len(text))]:
        found.extend(_window(text, start, end))
    return found


def _matches(text: str, start: int, end: int) -> list[re.Match[str]]:
    """`_QUANTITY` matches in a window: anchored at digits and currency signs only, unless
    the window may spell a number out (then the whole pattern scans it)."""
    lower = text[start:end].lower()
    if any(hint in lower for hint in _WORD_HINTS):
        return list(_QUANTITY.finditer(text, start, end))
    out = []
    at = start
    for candidate in _NUMBER_START.finditer(text, start, end):
        if candidate.start() < at:
            continue
        match = _QUANTITY.match(text, candidate.start(), end)
        if match:
            out.append(match)
            at = match.end()
    return out


def _anchored(text: str, anchors: list[int], end: int) -> list[re.Match[str]]:
    """`_QUANTITY` matches that start at the given offsets, none inside another."""
    out = []
    at = 0
    for start in anchors:
        if start < at:
            continue
        match = _QUANTITY.match(text, start, end)
        if match:
            out.append(match)
            at = match.end()
    return out


def _window(
    text: str,
    window_start: int,
    window_end: int,
    anchors: list[int] | None = None,
    *,
    dated: bool = True,
    timed: bool = True,
) -> list[Value]:
    taken: list[tuple[int, int]] = []
    found = _dates(text, taken, window_start, window_end) if dated else []
    if anchors is None:
        matches = _matches(text, window_start, window_end)
    else:
        matches = _anchored(text, anchors, window_end)
    if timed and (matches or "noon" in text or "mid" in text):
        found += _times(text, taken, window_start, window_end)
    numbers: list[Value] = []
    for m in matches:
        start, end = m.start("num"), m.end()
        if _overlaps(start, end, taken) or _joined_to_identifier(text, start):
            continue
        glued = m.group("unit") is None and end < len(text) and text[end].isalnum()
        if glued and not _ORDINAL.match(text, end):
            continue  # `3x`, `4k`, `v2`: part of a name
        amount = _number(m.group("num"))
        if amount is None:
            continue
        currency, unit = m.group("cur"), m.group("unit")
        code = None if currency else _CODE_BEFORE.search(text, max(0, start - 4), start)
        if code:
            currency, start = code.group(), code.start()
        if currency:
            dimension, factor = unit_of(currency.strip())
            start = min(start, m.start())
        elif unit:
            dimension, factor = unit_of(unit)
        else:
            dimension, factor = "count", 1.0
        dimension, amount = normalise(dimension, amount * factor)
        numbers.append(
            Value(
                "number",
                dimension,
                amount,
                text=text[start:end].strip(),
                start=start,
                end=end,
                factor=factor,
            )
        )
    _share_units(text, numbers)
    found.extend(numbers)
    found.sort(key=lambda v: v.start)
    return found


_ORDINAL: Final = re.compile(r"(?:st|nd|rd|th)\b")
_RANGE: Final = re.compile(r"\s*(?:to|-|\u2013|\u2014|and|or)\s*\Z")


def _share_units(text: str, numbers: list[Value]) -> None:
    """`4 to 6 hours`, `10-20 mg`: the first number of a range takes the second one's unit."""
    for i in range(len(numbers) - 2, -1, -1):
        first, second = numbers[i], numbers[i + 1]
        if first.dimension == "count" and second.dimension != "count":
            between = text[first.end : second.start]
            if _RANGE.match(between) and second.dimension != "celsius":
                numbers[i] = Value(
                    "number",
                    second.dimension,
                    first.amount * second.factor,
                    text=first.text,
                    start=first.start,
                    end=first.end,
                    factor=second.factor,
                )
