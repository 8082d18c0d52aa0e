"""Signals that compare what two answers assert: each regression yields evidence of its kind
with offsets into both answers; acceptable changes yield none above low severity."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.records import Evidence
from scoring.embedder import default_tokenizer_path
from scoring.signals.detect import Detector, load_vocabulary
from scoring.signals.parse import parse
from scoring.signals.quantities import values


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(vocabulary=load_vocabulary(default_tokenizer_path()))


def flagged(evidence: list[Evidence]) -> list[Evidence]:
    return [e for e in evidence if e.severity != "low"]


def calls(*items: tuple[str, dict[str, object]]) -> str:
    message = [
        {"id": f"call_{n}", "type": "function",
         "function": {"name": name, "arguments": json.dumps(args)}}
        for n, (name, args) in enumerate(items)
    ]  # fmt: skip
    return json.dumps(message)


DOSE = (
    "Adults can take 500 mg to 1 g every 4 to 6 hours. Do not take more than 4 g in 24 hours. "
    "Take it with food."
)


@pytest.mark.parametrize(
    ("production", "candidate", "kind", "fragment"),
    [
        (DOSE, DOSE.replace("500 mg", "5 g"), "number", "500 mg → 5 g"),
        (DOSE, DOSE.replace(" Do not take more than 4 g in 24 hours.", ""), "number",
         "limit 4 g removed"),
        ("You can send 600 requests per minute; retry after 60 seconds.",
         "You can send 600 requests per minute; retry after 120 seconds.", "number",
         "60 seconds → 120 seconds"),
        ("The meeting is at 3 pm on Tuesday.", "The meeting is at 9 am on Tuesday.", "time",
         "3 pm → 9 am"),
        ("It is due on 14 March 2025.", "It is due on 15 March 2025.", "date",
         "14 March 2025 → 15 March 2025"),
        (DOSE, DOSE.replace("Take it with food.", "Do not take it with food."), "negation",
         "Take it with food"),
        ("You must keep the receipt.", "You may keep the receipt.", "modality", "strong → weak"),
        ("You must reserve a seat on this service.",
         "A seat reservation is possible but not needed to board.", "modality", "strong → weak"),
        ("Your flight to Paris leaves at noon.", "Your flight to Lyon leaves at noon.", "entity",
         "Paris → Lyon"),
        ("Call Dr. Patel tomorrow.", "Tomorrow, call Dr. Okafor.", "entity", "Patel → Okafor"),
        ("Take ibuprofen for the pain, every six hours.",
         "Take naproxen for the pain, every six hours.", "entity", "ibuprofen → naproxen"),
        ("Mix bleach with water. Never mix bleach with ammonia, as it releases toxic gas.",
         "Mix bleach with water.", "removed_statement", "Never mix bleach"),
        (calls(("get_weather", {"city": "Lyon", "unit": "celsius"})),
         calls(("get_weather", {"city": "Lyon", "unit": "fahrenheit"})), "tool_call",
         "get_weather(unit): celsius → fahrenheit"),
        (calls(("get_weather", {"city": "Lyon"})), calls(("get_forecast", {"city": "Lyon"})),
         "tool_call", "tool get_weather → get_forecast"),
        (calls(("a", {}), ("b", {})), calls(("a", {})), "tool_call", "call b missing"),
        ('{"label": "negative", "score": {"value": 0.9}}',
         '{"score": {"value": 0.1}, "label": "negative"}', "json", "score.value: 0.9 → 0.1"),
        ("```python\nwhile lo <= hi:\n    lo += 1\n```",
         "```python\nwhile lo < hi:\n    lo += 1\n```", "code", "`<=` → `<`"),
        ("The museum opens at 9 am and closes at 6 pm. It is closed on Mondays.",
         "El museo abre a las 9 de la mañana y cierra a las 6 de la tarde. Está cerrado los lunes.",
         "language", "en → es"),
    ],
)  # fmt: skip
def test_a_changed_fact_is_evidence_of_its_kind(
    detector: Detector, production: str, candidate: str, kind: str, fragment: str
) -> None:
    found = flagged(detector.compare(production, candidate))
    matching = [e for e in found if e.kind == kind and fragment in e.message]
    assert matching, [e.message for e in found]


@pytest.mark.parametrize(
    ("production", "candidate"),
    [
        (DOSE, DOSE),
        (DOSE, "The adult dose is 500 mg to 1 g, taken every 4 to 6 hours; never go over 4 g "
               "in a day. Take it with food."),
        ("Take it with food. Rest for two days. Drink water.",
         "Drink water. Take it with food. Rest for two days."),
        ("Bake it for 35 minutes at 220 °C.", "Bake it for thirty-five minutes at 428 °F."),
        ("It costs $1,000 and weighs 500 mg.", "It costs 1000 dollars and weighs 0.5 g."),
        ("The meeting is at 3 pm on Friday, 14 March.", "The meeting is at 15:00 on 2025-03-14."),
        ("The capital is Canberra.", "Great question! The capital is Canberra. Hope this helps!"),
        ("- eggs\n- flour\n- milk", "1. eggs\n2. flour\n3. milk"),
        (calls(("get_weather", {"city": "Lyon", "unit": "celsius"})),
         calls(("get_weather", {"unit": "celsius", "city": "Lyon"}))),
        ('{"a": 1, "b": [1, 2]}', '{\n  "b": [1, 2],\n  "a": 1.0\n}'),
        ("```js\nreturn a + b;\n```", "```js\nreturn a+b  // sum\n```"),
    ],
)  # fmt: skip
def test_an_acceptable_change_is_not_flagged(
    detector: Detector, production: str, candidate: str
) -> None:
    assert flagged(detector.compare(production, candidate)) == []


@pytest.mark.parametrize(
    ("production", "candidate"),
    [
        # The flipped sentences share one word; every other sentence has found its partner.
        ("For a child the usual dose is 150 mg every 8 hours. Give it with food or milk.",
         "Most children can have 150 mg every 8 hours. It is best not given after a meal."),
        ("Adults should do 150 minutes of exercise a week. A short warm-up helps prevent injury.",
         "Aim for 150 minutes of exercise a week. Do not warm up before you start."),
        # `No,` answers the question; `never` negates the statement.
        ("No, never put cast iron in the dishwasher.", "Yes, cast iron can go in the dishwasher."),
        ("Open the oven to check on it after ten minutes.",
         "Keep the oven door closed for the first ten minutes."),
        # Merged into a sentence another statement already claimed: `such as` is no clause.
        ("Report it within 30 days. The excess is £99 per claim. Accidental damage is covered.",
         "You have 30 days to claim. Accidents such as a dropped phone aren't included; each "
         "claim has an excess of £99."),
        ("On this train a reservation is compulsory, and you cannot board without one.",
         "On this train a reservation is compulsory, and you can board without one."),
    ],
)  # fmt: skip
def test_a_reworded_negation_flip_is_found(
    detector: Detector, production: str, candidate: str
) -> None:
    found = flagged(detector.compare(production, candidate))
    assert [e.kind for e in found] == ["negation"], [e.message for e in found]


@pytest.mark.parametrize(
    ("production", "candidate"),
    [
        ("Never leave a candle burning unattended, and keep it away from curtains.",
         "Don't leave candles burning when you're not in the room, and keep them away from "
         "curtains."),
        ("Do not drink alcohol while taking it.", "Avoid alcohol while you are taking it."),
        ("You can take it with or without food.",
         "Food makes no difference, so take it whenever suits you."),
        ("No, the exam is closed book: you may not bring notes or textbooks.",
         "The exam is closed book, so notes and textbooks are not permitted."),
        ("Personal laptops are not allowed on the network. Use the company laptop for all work.",
         "You can't connect a personal laptop to the network, so do all your work on the "
         "company laptop."),
        ("Yes, you can cancel at any time from the billing page. There is no cancellation fee.",
         "You can cancel at any time on the billing page, free of charge."),
        # A limit reworded with a cue of its own and the same value is kept.
        ("Children can have 200 mg every 8 hours. The maximum is 4 doses in a day.",
         "Children can have 200 mg every 8 hours. Give no more than 4 doses in 24 hours."),
    ],
)  # fmt: skip
def test_a_reworded_negation_that_keeps_its_meaning_is_not_flagged(
    detector: Detector, production: str, candidate: str
) -> None:
    assert flagged(detector.compare(production, candidate)) == []


def test_offsets_point_at_the_values_in_both_answers(detector: Detector) -> None:
    production = "Take 500 mg twice a day."
    candidate = "You should take 5 g twice a day."
    [item] = [e for e in detector.compare(production, candidate) if e.kind == "number"]
    assert item.production_span is not None and item.candidate_span is not None
    assert production[slice(*item.production_span)] == "500 mg"
    assert candidate[slice(*item.candidate_span)] == "5 g"


def test_a_json_request_answered_in_prose_is_evidence(detector: Detector) -> None:
    found = detector.compare('{"ok": true}', "Yes, it is ok.", wants_json=True)
    assert [e.kind for e in found] == ["json"]


def test_streamed_tool_call_fragments_are_joined_by_index() -> None:
    head = {"index": 0, "id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}  # fmt: skip
    parts = [json.dumps([head])] + [
        json.dumps([{"index": 0, "function": {"arguments": chunk}}])
        for chunk in ('{"ci', 'ty": "Ly', 'on"}')
    ]
    [call] = parse("".join(parts)).tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Lyon"})


def test_a_value_taken_from_the_prompt_is_not_new(detector: Detector) -> None:
    found = detector.compare(
        "The usual dose is 200 mg.", "For an 8 year old the usual dose is 200 mg.",
        prompt="Dose for my 8 year old?",
    )  # fmt: skip
    assert found == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("five hundred milligrams", [("mass", 500.0)]),
        ("1,000 km", [("length", 1_000_000.0)]),
        ("100.4 °F", [("celsius", 38.0)]),
        ("€15.50", [("money:EUR", 15.5)]),
        ("invoice INV-2291 for the Pixel 8", [("count", 8.0)]),
        ("every 4 to 6 hours", [("duration", 14_400.0), ("duration", 21_600.0)]),
    ],
)
def test_quantities_are_normalised(text: str, expected: list[tuple[str, float]]) -> None:
    assert [(v.dimension, v.amount) for v in values(text)] == expected


@settings(max_examples=150, deadline=None)
@given(
    production=st.text(alphabet=st.sampled_from(list("ab1 .,:-$%°{}[]\"'`\nxMay")), max_size=80),
    candidate=st.text(alphabet=st.sampled_from(list("ab2 .,:-€%°{}[]\"'`\nyJun")), max_size=80),
)
def test_any_pair_of_texts_gives_evidence_inside_both_answers(
    production: str, candidate: str
) -> None:
    detector = Detector(vocabulary=frozenset({"a", "b"}))
    for item in detector.compare(production, candidate, wants_json=True):
        for span, text in ((item.production_span, production), (item.candidate_span, candidate)):
            assert span is None or 0 <= span[0] <= span[1] <= len(text)
    assert detector.compare(production, production) == []
