"""Cheap features of a request's prompt, for input-drift checks: how long it is, which script
its user text is written in, the route, and how many tokens it asks for. Each is a small set
of bins, so per-arm counts stay a handful of Redis hash fields.

Works on the JSON body the proxy already parsed; the work per request is bounded (the script
is read off the first `SCRIPT_SAMPLE_CHARS` characters of the last user text).
"""

from __future__ import annotations

import bisect
from typing import Any, Final, NamedTuple

FEATURES: Final = ("length", "language", "route", "max_tokens")
SCRIPT_SAMPLE_CHARS: Final = 256
# Upper bounds (characters of prompt text) of the length bins; the last bin is open.
LENGTH_BOUNDS: Final = (100, 300, 1000, 3000, 10_000, 30_000)
# Upper bounds of the requested-tokens bins; the last bin is open.
MAX_TOKENS_BOUNDS: Final = (64, 256, 1024, 4096, 16_384)
_MAX_TOKENS_FIELDS: Final = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def _script_of_byte() -> bytes:
    """A bytes.translate table from each UTF-8 byte to a script code: ASCII letters and the
    lead bytes of Latin (U+00C0-U+027F), Cyrillic (U+0400-U+04FF), Arabic (U+0600-U+06FF,
    U+0750-U+077F) and CJK (U+3000-U+D7FF: kana, ideographs, Hangul) characters; the rest,
    continuation bytes included, to a space. One character has one lead byte, so counting
    codes counts characters, in C rather than per character in Python."""
    table = bytearray(b" " * 256)
    for codes, code in (
        (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", b"l"),
        (bytes(range(0xC3, 0xCA)), b"l"),
        (bytes(range(0xD0, 0xD4)), b"c"),
        (bytes((0xD8, 0xD9, 0xDA, 0xDB, 0xDD)), b"a"),
        (bytes(range(0xE3, 0xEE)), b"j"),
    ):
        for byte in codes:
            table[byte] = code[0]
    return bytes(table)


_SCRIPT_OF_BYTE: Final = _script_of_byte()
_SCRIPT_CODES: Final = (("latin", b"l"), ("cyrillic", b"c"), ("cjk", b"j"), ("arabic", b"a"))


class PromptFeatures(NamedTuple):
    """One request's bin for each feature in FEATURES (same order)."""

    length: str
    language: str
    route: str
    max_tokens: str


def _bin(value: int, bounds: tuple[int, ...]) -> str:
    i = bisect.bisect_left(bounds, value)
    if i == len(bounds):
        return f">{bounds[-1]}"
    return f"{bounds[i - 1] + 1 if i else 0}-{bounds[i]}"


def _content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def prompt_text(document: dict[str, Any]) -> tuple[int, str]:
    """Characters of all prompt text (chat messages, completions prompt, Responses input and
    instructions) and the last user-written text."""
    total, user = 0, ""
    for key in ("instructions", "prompt", "input", "messages"):
        value = document.get(key)
        if isinstance(value, str):
            total += len(value)
            if key != "instructions":
                user = value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    text = item
                elif isinstance(item, dict):
                    text = _content_text(item.get("content", item.get("text")))
                else:
                    continue  # token ids: no text to measure
                total += len(text)
                if text and (not isinstance(item, dict) or item.get("role", "user") == "user"):
                    user = text
    return total, user


def script(text: str) -> str:
    """The dominant writing system of the start of `text`: latin, cyrillic, cjk, arabic,
    other (letters of another script) or none (no letters)."""
    sample = text[:SCRIPT_SAMPLE_CHARS]
    coded = sample.encode(errors="ignore").translate(_SCRIPT_OF_BYTE)
    best, name = max((coded.count(code), name) for name, code in _SCRIPT_CODES)
    if best:
        return name
    return "other" if any(ch.isalpha() for ch in sample) else "none"


def requested_tokens(document: dict[str, Any]) -> int | None:
    """The output-token limit the request sets, under any of the APIs' names."""
    for field in _MAX_TOKENS_FIELDS:
        value = document.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def prompt_features(route: str, document: dict[str, Any]) -> PromptFeatures:
    """The bins of one parsed request body."""
    length, user = prompt_text(document)
    tokens = requested_tokens(document)
    return PromptFeatures(
        length=_bin(length, LENGTH_BOUNDS),
        language=script(user),
        route=route,
        max_tokens="unset" if tokens is None else _bin(tokens, MAX_TOKENS_BOUNDS),
    )
