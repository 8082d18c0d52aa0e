"""Properties of the scrubber over generated inputs: idempotent, nothing detected survives,
JSON keeps its shape, clean text is untouched, pathological inputs stay linear."""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import ScrubConfig
from gateway.scrub import Scrubber

SCRUBBER = Scrubber(ScrubConfig())

PII = st.sampled_from(
    [
        "jane.doe@example.com",
        "+44 20 7946 0958",
        "4111 1111 1111 1111",
        "GB82WEST12345698765432",
        "460-89-9847",
        "106.31.73.20",
        "sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H",
        "AKIAIOSFODNN7EXAMPLE",
    ]
)
WORDS = st.sampled_from(
    ["the", "model", "answer", "is", "a", "refund", "for", "order", "and", "please", "\n", ","]
)
TEXT = st.lists(st.one_of(WORDS, PII), max_size=40).map(" ".join)
CLEAN = st.lists(WORDS, max_size=60).map(" ".join)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["content", "prompt", "input", "text"]), children,
                        max_size=4),
    ),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_scrubbing_is_idempotent(text: str) -> None:
    once = SCRUBBER.session().text(text)
    assert SCRUBBER.session().text(once) == once


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_no_detected_value_survives(text: str) -> None:
    values = {text[a:b] for a, b, _ in SCRUBBER.detect(text)}
    out = SCRUBBER.session().text(text)
    for value in values:
        assert value not in out


@settings(max_examples=200, deadline=None)
@given(CLEAN)
def test_text_without_pii_comes_back_identical(text: str) -> None:
    assert SCRUBBER.session().text(text) == text


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_json_stays_valid_and_keeps_its_shape(document: Any) -> None:
    out = SCRUBBER.session().json(document)
    assert shape(out) == shape(document)
    assert orjson.loads(orjson.dumps(out)) == out


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_unicode_never_raises(text: str) -> None:
    out = SCRUBBER.session().text(text)
    assert isinstance(out, str)


def elapsed(text: str) -> float:
    started = time.perf_counter()
    SCRUBBER.session().text(text)
    return time.perf_counter() - started


def test_pathological_inputs_scale_linearly() -> None:
    # Ten times the input may take ten times as long, with generous slack for noise, but
    # never the hundredfold a quadratic backtracking pattern would need.
    for unit in ("9", "1 ", "a@", "key: ", "sk-", "Dr ", ":", "(1) ", "\ud800"):
        small, large = unit * 10_000, unit * 100_000
        ratio = elapsed(large) / max(elapsed(small), 1e-4)
        assert ratio < 40, (unit, ratio)


def test_deeply_nested_json_and_megabyte_strings() -> None:
    nested: Any = "call 212 555 0147"
    for _ in range(100):  # orjson stops at 255 levels; this is 200
        nested = {"content": [nested]}
    out = SCRUBBER.session().json(nested)
    assert "<PHONE_1>" in orjson.dumps(out).decode()
    big = "lorem ipsum " * 90_000 + "a@b.co"
    assert SCRUBBER.session().text(big).endswith("<EMAIL_1>")
