"""Properties of the scrubber over generated inputs: idempotent, nothing detected survives,
JSON keeps its shape, clean text is untouched, pathological inputs stay linear."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import ScrubConfig
from gateway.scrub.scrubber import Scrubber

SCRUBBER = Scrubber(ScrubConfig())

PII = st.sampled_from(
    [
        "jane.doe@example.com",
        "+44 20 7946 0958",
        "(212) 555-0147",
        "4111 1111 1111 1111",
        "GB82WEST12345698765432",
        "460-89-9847",
        "106.31.73.20",
        "2001:db8::8a2e:370:7334",
        "00:1A:2B:3C:4D:5E",
        "sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H",
        "AKIAIOSFODNN7EXAMPLE",
        "password: Zq81xLm02",
        "Dear Aiko Tanaka,",
        "221 Baker Street",
        "date of birth: 12/03/1985",
    ]
)
# Numbers that cannot run into each other: a bare "12 2024 12" is a phone number's shape.
WORDS = st.sampled_from(
    ["the", "model", "answer", "is", "a", "refund", "for", "order", "and", "please", "\n", ",",
     "in 2024,", "v1.2.3", "Team", "key", "token", "call", "at", "12%", "-", ":", "(", ")"]
)  # fmt: skip
TEXT = st.lists(st.one_of(WORDS, PII), max_size=40).map(" ".join)
CLEAN = st.lists(WORDS, max_size=60).map(" ".join)
# Any code point, lone surrogates included: JSON from the wire can carry them.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=300)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
              st.floats(allow_nan=False, allow_infinity=False), TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["content", "prompt", "input", "model", "role", "name"]),
                        children, max_size=4),
    ),
    max_leaves=20,
)  # fmt: skip
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(TEXT)
def test_scrubbing_is_idempotent(text: str) -> None:
    once = SCRUBBER.session().text(text)
    assert SCRUBBER.session().text(once) == once


@FAST
@given(TEXT)
def test_no_detected_value_survives(text: str) -> None:
    values = {text[a:b] for a, b, _ in SCRUBBER.detect(text)}
    out = SCRUBBER.session().text(text)
    for value in values:
        assert value not in out


@FAST
@given(st.lists(TEXT, min_size=2, max_size=4))
def test_no_value_detected_in_a_request_survives_in_its_answers(texts: list[str]) -> None:
    session = SCRUBBER.session()
    request, *answers = texts
    values = {request[a:b] for a, b, _ in SCRUBBER.detect(request)}
    outputs = [session.text(request), *(session.text(answer) for answer in answers)]
    for value in values:
        assert all(value not in out for out in outputs)


@FAST
@given(CLEAN)
def test_text_without_pii_comes_back_identical(text: str) -> None:
    assert SCRUBBER.session().text(text) == text


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@FAST
@given(JSON_VALUES)
def test_json_stays_valid_and_keeps_its_shape(document: Any) -> None:
    out = SCRUBBER.session().json(document)
    assert shape(out) == shape(document)
    dumped = orjson.dumps(out)
    assert shape(orjson.loads(dumped)) == shape(out)


@FAST
@given(ANY_TEXT)
def test_arbitrary_unicode_never_raises_and_keeps_unmatched_text(text: str) -> None:
    out = SCRUBBER.session().text(text)
    if not SCRUBBER.detect(text):
        assert out == text


# The characters the detectors key on, densely mixed: where an index slips, it shows here.
STRUCTURAL = st.text("0123456789abcdefABCDEFx:.-_@+()/#= \nsk-AKIA", max_size=80)


@settings(max_examples=500, deadline=None)
@given(STRUCTURAL)
def test_dense_structural_text_never_raises_and_is_idempotent(text: str) -> None:
    once = SCRUBBER.session().text(text)
    assert SCRUBBER.session().text(once) == once


# Inputs large enough that a quadratic (backtracking) pattern would run for hours: a linear
# scrubber is done in well under a second each. The timeout is a hang guard with orders of
# magnitude of slack, not a speed check.
PATHOLOGICAL_UNITS = (
    "9", "1 ", "1-", "a@", "a@b.", "key: ", "password=", "sk-", "Dr ", "Dear A ", ":", "1:",
    "ab:", "(1) ", "+1", "-----BEGIN PRIVATE KEY-----\n", "\ud800", "é1", "1.2.3.4 ",
    "4111 1111 1111 1111 ",
)  # fmt: skip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("unit", PATHOLOGICAL_UNITS)
def test_pathological_inputs_finish(unit: str) -> None:
    text = unit * (200_000 // len(unit) + 1)
    once = SCRUBBER.session().text(text)
    assert isinstance(once, str)


@pytest.mark.timeout(120)
def test_hundred_thousand_digits_and_a_megabyte_of_text_finish() -> None:
    for text in ("9" * 100_000, "lorem ipsum dolor 12 " * 50_000):
        assert SCRUBBER.session().text(text) == text


def test_deeply_nested_json_and_megabyte_strings() -> None:
    nested: Any = "call 212 555 0147"
    for _ in range(127):  # orjson refuses documents nested deeper than 255 levels
        nested = {"content": [nested]}
    out = SCRUBBER.session().json(orjson.loads(orjson.dumps(nested)))
    assert "<PHONE_1>" in orjson.dumps(out).decode()
    big = "lorem ipsum dolor 12 " * 50_000 + "a@b.co"
    assert SCRUBBER.session().text(big).endswith("<EMAIL_1>")
