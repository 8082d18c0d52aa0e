"""JSON answers compared field by field: when the request asked for JSON (`response_format`
json_object / json_schema) or both answers are JSON documents. Every changed, missing or
extra value is an item with its path; a JSON request answered in prose is one too."""

from __future__ import annotations

from gateway.records import Evidence
from scoring.signals._pair import PairView, evidence
from scoring.signals._structured import diff, locate, shown
from scoring.signals.parse import MISSING

_SEVERITY = {"changed": "high", "missing": "high", "extra": "medium"}


def compare(pair: PairView, *, wants_json: bool) -> list[Evidence]:
    p, c = pair.production, pair.candidate
    if p.document is MISSING:
        return []
    if c.document is MISSING:
        if not wants_json or not c.text.strip():
            return []
        return [
            evidence(
                "json",
                "high",
                "JSON was asked for; the candidate answered in prose",
                candidate=(c.text[:80], 0, len(c.text)),
            )
        ]
    found = []
    for d in diff(p.document, c.document):
        p_span = locate(p.text, d.path, d.production) if d.what != "extra" else None
        c_span = locate(c.text, d.path, d.candidate) if d.what != "missing" else None
        if d.what == "changed":
            message = f"{d.path}: {shown(d.production)} → {shown(d.candidate)}"
        elif d.what == "missing":
            message = f"{d.path} missing (was {shown(d.production)})"
        else:
            message = f"{d.path} added ({shown(d.candidate)})"
        found.append(
            evidence(
                "json",
                "high" if d.what != "extra" else "medium",
                message,
                (shown(d.production), *p_span) if p_span else None,
                (shown(d.candidate), *c_span) if c_span else None,
                path=d.path,
            )
        )
    return found
