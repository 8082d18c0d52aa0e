"""The scorer's evidence as a reviewer sees it: one finding per evidence item, a sentence and
where it is in each answer (character offsets into that answer's text), keyed by side.

Standard review keys the spans by `production` and `candidate` and keeps the scorer's sentence
("number 500 mg → 5 g", "limit 4 g removed"), most severe first. Blind review keys them by
`A` and `B` and rewords each item from its values ("number 500 mg in A, 5 g in B", "limit 4 g
only in B"): the scorer's sentences read from production to candidate (an arrow, "removed",
"added"), so they would tell the order. Blind findings carry neither kind nor severity and come
in text order: the detectors name and grade a value one answer lacks by which answer lacks it
("removed_statement" is high, an added number low), so either would tell the order.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Final

from gateway.review.blind import flag_phrase, sides

SEVERITIES: Final = ("high", "medium", "low")
ARMS: Final = ("production", "candidate")
# Kinds whose values are whole sentences (quoted) or code (in backticks).
_SENTENCES: Final = frozenset({"negation", "modality", "removed_statement"})
# What a blind sentence calls a value of a kind; kinds not listed are named as they are.
_SUBJECTS: Final = {
    "entity": "name",
    "removed_statement": "warning or limit",
}
# Value kinds whose scorer sentence opens with what the value is ("limit 4 g removed").
_VALUES: Final = frozenset({"number", "date", "time"})


def _span(item: dict[str, Any], arm: str) -> list[int] | None:
    span = item.get(f"{arm}_span")
    if isinstance(span, list | tuple) and len(span) == 2 and all(isinstance(x, int) for x in span):
        return [span[0], span[1]]
    return None


def _rank(item: dict[str, Any]) -> int:
    severity = item.get("severity")
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def standard(score: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings named by side, counted ones first, then by severity (the scorer's order
    otherwise)."""
    items = [i for i in score.get("evidence") or [] if isinstance(i, dict)]
    items.sort(key=lambda i: (bool(i.get("within_noise")), _rank(i)))
    return [
        {
            "kind": item.get("kind"),
            "severity": item.get("severity"),
            "text": item.get("message") or item.get("kind"),
            "within_noise": bool(item.get("within_noise")),
            "spans": {arm: _span(item, arm) for arm in ARMS},
        }
        for item in items
    ]


def _shown(kind: str, value: str) -> str:
    if kind in _SENTENCES:
        return f"“{value}”"
    return f"`{value}`" if kind == "code" else value


def _compare(subject: str, values: dict[str, str], *, colon: bool) -> str:
    """`subject` with its value in each answer (letter -> value), A first."""
    if len(values) == 2:
        return f"{subject}{':' if colon else ''} {values['A']} in A, {values['B']} in B"
    if len(values) == 1:
        ((letter, value),) = values.items()
        if colon:
            return f"{subject} only in {letter}: {value}"
        return f"{subject} {value} only in {letter}"
    return f"{subject}: A and B differ"


def _tool_sentence(message: str, letters: dict[str, str]) -> str:
    """A tool call item's values are whole calls; what changed is in its sentence."""
    p, c = letters["production"], letters["candidate"]
    if m := re.fullmatch(r"call (.+) missing", message):
        return f"call {m[1]} only in {p}"
    if m := re.fullmatch(r"extra call (.+)", message):
        return f"call {m[1]} only in {c}"
    if m := re.fullmatch(r"tool (.+?) → (.+)", message):
        return _compare("tool", {p: m[1], c: m[2]}, colon=False)
    if m := re.fullmatch(r"(.+?\)): (.+?) → (.+)", message):
        return _compare(m[1], {p: m[2], c: m[3]}, colon=True)
    if m := re.fullmatch(r"(.+?\)) (missing|extra)", message):
        return f"{m[1]} only in {p if m[2] == 'missing' else c}"
    return "tool calls: A and B differ"


def blind_sentence(item: dict[str, Any], letters: dict[str, str]) -> str:
    """The item in words that name answers by letter only; `letters`: arm -> letter."""
    kind = str(item.get("kind") or "change")
    phrase = flag_phrase(kind, letters["candidate"])
    if phrase is not None:
        return phrase
    path = item.get("path")
    if kind == "json" and path is None:
        return f"JSON was asked for; {letters['candidate']} answered in prose"
    if kind == "tool_call":
        return _tool_sentence(str(item.get("message") or ""), letters)
    subject = path or _SUBJECTS.get(kind, kind.replace("_", " "))
    if kind in _VALUES:
        subject = str(item.get("message") or kind).split(" ", 1)[0]
    values = {
        letters[arm]: _shown(kind, str(item[arm])) for arm in ARMS if item.get(arm) is not None
    }
    return _compare(subject, values, colon=bool(path) or kind in _SENTENCES)


def blind(
    score: dict[str, Any], candidate_side: str, *, said: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Findings named by letter, in the order they occur in A (then B); those whose sentence
    is in `said` (the blind item's evidence, "B contains a refusal") are left out."""
    letters = {arm: letter for letter, arm in sides(candidate_side).items()}
    found = []
    for item in score.get("evidence") or []:
        if not isinstance(item, dict) or blind_sentence(item, letters) in said:
            continue
        found.append(
            {
                "text": blind_sentence(item, letters),
                "within_noise": bool(item.get("within_noise")),
                "spans": {letters[arm]: _span(item, arm) for arm in ARMS},
            }
        )

    def position(finding: dict[str, Any]) -> tuple[int, int]:
        a, b = finding["spans"]["A"], finding["spans"]["B"]
        return (0, a[0]) if a else (1, b[0]) if b else (2, 0)

    return sorted(found, key=position)
