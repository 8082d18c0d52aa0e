"""Writes the labelled detection set: production/candidate answer pairs that a reviewer must
see (regressions) and pairs that must not take a reviewer's time (acceptable changes), from
the topics and scenarios in `_detection_topics` and `_detection_structured`, plus the
hand-written cases in `data/detection_hand.jsonl`.

    python -m benchmarks.detection_data [--out benchmarks/data/detection_pairs.jsonl]

Every pair carries the request (prompt, `response_format`, tools) as the worker sees it. The
held-out split is whole topics and scenarios (and their own seed) that nothing is tuned on.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks._detection_structured import (
    CODE_SCENARIOS,
    JSON_SCENARIOS,
    LANGUAGE_SCENARIOS,
    REFUSALS,
    TOOL_SCENARIOS,
    CodeScenario,
    JsonScenario,
    ToolScenario,
)
from benchmarks._detection_topics import TOPICS, Slot, Topic
from scoring.signals.quantities import ONES, TENS

DATA = Path(__file__).resolve().parent / "data"
HELD_OUT = frozenset(
    {
        # text topics
        "fever",
        "meeting",
        "car_rental",
        "shipping",
        "plant",
        "leave",
        "lists_backup",
        "creative_party",
        # structured scenarios
        "two_cities",
        "forecast",
        "cancel",
        "event",
        "address",
        "stock",
        "meeting_json",
        "clamp",
        "retry",
        "parking",
        "battery",
    }
)
HELD_OUT_REFUSALS = frozenset(REFUSALS[8:])
COURTESY = (
    ("I hope this helps!", "Let me know if you have any other questions."),
    ("Great question!", "Feel free to ask if anything is unclear."),
    ("Happy to help.", "Don't hesitate to reach out if you need anything else."),
    ("Sure!", "Good luck, and have a great day."),
    ("Thanks for asking.", "If you need more detail, just ask."),
    ("Of course.", "I'm glad to go into more detail if that would be useful."),
)
HELD_OUT_COURTESY = frozenset(COURTESY[4:])
OUTROS = (
    "It runs in logarithmic time.",
    "Test it with an empty input as well.",
    "Let me know if you want a version with tests.",
    "",
)

REGRESSIONS = (
    "number",
    "date_time",
    "negation",
    "modality",
    "entity",
    "removed_warning",
    "refusal",
    "truncation",
    "language",
    "tool_call",
    "json_field",
    "code",
)
ACCEPTABLE = (
    "identical",
    "paraphrase",
    "reordered",
    "spelled_out",
    "number_format",
    "courtesy",
    "list_style",
    "json_key_order",
    "tool_args_order",
    "code_reformatted",
    "within_noise",
)

_UNIT_WORDS = {
    "mg": "milligrams",
    "g": "grams",
    "kg": "kilograms",
    "ml": "millilitres",
    "km": "kilometres",
    "°C": "degrees Celsius",
    "°F": "degrees Fahrenheit",
}
_CURRENCY = {"USD": ("$", "dollars"), "EUR": ("€", "euros"), "GBP": ("£", "pounds")}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def words(n: int) -> str:
    """An integer below a million in English words."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + words(rest))
    rest = n % 1000
    return words(n // 1000) + " thousand" + ("" if rest == 0 else " " + words(rest))


def _num(value: float, style: str) -> str:
    if value == int(value):
        n = int(value)
        if style == "words" and (n <= 100 or n % 100 == 0):
            return words(n)
        if n >= 1000 and style != "alt":
            return f"{n:,}"
        return str(n)
    return f"{value:.2f}" if value * 10 != int(value * 10) else f"{value:g}"


def render_value(slot: Slot, value: Any, style: str, rng: random.Random) -> str:
    """One fact as text; `style` is `digits`, `words` (spelled out) or `alt` (other format)."""
    if slot.type == "entity":
        return str(value)
    if slot.type == "quantity":
        amount, unit = value
        if style == "words" and amount == int(amount):
            return f"{_num(amount, 'words')} {_UNIT_WORDS.get(unit, unit)}"
        if style == "alt":
            if unit == "mg" and amount >= 100:
                return f"{amount / 1000:g} g"
            if unit == "°C":
                return f"{amount:g} °C ({amount * 9 / 5 + 32:g} °F)"
            return rng.choice(
                (
                    f"{_num(amount, 'alt')}{unit}",
                    f"{_num(amount, 'alt')} {_UNIT_WORDS.get(unit, unit)}",
                )
            )
        sep = "" if unit == "°C" else " "
        return f"{_num(amount, 'digits')}{sep}{unit}".replace("°C", " °C").replace("  ", " ")
    if slot.type == "money":
        amount, currency = value
        symbol, name = _CURRENCY[currency]
        if style == "words" and amount == int(amount):
            return f"{_num(amount, 'words')} {name}"
        if style == "alt":
            return rng.choice(
                (
                    f"{_num(amount, 'alt')} {currency}",
                    f"{currency} {amount:g}",
                    f"{symbol}{amount:.2f}",
                )
            )
        return f"{symbol}{_num(amount, 'digits')}"
    if slot.type == "percent":
        if style == "words" and value == int(value):
            return f"{_num(value, 'words')} percent"
        if style == "alt":
            return f"{value:g} percent"
        return f"{value:g}%"
    if slot.type == "count":
        n, noun = value
        if noun == "platform":
            return f"platform {n}"
        if style == "words" or (style == "alt" and n <= 12):
            return f"{words(n)} {noun}"
        return f"{n} {noun}"
    if slot.type == "date":
        day: date = value
        weekday, month = _WEEKDAYS[day.weekday()], _MONTHS[day.month - 1]
        if style == "alt":
            return rng.choice((day.isoformat(), f"{month} {day.day}, {day.year}"))
        return f"{weekday}, {day.day} {month}"
    hour, minute = value
    if style == "alt":
        return f"{hour:02d}:{minute:02d}"
    suffix = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    return f"{h12}:{minute:02d} {suffix}" if minute else f"{h12} {suffix}"


def mutate(slot: Slot, value: Any, rng: random.Random) -> Any:
    """A different, plausible value of the same slot: the wrong fact."""
    if slot.type == "entity":
        return rng.choice([c for c in slot.choices if c != value] or [f"{value} Ltd"])
    if slot.type == "quantity":
        amount, unit = value
        bigger = {"mg": "g", "g": "kg", "ml": "l"}
        options: list[tuple[float, str]] = [(amount * 10, unit), (amount + 1, unit)]
        if unit in bigger:
            options.append((amount, bigger[unit]))
        if amount >= 10:
            options.append((amount / 10, unit))
        return rng.choice(options)
    if slot.type == "money":
        amount, currency = value
        other = rng.choice([c for c in _CURRENCY if c != currency])
        return rng.choice(((amount * 10, currency), (amount + 5, currency), (amount, other)))
    if slot.type == "percent":
        return rng.choice((value * 2, value + 5, value / 2 if value >= 2 else value + 1))
    if slot.type == "count":
        n, noun = value
        return (rng.choice((n * 2, n + 1, max(1, n - 1) if n > 2 else n + 2, n * 10)), noun)
    if slot.type == "date":
        return value + timedelta(days=rng.choice((1, 2, 3, 7, -1, -2, 10, 30)))
    hour, minute = value
    return ((hour + rng.choice((1, 2, 3, 12, -1, -2))) % 24, minute)


_MARKER = re.compile(r"\{(NEG|MOD):([^|{}]*)\|([^{}]*)\}")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass
class Rendering:
    """How to render one wording: slot values, which markers are flipped, the number style,
    which sentences are left out, in what order, and as what kind of list."""

    values: dict[str, Any]
    flip: tuple[str, int] | None = None
    style: str = "digits"
    drop_warnings: bool = False
    order: list[int] | None = None
    bullet: str | None = None


def markers(wording: tuple[str, ...], kind: str) -> int:
    return sum(
        1 for s in wording for m in _MARKER.finditer(_SLOT.sub("x", s)) if m.group(1) == kind
    )


def render(topic: Topic, wording: tuple[str, ...], how: Rendering, rng: random.Random) -> str:
    seen = {"NEG": 0, "MOD": 0}

    def marker(match: re.Match[str]) -> str:
        kind = match.group(1)
        index = seen[kind]
        seen[kind] += 1
        return match.group(3) if how.flip == (kind, index) else match.group(2)

    sentences = []
    for sentence in wording:
        if sentence.startswith("!"):
            if how.drop_warnings:
                continue
            sentence = sentence[1:]
        text = _SLOT.sub(
            lambda m: render_value(topic.slots[m.group(1)], how.values[m.group(1)], how.style, rng),
            sentence,
        )
        text = _MARKER.sub(marker, text)
        sentences.append(text[0].upper() + text[1:])
    if how.order is not None:
        sentences = [sentences[i] for i in how.order if i < len(sentences)]
    is_list = sentences[0].startswith("- ")
    if how.bullet is not None or is_list:
        items = [s[2:] if s.startswith("- ") else s for s in sentences]
        bullet = how.bullet or "- "
        return "\n".join(
            (f"{n}. " if bullet == "1." else bullet) + item for n, item in enumerate(items, 1)
        )
    return " ".join(sentences)


def request(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "production", "messages": [{"role": "user", "content": prompt}], **extra}


def side(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {"text": text, "finish_reason": finish_reason}


class Builder:
    """Collects pairs with a running id, the split and the label of their kind."""

    def __init__(self, split: str) -> None:
        self.split = split
        self.pairs: list[dict[str, Any]] = []

    def pick(self, scenarios: tuple[Any, ...]) -> list[Any]:
        """The scenarios (anything with an `id`) of this builder's split."""
        return [s for s in scenarios if _split(s.id) == self.split]

    def add(
        self,
        kind: str,
        template: str,
        req: dict[str, Any],
        production: dict[str, Any],
        candidate: dict[str, Any],
        noise: dict[str, Any] | None = None,
    ) -> None:
        label = "regression" if kind in REGRESSIONS else "acceptable"
        self.pairs.append(
            {
                "id": f"{kind}-{len(self.pairs):04d}",
                "split": self.split,
                "label": label,
                "kind": kind,
                "source": "template",
                "template": template,
                "route": "/v1/chat/completions",
                "request": req,
                "production": production,
                "candidate": candidate,
                "noise": noise,
            }
        )


def _split(template: str) -> str:
    return _held_out(template in HELD_OUT)


def _held_out(held_out: bool) -> str:
    return "holdout" if held_out else "tune"


def _facts(topic: Topic, rng: random.Random) -> dict[str, Any]:
    return {name: rng.choice(slot.choices) for name, slot in topic.slots.items()}


def _noise(topic: Topic, values: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """Production's re-run for about a third of the pairs: the same facts, maybe reworded."""
    if rng.random() > 0.35:
        return None
    wording = rng.choice(topic.wordings)
    return side(render(topic, wording, Rendering(values=values), rng))


def text_pairs(builder: Builder, rng: random.Random, per_kind: int) -> None:
    """Regressions and acceptable changes of the prose topics."""
    plain = [t for t in TOPICS if not t.creative and _split(t.id) == builder.split]
    refusals = [r for r in REFUSALS if _held_out(r in HELD_OUT_REFUSALS) == builder.split]
    courtesy = [c for c in COURTESY if _held_out(c in HELD_OUT_COURTESY) == builder.split]

    def cycle(candidates: list[Topic]) -> Iterator[Topic]:
        while True:
            yield from rng.sample(candidates, len(candidates))

    def reworded(
        topic: Topic, wording: tuple[str, ...], need: Callable[[tuple[str, ...]], bool]
    ) -> tuple[str, ...]:
        """The same wording, or (half the time) another one that also has what is needed."""
        options = [w for w in topic.wordings if w is not wording and need(w)]
        return rng.choice(options) if options and rng.random() < 0.5 else wording

    def make_candidate(kind: str, topic: Topic, ctx: dict[str, Any]) -> dict[str, Any] | None:
        values: dict[str, Any] = ctx["values"]
        wording: tuple[str, ...] = ctx["wording"]

        def render_with(target: tuple[str, ...], **how: Any) -> str:
            return render(topic, target, Rendering(values=values, **how), rng)

        if kind in ("number", "date_time", "entity"):
            types = {
                "number": ("quantity", "money", "percent", "count"),
                "date_time": ("date", "time"),
                "entity": ("entity",),
            }[kind]
            names = [
                n
                for n in _slots_in(wording)
                if topic.slots[n].type in types
                and (kind != "entity" or len(topic.slots[n].choices) > 1)
            ]
            if not names:
                return None
            name = rng.choice(names)
            changed = dict(values)
            while changed[name] == values[name]:
                changed[name] = mutate(topic.slots[name], values[name], rng)
            target = reworded(topic, wording, lambda w: name in _slots_in(w))
            text = render(topic, target, Rendering(values=changed), rng)
            # The slot may sit only in a marker's unused branch: then nothing changed.
            return (
                None
                if text == render(topic, target, Rendering(values=values), rng)
                else (side(text))
            )
        if kind in ("negation", "modality"):
            marker = "NEG" if kind == "negation" else "MOD"
            target = reworded(topic, wording, lambda w: markers(w, marker) > 0)
            count = markers(target, marker)
            if not count:
                return None
            return side(render_with(target, flip=(marker, rng.randrange(count))))
        if kind == "removed_warning":
            target = reworded(topic, wording, lambda w: any(s.startswith("!") for s in w))
            if not any(s.startswith("!") for s in target):
                return None
            return side(render_with(target, drop_warnings=True))
        if kind == "truncation":
            text = render_with(reworded(topic, wording, lambda w: True))
            cut = text.rfind(" ", 0, int(len(text) * rng.uniform(0.35, 0.8)))
            return side(text[:cut], "length") if cut > 0 else None
        if kind == "refusal":
            return side(rng.choice(refusals))
        if kind == "identical":
            return side(render_with(wording) + rng.choice(("", "", "\n", " ")))
        if kind == "paraphrase":
            others = [w for w in topic.wordings if w is not wording]
            return side(render_with(rng.choice(others))) if others else None
        if kind == "reordered":
            if len(wording) < 3:
                return None
            order = list(range(len(wording)))
            while order == sorted(order):
                rng.shuffle(order)
            return side(render_with(wording, order=order))
        if kind == "spelled_out":
            return side(render_with(wording, style="words"))
        if kind == "number_format":
            return side(render_with(wording, style="alt"))
        if kind == "courtesy":
            opening, closing = rng.choice(courtesy)
            body = render_with(wording)
            where = rng.random()
            if where < 0.4:
                return side(f"{opening} {body}")
            if where < 0.8:
                return side(f"{body} {closing}")
            return side(f"{opening} {body}\n\n{closing}")
        if kind == "list_style":
            bullets = ["- ", "* ", "1.", "• "]
            return side(render_with(wording, bullet=rng.choice(bullets[1:])))
        raise AssertionError(kind)

    def emit(kind: str, topics: list[Topic]) -> None:
        made = 0
        for topic in cycle(topics):
            if made == per_kind:
                return
            values = _facts(topic, rng)
            wording = topic.wordings[0] if rng.random() < 0.6 else rng.choice(topic.wordings)
            bullet = "- " if kind == "list_style" else None
            production = render(topic, wording, Rendering(values=values, bullet=bullet), rng)
            ctx: dict[str, Any] = {"values": values, "wording": wording}
            candidate = make_candidate(kind, topic, ctx)
            if candidate is None:
                continue
            builder.add(
                kind,
                topic.id,
                request(topic.prompt),
                side(production),
                candidate,
                _noise(topic, values, rng),
            )
            made += 1

    # The prose kinds: the first eight regressions and seven acceptable changes.
    for kind in REGRESSIONS[:8] + ACCEPTABLE[:7]:
        emit(kind, plain)


def _slots_in(wording: tuple[str, ...]) -> list[str]:
    return sorted(
        {m.group(1) for s in wording for m in _SLOT.finditer(_MARKER.sub("", s))}
        | {
            m.group(1)
            for s in wording
            for mk in _MARKER.finditer(s)
            for m in _SLOT.finditer(mk.group(2))
        }
    )


def within_noise_pairs(builder: Builder, rng: random.Random, count: int) -> None:
    """Creative answers whose facts production's own re-run changes as well."""
    creative = [t for t in builder.pick(TOPICS) if t.creative]
    for n in range(count):
        topic = creative[n % len(creative)]
        values = _facts(topic, rng)
        name = rng.choice(list(topic.slots))
        noisy, changed = dict(values), dict(values)
        others = [c for c in topic.slots[name].choices if c != values[name]]
        noisy[name], changed[name] = rng.sample(others, 2) if len(others) > 1 else (others[0],) * 2
        wording = rng.choice(topic.wordings)
        production = render(topic, topic.wordings[0], Rendering(values=values), rng)
        noise = render(topic, rng.choice(topic.wordings), Rendering(values=noisy), rng)
        candidate = render(topic, wording, Rendering(values=changed), rng)
        builder.add(
            "within_noise",
            topic.id,
            request(topic.prompt),
            side(production),
            side(candidate),
            side(noise),
        )


def tool_text(
    calls: list[tuple[str, dict[str, Any]]], rng: random.Random, *, stream: bool, content: str = ""
) -> str:
    """Tool calls as the gateway's capture writes them into the answer text: the message's
    `tool_calls` as JSON, or every streamed delta's `tool_calls` fragment in turn."""
    ids = [f"call_{rng.getrandbits(40):010x}" for _ in calls]
    spaced = rng.random() < 0.5
    args = [json.dumps(a, separators=(", ", ": ") if spaced else (",", ":")) for _, a in calls]
    if not stream:
        message = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, _), a in zip(ids, calls, args, strict=True)
        ]
        return content + (json.dumps(message, separators=(",", ":")) if calls else "")
    parts = [content]
    for index, (call_id, (name, _), arguments) in enumerate(zip(ids, calls, args, strict=True)):
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        parts.append(json.dumps([head], separators=(",", ":")))
        for start in range(0, len(arguments), 7):
            chunk = {"index": index, "function": {"arguments": arguments[start : start + 7]}}
            parts.append(json.dumps([chunk], separators=(",", ":")))
    return "".join(parts)


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def tool_pairs(builder: Builder, rng: random.Random, per_kind: int) -> None:
    scenarios: list[ToolScenario] = builder.pick(TOOL_SCENARIOS)
    for n in range(per_kind * 2):
        scenario = scenarios[n % len(scenarios)]
        stream = rng.random() < 0.3
        req = request(scenario.prompt, tools=list(scenario.tools), stream=stream)
        calls = [(name, dict(args)) for name, args in scenario.calls]
        production = tool_text(calls, rng, stream=stream)
        if n % 2:
            shuffled = [(name, _shuffled(args, rng)) for name, args in calls]
            candidate = tool_text(shuffled, rng, stream=stream)
            builder.add(
                "tool_args_order",
                scenario.id,
                req,
                side(production, "tool_calls"),
                side(candidate, "tool_calls"),
            )
            continue
        wrong = [(name, dict(args)) for name, args in calls]
        how = rng.choice(("name", "argument", "argument", "missing", "extra"))
        finish = "tool_calls"
        if how == "name":
            wrong[0] = (scenario.wrong_name, wrong[0][1])
        elif how == "argument":
            key, value = rng.choice(scenario.wrong_args)
            target = next(i for i, (_, a) in enumerate(wrong) if key in a)
            wrong[target][1][key] = value
        elif how == "missing":
            wrong = wrong[:-1]
            if not wrong:
                finish = "stop"
        else:
            wrong.append((scenario.wrong_name, dict(calls[0][1])))
        content = "" if wrong else "Let me look that up for you."
        candidate = tool_text(_order(wrong, rng), rng, stream=stream, content=content)
        builder.add(
            "tool_call", scenario.id, req, side(production, "tool_calls"), side(candidate, finish)
        )


def _order(
    calls: list[tuple[str, dict[str, Any]]], rng: random.Random
) -> list[tuple[str, dict[str, Any]]]:
    return [(name, _shuffled(args, rng)) for name, args in calls]


def _set_path(document: Any, path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        document = document[int(key)] if isinstance(document, list) else document[key]
    last = keys[-1]
    if isinstance(document, list):
        document[int(last)] = value
    else:
        document[last] = value


def _dump(document: Any, rng: random.Random) -> str:
    return json.dumps(document, indent=rng.choice((None, 2)), ensure_ascii=False)


def json_pairs(builder: Builder, rng: random.Random, per_kind: int) -> None:
    scenarios: list[JsonScenario] = builder.pick(JSON_SCENARIOS)
    for n in range(per_kind * 2):
        scenario = scenarios[n % len(scenarios)]
        if scenario.schema_name is None:
            fmt: dict[str, Any] = {"type": "json_object"}
        else:
            fmt = {"type": "json_schema", "json_schema": {"name": scenario.schema_name}}
        req = request(scenario.prompt, response_format=fmt)
        production = _dump(scenario.document, rng)
        if n % 2:
            candidate = _dump(_shuffled(scenario.document, rng), rng)
            builder.add("json_key_order", scenario.id, req, side(production), side(candidate))
            continue
        wrong = json.loads(json.dumps(scenario.document))
        how = rng.random()
        if how < 0.7:
            path, value = rng.choice(scenario.changes)
            _set_path(wrong, path, value)
            candidate = _dump(_shuffled(wrong, rng), rng)
        elif how < 0.85:
            key = rng.choice(list(wrong))
            del wrong[key]
            candidate = _dump(wrong, rng)
        else:
            fields = ", ".join(
                f"{k} {v}" for k, v in scenario.document.items() if not isinstance(v, dict | list)
            )
            candidate = f"Here is the result: {fields}."
        builder.add("json_field", scenario.id, req, side(production), side(candidate))


def code_answer(scenario: CodeScenario, intro: str, code: str, outro: str) -> str:
    text = f"{intro}\n\n```{scenario.language}\n{code}```"
    return f"{text}\n\n{outro}" if outro else text


def code_pairs(builder: Builder, rng: random.Random, per_kind: int) -> None:
    scenarios: list[CodeScenario] = builder.pick(CODE_SCENARIOS)
    for n in range(per_kind * 2):
        scenario = scenarios[n % len(scenarios)]
        req = request(scenario.prompt)
        production = code_answer(scenario, scenario.intro[0], scenario.code, OUTROS[1])
        intro = rng.choice(scenario.intro)
        outro = rng.choice(OUTROS[1:])
        if n % 2:
            candidate = code_answer(scenario, intro, scenario.reformatted, outro)
            builder.add("code_reformatted", scenario.id, req, side(production), side(candidate))
            continue
        old, new = rng.choice(scenario.mutations)
        assert old in scenario.code, (scenario.id, old)
        code = scenario.code.replace(old, new, 1)
        builder.add(
            "code",
            scenario.id,
            req,
            side(production),
            side(code_answer(scenario, intro, code, outro)),
        )


def language_pairs(builder: Builder, rng: random.Random) -> None:
    for scenario in builder.pick(LANGUAGE_SCENARIOS):
        req = request(scenario.prompt)
        for _, translation in scenario.translations:
            english = rng.choice(scenario.english)
            builder.add("language", scenario.id, req, side(english), side(translation))
        builder.add(
            "paraphrase", scenario.id, req, side(scenario.english[0]), side(scenario.english[1])
        )


def hand_pairs(path: Path) -> list[dict[str, Any]]:
    """Hand-written cases: one JSON object per line, `label` from the kind."""
    pairs = []
    for n, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        case = json.loads(line)
        case.setdefault("label", "regression" if case["kind"] in REGRESSIONS else "acceptable")
        case.setdefault("route", "/v1/chat/completions")
        case.setdefault("noise", None)
        case.setdefault("template", "hand")
        case.setdefault("source", "hand")
        case["id"] = f"hand-{case['kind']}-{n:03d}"
        for name in ("production", "candidate", "noise"):
            if isinstance(case.get(name), str):
                case[name] = side(case[name])
        pairs.append(case)
    return pairs


def build(seed: int = 14) -> list[dict[str, Any]]:
    """Every pair of the set; the held-out topics draw from their own seed."""
    pairs = []
    for split, split_seed, per_kind in (("tune", seed, 24), ("holdout", seed + 1000, 14)):
        rng = random.Random(split_seed)
        builder = Builder(split)
        text_pairs(builder, rng, per_kind=per_kind)
        within_noise_pairs(builder, rng, per_kind)
        tool_pairs(builder, rng, per_kind=per_kind)
        json_pairs(builder, rng, per_kind=per_kind)
        code_pairs(builder, rng, per_kind=per_kind)
        language_pairs(builder, rng)
        pairs.extend(builder.pairs)
    pairs.extend(hand_pairs(DATA / "detection_hand.jsonl"))
    seen: set[tuple[str, str]] = set()
    unique = []
    for pair in pairs:
        key = (json.dumps(pair["production"]), json.dumps(pair["candidate"]))
        if key not in seen:
            seen.add(key)
            unique.append(pair)
    for n, pair in enumerate(unique):
        pair["id"] = f"{pair['id'].rsplit('-', 1)[0]}-{n:04d}"
    return unique


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA / "detection_pairs.jsonl")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    pairs = build(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as out:
        for pair in pairs:
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
    kinds = Counter((p["label"], p["kind"], p["split"]) for p in pairs)
    print(f"{len(pairs)} pairs -> {args.out}")
    for (label, kind, split), n in sorted(kinds.items()):
        print(f"  {label:10s} {kind:18s} {split:8s} {n}")


if __name__ == "__main__":
    main()
