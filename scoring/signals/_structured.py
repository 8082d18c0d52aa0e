"""A field-by-field comparison of two JSON values, independent of key order, with the path of
every difference. Short strings compare case- and space-insensitively; long strings (free
text inside a document or a tool argument) compare by the values they state and their
content words, so a reworded sentence is not a change but a changed date in it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from scoring.signals._text import content, dice, tokens
from scoring.signals.quantities import values

LONG_WORDS: Final = 6
SIMILAR_TEXT: Final = 0.5


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    what: str
    """changed, missing (in the candidate) or extra (only in the candidate)."""
    production: Any = None
    candidate: Any = None


def _same_text(a: str, b: str) -> bool:
    if " ".join(a.split()).casefold() == " ".join(b.split()).casefold():
        return True
    if len(a.split()) < LONG_WORDS or len(b.split()) < LONG_WORDS:
        return False
    va, vb = values(a), values(b)
    if len(va) != len(vb) or not all(any(x.same(y) for y in vb) for x in va):
        return False
    ta, tb = tokens(a), tokens(b)
    return dice(content(ta, 0, len(ta), frozenset()), content(tb, 0, len(tb), frozenset())) >= (
        SIMILAR_TEXT
    )


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def diff(a: Any, b: Any, path: str = "") -> list[Difference]:
    """Differences between production's value `a` and the candidate's `b`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[Difference] = []
        for key in a:
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(Difference(sub, "missing", a[key], None))
            else:
                out.extend(diff(a[key], b[key], sub))
        out.extend(
            Difference(f"{path}.{k}" if path else str(k), "extra", None, b[k])
            for k in b
            if k not in a
        )
        return out
    if isinstance(a, list) and isinstance(b, list):
        if sorted(map(_canonical, a)) == sorted(map(_canonical, b)):
            return []
        out = []
        for n, (x, y) in enumerate(zip(a, b, strict=False)):
            out.extend(diff(x, y, f"{path}.{n}" if path else str(n)))
        out.extend(
            Difference(f"{path}.{n}", "missing", x, None) for n, x in enumerate(a[len(b) :], len(b))
        )
        out.extend(
            Difference(f"{path}.{n}", "extra", None, y) for n, y in enumerate(b[len(a) :], len(a))
        )
        return out
    if isinstance(a, str) and isinstance(b, str):
        return [] if _same_text(a, b) else [Difference(path, "changed", a, b)]
    if type(a) is not type(b) and not (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return [Difference(path, "changed", a, b)]
    return [] if a == b else [Difference(path, "changed", a, b)]


def shown(value: Any) -> str:
    """A value as a reviewer reads it."""
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def locate(text: str, path: str, value: Any) -> tuple[int, int] | None:
    """Where a value of `path` is written in a JSON text, roughly: after its key if the key is
    found, else anywhere. Good enough to highlight; None when it cannot be found."""
    key = next((part for part in reversed(path.split(".")) if not part.isdigit()), None)
    at = text.find(f'"{key}"') if key else 0
    at = max(at, 0)
    needle = orjson.dumps(value).decode() if value is not None else None
    for candidate in (needle, needle.replace('":', '": ') if needle else None):
        if candidate:
            where = text.find(candidate, at)
            if where >= 0:
                return where, where + len(candidate)
    if key and text.find(f'"{key}"') >= 0:
        start = text.find(f'"{key}"')
        return start, start + len(key) + 2
    return None
