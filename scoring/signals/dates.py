"""Dates and times of day an answer states, read into comparable parts: a date as (year,
month, day, weekday), each None when not stated (`Friday, 14 March` ~ `2025-03-14`), a time
as minutes after midnight (`3 pm` = `15:00`). `quantities` turns them into values."""

from __future__ import annotations

import re
from typing import Final

DateParts = tuple[int | None, int | None, int | None, int | None]

MONTHS: Final = tuple(
    "january february march april may june july august september october november december".split()
)
WEEKDAYS: Final = tuple("monday tuesday wednesday thursday friday saturday sunday".split())
# Words that may belong to a date or a time; any digit may too.
DATE_WORDS: Final = frozenset(
    {*MONTHS, *(m[:3] for m in MONTHS), *WEEKDAYS, *(w + "s" for w in WEEKDAYS)}
)
TIME_WORDS: Final = frozenset({"noon", "midday", "midnight"})

_MONTH_ALTS: Final = "|".join(
    [m.capitalize() for m in MONTHS] + [m[:3].capitalize() + r"\.?" for m in MONTHS if m != "may"]
)
_WEEKDAY_ALTS: Final = "|".join(w.capitalize() for w in WEEKDAYS)
_DATE: Final = re.compile(
    rf"(?=\b[\dA-Z])(?:(?P<iso>\b(?P<iy>\d{{4}})-(?P<im>\d{{2}})-(?P<id>\d{{2}}))"
    rf"|(?:(?P<wd1>{_WEEKDAY_ALTS}),?\s+)?(?:the\s+)?(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?"
    rf"(?P<m1>{_MONTH_ALTS})(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|(?:(?P<wd2>{_WEEKDAY_ALTS}),?\s+)?(?P<m2>{_MONTH_ALTS})\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?"
    rf"\b(?:,?\s+(?P<y2>\d{{4}}))?"
    rf"|\b(?P<sa>\d{{1,2}})/(?P<sb>\d{{1,2}})/(?P<sy>\d{{2,4}})\b"
    rf"|\b(?P<wd3>{_WEEKDAY_ALTS})s?\b"
    rf"|\b(?P<m3>{_MONTH_ALTS})(?:\s+(?P<y3>\d{{4}}))?\b)"
)
_TIME: Final = re.compile(
    r"(?=[\dnm])(?:\b(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b(?:(?<=\.)|\.(?=\w))?"
    r"|(?:(?<=T)|\b)(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)(?::\d{2})?\b"
    r"|\b(?P<word>noon|midday|midnight)\b)",
    re.I,
)
# Substrings without which a window holds no date: a few `in` tests are far cheaper than
# running the full pattern over every sentence.
_DATE_HINTS: Final = ("-", "/", *(m[:3] for m in MONTHS), *(w[:3] for w in WEEKDAYS))


def dates(text: str, start: int, end: int) -> list[tuple[re.Match[str], DateParts]]:
    """The dates in `text[start:end]`, each with its stated parts."""
    found: list[tuple[re.Match[str], DateParts]] = []
    lower = text[start:end].lower()
    if not any(hint in lower for hint in _DATE_HINTS):
        return found
    for m in _DATE.finditer(text, start, end):
        g = m.groupdict()
        year = month = day = weekday = None
        if g["iso"]:
            year, month, day = int(g["iy"]), int(g["im"]), int(g["id"])
        elif g["sa"]:
            # 05/03/2025: day and month order is ambiguous, so keep both numbers as written.
            year, month, day = int(g["sy"]), int(g["sa"]), int(g["sb"])
        else:
            name = g["m1"] or g["m2"] or g["m3"]
            if name:
                month = 1 + [x[:3] for x in MONTHS].index(name[:3].lower())
            day_text = g["d1"] or g["d2"]
            day = int(day_text) if day_text else None
            year_text = g["y1"] or g["y2"] or g["y3"]
            year = int(year_text) if year_text else None
            weekday_name = g["wd1"] or g["wd2"] or g["wd3"]
            if weekday_name:
                weekday = WEEKDAYS.index(weekday_name.lower())
        found.append((m, (year, month, day, weekday)))
    return found


def times(text: str, start: int, end: int) -> list[tuple[re.Match[str], int]]:
    """The times of day in `text[start:end]`, each in minutes after midnight."""
    found = []
    for m in _TIME.finditer(text, start, end):
        if m.group("word"):
            minutes = 0 if m.group("word").lower() == "midnight" else 720
        elif m.group("h24") is not None:
            minutes = int(m.group("h24")) * 60 + int(m.group("m24"))
        else:
            hour = int(m.group("h"))
            if hour > 12:
                continue
            hour = hour % 12 + (12 if m.group("ap").lower() == "p" else 0)
            minutes = hour * 60 + int(m.group("m") or 0)
        found.append((m, minutes))
    return found
