"""PII scrubbing for everything that leaves the user's own path: mirrored request bodies and
the answers stored for scoring and reviewers. Detection lives in `_scan` and `_anchored`
(where values are) and `_rules` (whether a candidate is one); this module replaces them.

Placeholders are numbered per entity within one session (a request and its answers), so one
value is one token everywhere: `<EMAIL_1>`, `<PHONE_1>`, `<CARD_1>`, `<IBAN_1>`, `<SSN_1>`,
`<IP_1>`, `<MAC_1>`, `<SECRET_1>`, `<PERSON_1>`, `<ADDRESS_1>`, `<DOB_1>`, and `<NAME_1>` for a
custom pattern named NAME. With a pseudonym key the number becomes a keyed HMAC of the value
(`<EMAIL_3f9a2c1d>`), stable across requests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from gateway.config import PII_ENTITIES as ENTITIES
from gateway.config import ScrubConfig
from gateway.scrub._anchored import colons, dashed_macs, emails, labelled, shaped_secrets
from gateway.scrub._scan import WORD_CHARS, Finding, scan

__all__ = ["ENTITIES", "Finding", "ScrubSession", "Scrubber"]

# String values under these keys are identifiers or enums, never user text.
_IDENTIFIER_KEYS: Final = frozenset(
    "model role type id tool_call_id object finish_reason format detail voice encoding_format "
    "service_tier reasoning_effort modalities system_fingerprint status tool_choice "
    "parallel_tool_calls".split()
)
# "name" is a participant's name in a chat message (a dict with a "role"), an identifier
# (a tool's, a function's, a schema's) anywhere else.
_IDENTIFIER_KEYS_AND_NAME: Final = _IDENTIFIER_KEYS | {"name"}
# `str.lower` lengthens a handful of characters (U+0130 becomes two); offsets into the
# lowered text must match the original, so such text is lowered for ASCII only.
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _find_all(haystack: str, needle: str) -> Iterable[int]:
    at = haystack.find(needle)
    while at != -1:
        yield at
        at = haystack.find(needle, at + len(needle))


def _occurrences(text: str, value: str, entity: str) -> Iterable[Finding]:
    """Where `value` occurs as a whole: not inside a longer word or number."""
    n = len(text)
    word_start, word_end = value[0] in WORD_CHARS, value[-1] in WORD_CHARS
    for at in _find_all(text, value):
        end = at + len(value)
        if word_start and at and text[at - 1] in WORD_CHARS:
            continue
        if word_end and end < n and text[end] in WORD_CHARS:
            continue
        yield at, end, entity


def _resolve(found: list[Finding]) -> list[Finding]:
    """Earlier first; at one start the longer wins; anything overlapping a kept span goes."""
    found.sort()
    kept: list[Finding] = []
    last = 0
    for finding in found:
        if finding[0] >= last:
            kept.append(finding)
            last = finding[1]
        elif finding[0] == kept[-1][0] and finding[1] > last:  # same start: the longer wins
            kept[-1] = finding
            last = finding[1]
    return kept


class Scrubber:
    """Compiled detectors shared by every session; immutable after construction."""

    def __init__(self, config: ScrubConfig) -> None:
        self._custom = tuple((c.name, re.compile(c.pattern)) for c in config.custom)
        self._allow = frozenset(config.allow)
        self._disabled = frozenset(config.disable)
        key = config.pseudonym_key
        self._key = key.get_secret_value().encode() if key else None
        self._secrets = "SECRET" not in self._disabled

    def session(self) -> ScrubSession:
        """Placeholders for one request and the answers to it."""
        return ScrubSession(self)

    def pseudonym(self, entity: str, value: str) -> str | None:
        """The keyed pseudonym of a value, or None without a key."""
        if self._key is None:
            return None
        message = f"{entity}\0{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:8]

    def detect(self, text: str, known: Mapping[str, str] | None = None) -> list[Finding]:
        """`(start, end, entity)` of every value to replace, in order, never overlapping.
        `known` maps values found earlier (in the same session) to their entity: they are
        replaced wherever they occur, even without the context that revealed them."""
        found: list[Finding] = []
        if "@" in text:
            found.extend(emails(text))
        if ":" in text:
            found.extend(colons(text))
        if "-" in text:
            found.extend(dashed_macs(text))
        if self._secrets:
            found.extend(shaped_secrets(text))
        lowered = text.lower()
        if len(lowered) != len(text):
            lowered = text.translate(_ASCII_LOWER)
        found.extend(scan(text))
        found.extend(labelled(text, lowered))
        for name, pattern in self._custom:
            found.extend((*m.span(), name) for m in pattern.finditer(text) if m.end() > m.start())
        if self._disabled or self._allow:
            found = [
                f
                for f in found
                if f[2] not in self._disabled and text[f[0] : f[1]] not in self._allow
            ]
        if not found and not known:
            return found
        kept = _resolve(found)
        # A value found once is replaced everywhere, even where the context that revealed it
        # (a label, a cue, a neighbour) is missing or misleading. Most values occur only where
        # they were found; one `count` (in C) per value tells which to look for.
        values = dict(known) if known else {}
        times: dict[str, int] = {}
        for a, b, entity in kept:
            value = text[a:b]
            values[value] = entity
            times[value] = times.get(value, 0) + 1
        more = [
            finding
            for value, entity in values.items()
            if len(value) >= 3 and text.count(value) > times.get(value, 0)
            for finding in _occurrences(text, value, entity)
        ]
        if not more:
            return kept
        taken = {a for a, _, _ in kept}
        return _resolve([*kept, *(f for f in more if f[0] not in taken)])


class ScrubSession:
    """Placeholders for one request and its answers. `counts` maps each entity type to the
    number of distinct values replaced so far (never the values)."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._tokens: dict[tuple[str, str], str] = {}
        self._known: dict[str, str] = {}
        self.counts: dict[str, int] = {}

    def _token(self, entity: str, value: str) -> str:
        token = self._tokens.get((entity, value))
        if token is None:
            count = self.counts[entity] = self.counts.get(entity, 0) + 1
            token = f"<{entity}_{self._scrubber.pseudonym(entity, value) or count}>"
            self._tokens[entity, value] = token
            self._known[value] = entity
        return token

    def text(self, value: str) -> str:
        """Scrub free text."""
        found = self._scrubber.detect(value, self._known)
        if not found:
            return value
        out: list[str] = []
        last = 0
        for start, end, entity in found:
            out.append(value[last:start])
            out.append(self._token(entity, value[start:end]))
            last = end
        out.append(value[last:])
        return "".join(out)

    def json(self, value: Any) -> Any:
        """Scrub the string values of a parsed JSON document; keys, numbers and identifier
        fields stay as they are. Returns a new document; the input is not changed."""
        if isinstance(value, str):
            return value if _is_data_url(value) else self.text(value)
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, dict):
            skip = _IDENTIFIER_KEYS if "role" in value else _IDENTIFIER_KEYS_AND_NAME
            return {
                key: item if key in skip and isinstance(item, str) else self.json(item)
                for key, item in value.items()
            }
        return value


def _is_data_url(value: str) -> bool:
    # Inline images and audio are base64, not text; scanning them costs time and finds noise.
    return value.startswith("data:") and ";base64," in value[:100]
