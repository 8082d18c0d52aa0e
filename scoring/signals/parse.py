"""One answer taken apart once: its prose, tool calls, JSON document and code blocks.

Tool calls arrive in the answer text as the gateway's capture writes them: the message's
`tool_calls` as a JSON array, or each streamed delta's fragment in turn (arguments split over
many fragments, joined here by the call's `index`). Code blocks and tool-call JSON are blanked
out of the prose (replaced by spaces), so offsets into the prose are offsets into the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

import orjson

from scoring.signals._text import Sentence, Token, content, sentences, tokens
from scoring.signals.quantities import Value, sentence_values

_FENCE: Final = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_JSON_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.S)
_DECODER: Final = json.JSONDecoder()
PROSE_LIMIT: Final = 20_000
"""Characters of prose the signals read: bounds their cost on a runaway answer."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: Any
    """Parsed JSON arguments, or the raw string when they do not parse."""
    start: int
    end: int


@dataclass(slots=True)
class CodeBlock:
    language: str
    code: str
    start: int
    """Offset of the code (after the opening fence line) in the answer text."""


@dataclass
class Parsed:
    text: str
    prose: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    document: Any = MISSING
    """The answer as a JSON document, when it is one."""
    code: list[CodeBlock] = field(default_factory=list)

    @cached_property
    def tokens(self) -> list[Token]:
        return tokens(self.prose)

    @cached_property
    def sentences(self) -> list[Sentence]:
        return sentences(self.prose, self.tokens)

    _stated: dict[int, list[Value]] = field(default_factory=dict, init=False, repr=False)

    def stated(self, sentence: Sentence) -> list[Value]:
        """The values one sentence states; each sentence is read once, whichever signal asks
        (and for both comparisons production's answer takes part in)."""
        found = self._stated.get(sentence.start)
        if found is None:
            found = sentence_values(self.prose, self.tokens[sentence.first : sentence.last])
            self._stated[sentence.start] = found
        return found

    @cached_property
    def values(self) -> list[Value]:
        return [v for sentence in self.sentences for v in self.stated(sentence)]

    @cached_property
    def content_words(self) -> set[str]:
        """Stems of the answer's content words (`_text.content`)."""
        return content(self.tokens, 0, len(self.tokens), frozenset())

    @cached_property
    def prose_lower(self) -> str:
        return self.prose.lower()


def _blank(chars: list[str], start: int, end: int) -> None:
    for i in range(start, end):
        if chars[i] != "\n":
            chars[i] = " "


def _tool_arrays(text: str) -> tuple[list[tuple[Any, int, int]], int]:
    """JSON arrays of tool-call objects in `text`, back to back from the first `[{`."""
    found: list[tuple[Any, int, int]] = []
    at = text.find("[{")
    first = at
    while 0 <= at < len(text) and text.startswith("[{", at):
        try:
            value, end = _DECODER.raw_decode(text, at)
        except ValueError:
            break
        if not (isinstance(value, list) and value and all(_is_call(v) for v in value)):
            break
        found.append((value, at, end))
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
    return found, first


def _is_call(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("function"), dict)


def _calls(arrays: list[tuple[Any, int, int]]) -> list[ToolCall]:
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    counter = 0
    for items, start, end in arrays:
        for item in items:
            if "index" in item:
                key = ("i", int(item["index"]))
            else:
                key, counter = ("n", counter), counter + 1
            call = merged.setdefault(key, {"name": "", "args": [], "start": start, "end": end})
            function = item["function"]
            if function.get("name"):
                call["name"] = function["name"]
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                call["args"].append(arguments)
            elif arguments is not None:
                call["args"].append(orjson.dumps(arguments).decode())
            call["end"] = end
    calls = []
    for call in merged.values():
        raw = "".join(call["args"])
        try:
            parsed: Any = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            parsed = raw
        calls.append(ToolCall(call["name"], parsed, call["start"], call["end"]))
    return calls


def _document(text: str) -> Any:
    stripped = text.strip()
    fenced = _JSON_FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    if not stripped or stripped[0] not in "[{":
        return MISSING
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return MISSING


def parse(text: str | None) -> Parsed:
    """Take an answer apart; never raises."""
    text = text or ""
    chars: list[str] | None = None
    calls: list[ToolCall] = []
    if '"function"' in text:
        arrays, _ = _tool_arrays(text)
        if arrays:
            calls = _calls(arrays)
            chars = list(text)
            for _, start, end in arrays:
                _blank(chars, start, end)
    document = _document(text) if not calls else MISSING
    if document is not MISSING:
        return Parsed(text=text, prose=" " * len(text), document=document)
    code = []
    if "```" in text:
        chars = chars or list(text)
        for match in _FENCE.finditer(text):
            code.append(CodeBlock(match.group(1).lower(), match.group(2), match.start(2)))
            _blank(chars, match.start(), match.end())
    prose = "".join(chars) if chars is not None else text
    return Parsed(text=text, prose=prose[:PROSE_LIMIT], tool_calls=calls, code=code)
