"""The labelled detection set on disk, and its cases as the pair records the worker scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.records import Exchange, PairRecord

DATA = Path(__file__).resolve().parent / "data" / "detection_pairs.jsonl"


def record(case: dict[str, Any]) -> PairRecord:
    def side(value: dict[str, Any] | None) -> Exchange | None:
        if value is None:
            return None
        return Exchange(status=200, text=value["text"], finish_reason=value.get("finish_reason"))

    production, candidate = side(case["production"]), side(case["candidate"])
    assert production is not None and candidate is not None
    return PairRecord(id=case["id"], ts=0.0, route=case["route"], request=case["request"],
                      production=production, candidate=candidate,
                      noise=side(case.get("noise")))  # fmt: skip
