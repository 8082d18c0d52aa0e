"""Blind pairwise review: an item's two answers as A and B, and a choice between them mapped
back to the label of the candidate.

Each item gets its letters once, at random, when the queue takes it in; every claim of it, by
any reviewer, shows the same order. The blind view names neither side: no production or
candidate keys, no noise sample (it would show which answer production's resembles), no
scores that compare one side with the other, and flags phrased per letter.
"""

from __future__ import annotations

import secrets
from typing import Any, Final, Literal

Side = Literal["A", "B"]
CHOICES: Final = ("A", "B", "tie", "both_bad")

# What a flag says about one answer, for "B contains a refusal".
_FLAG_PHRASES: Final = {
    "refusal": "{side} contains a refusal",
    "empty": "{side} is empty",
    "error": "{side} is an error",
    "timeout": "{side} timed out",
    "truncated": "{side} was cut off at the length limit",
    "invalid_json": "{side} is not valid JSON",
}
# Flags that compare the two answers: said of the pair, never of one side.
_PAIR_FLAGS: Final = {"length_ratio": "A and B differ a lot in length"}


def draw_candidate_side() -> Side:
    """The letter the candidate's answer gets on an item, drawn once per item."""
    return "A" if secrets.randbelow(2) == 0 else "B"


def sides(candidate_side: str) -> dict[str, str]:
    """The side order, as stored with a verdict: letter -> production | candidate."""
    other = "B" if candidate_side == "A" else "A"
    return {candidate_side: "candidate", other: "production"}


def label_for(choice: str, candidate_side: str) -> str:
    """The candidate's label for a blind choice: better -> improvement, worse -> regression,
    tie -> acceptable. Both bad -> acceptable too: the label says how the candidate compares
    with production, and it is no worse; the raw choice is kept, and the golden export leaves
    such items out since neither answer can be the approved one."""
    if choice in ("tie", "both_bad"):
        return "acceptable"
    return "improvement" if choice == candidate_side else "regression"


def _answer(exchange: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    usage = exchange.get("usage") or {}
    return {
        "text": exchange.get("text"),
        "error": exchange.get("error"),
        "finish_reason": exchange.get("finish_reason"),
        "latency_ms": exchange.get("latency_ms"),
        "completion_tokens": usage.get("completion_tokens"),
        "flags": [f for f in flags if f not in _PAIR_FLAGS],
    }


def flag_phrase(flag: str, side: str) -> str | None:
    """What a behavioural flag says about answer `side` (or the pair); None for other kinds."""
    phrase = _PAIR_FLAGS.get(flag) or _FLAG_PHRASES.get(flag)
    return phrase.format(side=side) if phrase else None


def evidence(score: dict[str, Any], candidate_side: str) -> list[str]:
    """Why the item was queued and what was flagged, per letter."""
    letters = sides(candidate_side)
    # Flags are rephrased per letter below; the LLM judge's opinion is left out (it would
    # lead the reviewer, and blind mode exists to get an unled choice).
    out = [r for r in score.get("reasons") or [] if not str(r).startswith(("flag:", "judge:"))]
    for letter in ("A", "B"):
        for flag in score.get(f"{letters[letter]}_flags") or []:
            out.append(flag_phrase(flag, letter) or f"{letter}: {flag}")
    return list(dict.fromkeys(out))


def blind_item(item: dict[str, Any], candidate_side: str) -> dict[str, Any]:
    """The review item as a blind reviewer sees it: the prompt and answers A and B."""
    pair, score = item.get("pair") or {}, item.get("score") or {}
    letters = sides(candidate_side)
    return {
        "route": pair.get("route"),
        "request": pair.get("request"),
        "answers": {
            letter: _answer(pair.get(arm) or {}, score.get(f"{arm}_flags") or [])
            for letter, arm in sorted(letters.items())
        },
        "evidence": evidence(score, candidate_side),
        "score": {k: score.get(k) for k in ("semantic", "noise_floor", "excess")},
        "priority": item.get("priority"),
    }
