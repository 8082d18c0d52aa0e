"""PII scrubbing for everything that leaves the user's own path: mirrored request bodies and
the answers stored for scoring and reviewers.

Python's regex engine is slow when many patterns are tried at every position, so detection
is anchored: C-speed substring searches find the few places worth a look ('@', '://', key
prefixes, label words), one cheap pass finds runs of digits, and full patterns and
validators (Luhn, mod-97, SSN rules, `ipaddress`, phone number shapes) run only there.

A value is replaced by a placeholder numbered per entity within one session (a request and
its answers), so the same value is the same token everywhere: `<EMAIL_1>`, `<PHONE_1>`,
`<CARD_1>`, `<IBAN_1>`, `<SSN_1>`, `<IP_1>`, `<MAC_1>`, `<SECRET_1>`, `<URL_CREDENTIALS_1>`,
`<PERSON_1>`, `<ADDRESS_1>`, `<DOB_1>`, and `<NAME_1>` for a custom pattern named NAME. With a
pseudonym key the number becomes a keyed HMAC of the value, stable across requests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

from gateway._scrub_rules import (
    card_ok,
    iban_ok,
    ip_ok,
    mac_ok,
    phone_digits,
    phone_spans,
    secret_ok,
    ssn_ok,
)
from gateway.config import ScrubConfig

Finding = tuple[int, int, str]

# Values of these keys are identifiers or enums, never user text.
_SKIP_KEYS: Final = frozenset(
    {"model", "role", "type", "id", "tool_call_id", "object", "finish_reason", "format",
     "detail", "voice", "encoding_format", "service_tier"}
)  # fmt: skip
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

# --- digits: one cheap pass for runs, full shapes tried on each run ---------------------
_DIGIT_RUN: Final = re.compile(r"[\d+(][\d .()+/-]*(?:(?:x|ext\.?) ?\d{1,5}\b)?")
_IDENTIFIER_BEFORE: Final = frozenset(_WORD_CHARS | {".", "-", "/", "#", "$", "€", "£"})
_NOT_PII_BEFORE: Final = re.compile(
    r"(?i:order|invoice|id|ref|ticket|build|version|release|sku|port|step)\W{0,3}$"
)
_PII_LABEL_BEFORE: Final = re.compile(r"(?i:card|phone|tel|mobile|cell|fax|call|ssn)\b.{0,16}$")
_IPV4: Final = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
_SSN: Final = re.compile(r"\d{3}[- ]\d{2}[- ]\d{4}")
_CARD: Final = re.compile(r"\d(?:[ -]?\d){11,18}")
_IBAN: Final = re.compile(r"[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?")
_DATE_VALUE: Final = re.compile(
    r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}(?:st|nd|rd|th)? [A-Z][a-z]{2,8},? \d{4}"
)
_DOB_LABEL: Final = re.compile(
    r"(?i:date of birth|d\.o\.b\.?|dob|born on|birth ?date|birthday)\W{0,4}$"
)
_ADDRESS: Final = re.compile(
    r"\d{1,6}[A-Za-z]? (?:[A-Z][a-z]+ ){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl"
    r"|Terrace|Parkway|Pkwy|Square|Sq|Circle|Cir|Highway|Hwy)\b"
)
_HOUSE_NUMBER_AFTER: Final = re.compile(r" [A-Z][a-z]")
_CHUNK: Final = re.compile(r"\S+")

# --- anchored by substrings --------------------------------------------------------------
_EMAIL_LOCAL: Final = re.compile(r"[A-Za-z0-9._%+-]{1,64}\Z")
_EMAIL_DOMAIN: Final = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}\b")
_URL_CREDENTIALS: Final = re.compile(r"[a-z][a-z0-9+.-]{1,15}://[^\s/:@]{1,64}:[^\s/@]{1,128}@")
_KEY_SHAPES: Final[dict[str, re.Pattern[str]]] = {
    prefix: re.compile(pattern)
    for prefix, pattern in {
        "sk-": r"sk-(?:proj-|ant-(?:api\d\d-)?|live|test)?[A-Za-z0-9_-]{16,256}",
        "AKIA": r"AKIA[0-9A-Z]{16}\b",
        "ASIA": r"ASIA[0-9A-Z]{16}\b",
        "gh": r"gh[pousr]_[A-Za-z0-9]{30,256}",
        "github_pat_": r"github_pat_[A-Za-z0-9_]{30,256}",
        "xox": r"xox[abposr]-[A-Za-z0-9-]{10,256}",
        "_live_": r"[spr]k_live_[A-Za-z0-9]{16,256}",
        "_test_": r"[spr]k_test_[A-Za-z0-9]{16,256}",
        "AIza": r"AIza[0-9A-Za-z_-]{35}",
        "eyJ": r"eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{8,4096}",
        "-----BEGIN": r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[\s\S]{0,8192}?"
                      r"-----END [A-Z ]{0,20}PRIVATE KEY-----",
    }.items()
}  # fmt: skip
# Prefixes that sit inside a longer token ("sk_live_...") are not checked for a word start.
_INNER_PREFIXES: Final = frozenset({"_live_", "_test_"})
_BEARER: Final = re.compile(r"(?i:bearer)\s{1,8}([A-Za-z0-9._~+/-]{16,4096}={0,2})")
_SECRET_WORDS: Final = ("key", "secret", "token", "passw", "pwd", "sig")
_LABELLED_SECRET: Final = re.compile(
    r"(?i:api[_-]?key|access[_-]?key|secret(?:[_-]?key)?|(?:access[_-]?|auth[_-]?)?token"
    r"|password|passwd|pwd|key|sig|signature)[\"']?(?:\s{0,4}[:=]|\s{1,4}is)\s{0,4}[\"']?"
    r"([^\s\"',;&#]{6,512})"
)
# Cues before a name: searched in the lowered text, and titles in the original (a name
# after them is capitalised anyway; lowercase "dr" and "ms" hide inside many words).
_PERSON_CUES: Final = (
    "my name is", "name:", "dear ", "hi ", "hello ", "regards,", "sincerely,", "thanks,",
    "cheers,",
)  # fmt: skip
_PERSON_TITLES: Final = ("Mr", "Ms", "Miss", "Dr", "Prof", "MR", "DR")
_PERSON: Final = re.compile(
    r"(?:(?i:my name is|name:|dear|hi|hello|regards,|sincerely,|thanks,|cheers,)\s+"
    r"|(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+)"
    r"([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})"
)
_NOT_NAMES: Final = frozenset(
    {"There", "All", "Team", "Everyone", "Sir", "Madam", "Again", "Folks", "World", "The",
     "This", "That", "It", "I", "We", "You", "Please", "Thanks", "Thank"}
)  # fmt: skip
_HEX_COLON: Final = re.compile(
    r"(?<![\w:])(?:(?P<MAC>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})"
    r"|(?P<IP>(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}))(?![\w:])"
)


def _find_all(haystack: str, needle: str) -> Iterator[int]:
    at = haystack.find(needle)
    while at != -1:
        yield at
        at = haystack.find(needle, at + 1)


def _digit_findings(text: str) -> Iterator[Finding]:
    for run in _DIGIT_RUN.finditer(text):
        start = run.start()
        value = run.group().rstrip(" .(-/+")
        before = text[start - 1] if start else " "
        if before in _IDENTIFIER_BEFORE:
            if before.isalpha() and start >= 2:
                iban = _IBAN.match(text, start - 2)
                word_start = start < 3 or text[start - 3] not in _WORD_CHARS
                if iban and word_start and iban_ok(iban.group()):
                    yield iban.start(), iban.end(), "IBAN"
                    continue
            # The first chunk belongs to an identifier, a version or an amount.
            cut = value.find(" ")
            if cut < 0:
                continue
            start, value = start + cut + 1, value[cut + 1 :]
        end = start + len(value)
        after = text[end] if end < len(text) else " "
        if after in _WORD_CHARS and not after.isdigit():
            address = _ADDRESS.match(text, start)
            if address:
                yield start, address.end(), "ADDRESS"
                continue
            # The last chunk is glued to letters ("1500ms", "3f7868..."): not PII.
            cut = value.rfind(" ")
            if cut < 0:
                continue
            value = value[:cut]
        digits = sum(map(value.count, "0123456789"))
        if not digits:
            continue
        if digits < 7 and "." not in value and "/" not in value and "-" not in value:
            # Too short for a phone, card, SSN, IP or date: only a house number is left.
            address = _ADDRESS.match(text, start)
            if address:
                yield start, address.end(), "ADDRESS"
            continue
        window = text[max(0, start - 24) : start]
        if _NOT_PII_BEFORE.search(window) and not _PII_LABEL_BEFORE.search(window):
            # "order 48213 ...": the first number is an identifier; the rest may be PII.
            cut = value.find(" ")
            if cut < 0:
                continue
            start, value = start + cut + 1, value[cut + 1 :]
        yield from _classify_run(text, start, value.rstrip(" .(-/+"))


def _classify_run(text: str, start: int, value: str) -> Iterator[Finding]:
    window = text[max(0, start - 20) : start]
    if _DOB_LABEL.search(window):
        date = _DATE_VALUE.match(value)
        if date:
            yield start, start + date.end(), "DOB"
            return
    for pattern, check, whole in (
        (_IPV4, ip_ok, "IP"),
        (_SSN, ssn_ok, "SSN"),
        (_CARD, card_ok, "CARD"),
    ):
        match = pattern.fullmatch(value)
        if match and check(value):
            yield start, start + len(value), whole
            return
    address = _ADDRESS.match(text, start)
    if address:
        yield start, address.end(), "ADDRESS"
        return
    # A run of several values: SSNs, IPs and cards stand alone, phones are found between.
    chunks = [m.span() for m in _CHUNK.finditer(value)]
    segment = 0
    i = 0
    while i < len(chunks):
        a, b = chunks[i]
        piece = value[a:b]
        entity: str | None = None
        if _SSN.fullmatch(piece) and ssn_ok(piece):
            entity = "SSN"
        elif _IPV4.fullmatch(piece) and ip_ok(piece):
            entity = "IP"
        else:
            b, taken = _card_at(value, chunks, i)
            if taken:
                entity = "CARD"
                i += taken - 1
        if entity is None:
            i += 1
            continue
        yield from _phones(text, start + segment, value[segment:a])
        yield start + a, start + b, entity
        segment = b
        i += 1
    yield from _phones(text, start + segment, value[segment:])


def _card_at(value: str, chunks: list[tuple[int, int]], i: int) -> tuple[int, int]:
    """The longest card number made of chunks i, i+1, ...: (its end, how many chunks)."""
    best = (0, 0)
    digits = 0
    for j in range(i, min(i + 5, len(chunks))):
        a, b = chunks[j]
        if not value[a:b].replace("-", "").isdigit():
            break
        digits += b - a - value.count("-", a, b)
        if digits > 19:
            break
        if digits >= 12 and card_ok(value[chunks[i][0] : b]):
            best = (b, j - i + 1)
    return best


def _phones(text: str, start: int, value: str) -> Iterator[Finding]:
    for a, b in phone_spans(value.rstrip()):
        if phone_digits(value[a:b]) <= 8 and _HOUSE_NUMBER_AFTER.match(text, start + b):
            continue  # "370 3911 Fourth Avenue": a house number, not a phone
        yield start + a, start + b, "PHONE"


def _email_findings(text: str) -> Iterator[Finding]:
    for at in _find_all(text, "@"):
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local and domain:
            yield local.start(), domain.end(), "EMAIL"


def _secret_findings(text: str, lowered: str) -> Iterator[Finding]:
    for prefix, pattern in _KEY_SHAPES.items():
        for at in _find_all(text, prefix):
            if prefix in _INNER_PREFIXES:
                at -= 2
            elif at and text[at - 1] in _WORD_CHARS:
                continue
            match = pattern.match(text, at)
            if match:
                yield match.start(), match.end(), "SECRET"
    for at in _find_all(lowered, "bearer"):
        match = _BEARER.match(text, at)
        if match:
            yield match.start(1), match.end(1), "SECRET"
    for at in _find_all(text, "://"):
        match = _URL_CREDENTIALS.search(text, max(0, at - 16), at + 200)
        if match and match.start() <= at:
            yield match.start(), match.end(), "URL_CREDENTIALS"
    seen: set[int] = set()
    for word in _SECRET_WORDS:
        for at in _find_all(lowered, word):
            # Cheap look past the word for a label's connector before any regex runs.
            tail = lowered[at + len(word) : at + len(word) + 24]
            if ":" not in tail and "=" not in tail and " is " not in tail:
                continue
            match = _LABELLED_SECRET.search(text, max(0, at - 8), at + 160)
            if match and match.start() <= at and match.start(1) not in seen:
                seen.add(match.start(1))
                if secret_ok(match.group(1)):
                    yield match.start(1), match.end(1), "SECRET"


def _person_findings(text: str, lowered: str) -> Iterator[Finding]:
    starts = {at for cue in _PERSON_CUES for at in _find_all(lowered, cue)}
    starts.update(at for title in _PERSON_TITLES for at in _find_all(text, title))
    for at in sorted(starts):
        if at and text[at - 1] in _WORD_CHARS:
            continue
        match = _PERSON.match(text, at)
        if match and match.group(1).split(" ")[0] not in _NOT_NAMES:
            yield match.start(1), match.end(1), "PERSON"


class ScrubSession:
    """Placeholders for one request and its answers; `counts` says what was replaced."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._tokens: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}

    def _token(self, entity: str, value: str) -> str:
        key = (entity, value)
        token = self._tokens.get(key)
        if token is None:
            self.counts[entity] = self.counts.get(entity, 0) + 1
            pseudonym = self._scrubber.pseudonym(entity, value)
            token = f"<{entity}_{pseudonym or self.counts[entity]}>"
            self._tokens[key] = token
        return token

    def text(self, value: str) -> str:
        """Scrub free text."""
        return self._scrubber.scrub_text(value, self._token)

    def json(self, value: Any) -> Any:
        """Scrub the string values of a parsed JSON document; returns a new document."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: v if k in _SKIP_KEYS and isinstance(v, str) else self.json(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value


class Scrubber:
    """Compiled detectors shared by every session; immutable after construction."""

    def __init__(self, config: ScrubConfig) -> None:
        self._custom = [(c.name, re.compile(c.pattern)) for c in config.custom]
        self._allow = frozenset(config.allow)
        key = config.pseudonym_key
        self._key = key.get_secret_value().encode() if key else None

    def session(self) -> ScrubSession:
        return ScrubSession(self)

    def pseudonym(self, entity: str, value: str) -> str | None:
        if self._key is None:
            return None
        return hmac.new(self._key, f"{entity}\0{value}".encode(), hashlib.sha256).hexdigest()[:8]

    def detect(self, text: str) -> list[Finding]:
        """`(start, end, entity)` of every value to replace, in order, never overlapping."""
        lowered = text.lower()
        found: list[Finding] = []
        if "@" in text:
            found.extend(_email_findings(text))
        found.extend(_secret_findings(text, lowered))
        found.extend(_digit_findings(text))
        found.extend(_person_findings(text, lowered))
        if text.count(":") >= 2:
            for match in _HEX_COLON.finditer(text):
                kind = match.lastgroup or "IP"
                if (mac_ok if kind == "MAC" else ip_ok)(match.group()):
                    found.append((match.start(), match.end(), kind))
        for name, pattern in self._custom:
            found.extend((m.start(), m.end(), name) for m in pattern.finditer(text) if m.group())
        if not found:
            return found
        kept = self._resolve(text, found)
        # A value found once is replaced everywhere, even where its context hid it.
        values = {text[a:b]: e for a, b, e in kept}
        more = [
            (at, at + len(value), entity)
            for value, entity in values.items()
            for at in _find_all(text, value)
        ]
        return self._resolve(text, more) if len(more) > len(kept) else kept

    def _resolve(self, text: str, found: list[Finding]) -> list[Finding]:
        # Earlier first; at one start the longer wins; anything overlapping a kept span goes.
        found.sort(key=lambda f: (f[0], f[0] - f[1]))
        kept: list[Finding] = []
        last = 0
        for start, end, entity in found:
            if start >= last and text[start:end] not in self._allow:
                kept.append((start, end, entity))
                last = end
        return kept

    def scrub_text(self, text: str, token: Callable[[str, str], str]) -> str:
        """Replace every detected value in `text` with `token(entity, value)`."""
        found = self.detect(text)
        if not found:
            return text
        out: list[str] = []
        last = 0
        for start, end, entity in found:
            out.append(text[last:start])
            out.append(token(entity, text[start:end]))
            last = end
        out.append(text[last:])
        return "".join(out)
