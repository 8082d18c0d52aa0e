"""Units and currencies as an answer writes them, each mapped to a dimension and a factor to
its base unit (mg for mass, ml for volume, seconds for durations, ...), so that `0.5 g` and
`500 mg` compare equal. `quantities` finds the numbers they follow."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

# (pattern, dimension, factor to the dimension's base unit). Longest spellings first.
_UNITS: Final[tuple[tuple[str, str, float], ...]] = (
    (r"micrograms?|mcg|[µμ]g", "mass", 0.001),
    (r"milligrams?|mg", "mass", 1.0),
    (r"kilograms?|kilos?|kg", "mass", 1e6),
    (r"grams?|gr|g", "mass", 1000.0),
    (r"pounds? weight|lbs?", "mass", 453_592.37),
    (r"ounces?|oz", "mass", 28_349.5),
    (r"millilit(?:re|er)s?|ml", "volume", 1.0),
    (r"centilit(?:re|er)s?|cl", "volume", 10.0),
    (r"decilit(?:re|er)s?|dl", "volume", 100.0),
    (r"lit(?:re|er)s?|l", "volume", 1000.0),
    (r"teaspoons?|tsp", "volume", 5.0),
    (r"tablespoons?|tbsp", "volume", 15.0),
    (r"cups?", "volume", 240.0),
    (r"km/h|kph|kmh|kilomet(?:re|er)s per hour", "speed", 1.0),
    (r"mph|miles per hour", "speed", 1.609344),
    (r"millimet(?:re|er)s?|mm", "length", 0.001),
    (r"centimet(?:re|er)s?|cm", "length", 0.01),
    (r"kilomet(?:re|er)s?|km", "length", 1000.0),
    (r"met(?:re|er)s?|m", "length", 1.0),
    (r"miles?|mi", "length", 1609.344),
    (r"feet|foot|ft", "length", 0.3048),
    (r"inch(?:es)?", "length", 0.0254),
    (r"milliseconds?|ms", "duration", 0.001),
    (r"seconds?|secs?|s", "duration", 1.0),
    (r"minutes?|mins?", "duration", 60.0),
    (r"hours?|hrs?|h", "duration", 3600.0),
    (r"(?:business |working |calendar )?days?", "duration", 86_400.0),
    (r"weeks?", "duration", 604_800.0),
    (r"months?", "duration", 2_629_800.0),
    (r"years?|yrs?", "duration", 31_557_600.0),
    (r"kilobytes?|kb", "data", 1e3),
    (r"megabytes?|mb", "data", 1e6),
    (r"gigabytes?|gb", "data", 1e9),
    (r"terabytes?|tb", "data", 1e12),
    (r"%|percent|per cent|pct", "percent", 1.0),
    (r"° ?c|º ?c|degrees? (?:celsius|centigrade|c)|celsius", "celsius", 1.0),
    (r"° ?f|º ?f|degrees? (?:fahrenheit|f)|fahrenheit", "fahrenheit", 1.0),
    (r"degrees?|°", "degree", 1.0),
)
_CURRENCY_WORDS: Final = {
    word: code
    for code, words in (
        ("USD", "dollar dollars usd $ us$"),
        ("EUR", "euro euros eur €"),
        ("GBP", "pound pounds gbp £ quid"),
        ("JPY", "yen jpy ¥"),
        ("CHF", "chf francs"),
    )
    for word in words.split()
}
CURRENCY_AFTER: Final = r"dollars?|euros?|pounds?|usd|eur|gbp|yen|jpy|chf|francs|quid"
UNIT_ALTS: Final = "|".join(f"(?:{pattern})" for pattern, _, _ in _UNITS)
_UNIT_RES: Final = tuple((re.compile(rf"(?:{p})\Z", re.I), dim, f) for p, dim, f in _UNITS)


def unit_of(unit: str) -> tuple[str, float]:
    """A unit or currency as written -> (its dimension, its factor to the base unit); a number
    without a known unit is a count."""
    return _unit_of(unit.lower())


@lru_cache(maxsize=1024)
def _unit_of(lower: str) -> tuple[str, float]:
    if lower in _CURRENCY_WORDS:
        return f"money:{_CURRENCY_WORDS[lower]}", 1.0
    for pattern, dimension, factor in _UNIT_RES:
        if pattern.match(lower):
            return dimension, factor
    return "count", 1.0


def normalise(dimension: str, amount: float) -> tuple[str, float]:
    """Fahrenheit as Celsius, so the two compare."""
    if dimension == "fahrenheit":
        return "celsius", round((amount - 32) * 5 / 9, 2)
    return dimension, amount
