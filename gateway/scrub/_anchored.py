"""Detectors anchored on a literal, found at memchr speed: email addresses ('@'), IPv6 and
MAC addresses and credentials in URLs (':', '-'), keys by the prefixes their issuers use, and
values after credential and birth-date labels, as findings `(start, end, entity)`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from gateway.scrub._rules import (
    basic_auth_ok,
    entropy_bits,
    ip_ok,
    mac_ok,
    secret_ok,
)
from gateway.scrub._scan import WORD_CHARS, Finding

_HEX_COLON: Final = frozenset("0123456789abcdefABCDEF:.")

# --- email ---------------------------------------------------------------------------------
# The lookbehind makes the search try only where a run of local-part characters starts.
_EMAIL_LOCAL: Final = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}+\Z")
_EMAIL_DOMAIN: Final = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)


def emails(text: str) -> Iterator[Finding]:
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local and domain:
            start = local.start()
            while text[start] == ".":
                start += 1
            # "scheme://user:password@host" holds a password, not an address.
            in_url = start and text[start - 1] == ":" and "://" in text[max(0, start - 80) : start]
            if start < at and not in_url:
                yield start, domain.end(), "EMAIL"
                at = domain.end()
        at = text.find("@", at + 1)


# --- colons: IPv6, MAC, credentials in URLs ---------------------------------------------
# The colons worth a look: before "//", or between hex digits, dots and colons. sre passes
# over the others ("key: value", "Note:") without returning to Python.
_COLON: Final = re.compile(r":(?://|(?<=[0-9A-Fa-f:.]:)(?=[0-9A-Fa-f:.]))")
_HEX_TAIL: Final = re.compile(r"[0-9A-Fa-f:.]*")
_MAC: Final = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_URL_USERINFO: Final = re.compile(r"[^\s/:@]{1,64}:([^\s/@]{1,128})@")
# Opens with a literal dash so sre finds candidates at memchr speed; the first octet is
# checked by hand.
_MAC_DASHED: Final = re.compile(r"-[0-9A-F]{2}-[0-9A-F]{2}-[0-9A-F]{2}-[0-9A-F]{2}-[0-9A-F]{2}")
_HEX_UPPER: Final = frozenset("0123456789ABCDEF")


def colons(text: str) -> Iterator[Finding]:
    n = len(text)
    colon = _COLON.search(text)
    while colon:
        at = colon.start()
        if text.startswith("//", at + 1):
            userinfo = _URL_USERINFO.match(text, at + 3)
            if userinfo:
                yield userinfo.start(1), userinfo.end(1), "SECRET"
        else:
            start = at
            while start and text[start - 1] in _HEX_COLON and at - start < 45:
                start -= 1
            tail = _HEX_TAIL.match(text, at)
            end = tail.end() if tail else at + 1
            while end > at + 1 and text[end - 1] in ".:" and not text.endswith("::", 0, end):
                end -= 1
            while start < at and (text[start] == "." or _lone_colon(text, start)):
                start += 1
            value = text[start:end]
            glued = bool(start and text[start - 1] in WORD_CHARS) or (
                end < n and text[end] in WORD_CHARS
            )
            # Two colons and a few hex digits at least: "a::" in code is no address.
            if not glued and value.count(":") >= 2 and len(value) - value.count(":") >= 4:
                if _MAC.fullmatch(value):
                    if mac_ok(value):
                        yield start, end, "MAC"
                elif ip_ok(value):
                    yield start, end, "IP"
            at = max(at, end - 1)
        colon = _COLON.search(text, at + 1)


def _lone_colon(text: str, at: int) -> bool:
    return text.startswith(":", at) and not text.startswith("::", at)


def dashed_macs(text: str) -> Iterator[Finding]:
    n = len(text)
    for match in _MAC_DASHED.finditer(text):
        start, end = match.start() - 2, match.end()
        if start < 0 or not (text[start] in _HEX_UPPER and text[start + 1] in _HEX_UPPER):
            continue
        if (start and text[start - 1] in WORD_CHARS) or (end < n and text[end] in WORD_CHARS):
            continue
        if mac_ok(text[start:end]):
            yield start, end, "MAC"


# --- secrets by shape --------------------------------------------------------------------
# sre skips to a literal about ten times faster than to a character class, and each pass over
# the text costs about as much as any other. Most issuers' prefixes end in a mark ('-', '_' or
# '.'), so there is one pattern per mark: it opens with the mark and checks the prefix before
# it by a lookbehind. Keys without a mark (AWS key ids, Google API keys, JWTs) have patterns
# of their own. Each pattern runs only when its mark or first letter occurs at all.
_KEYS: Final = (  # (issuer prefix up to its mark, the rest of the key)
    ("sk-", r"(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-|or-v1-)?[A-Za-z0-9_-]{20,}"),
    ("glpat-", r"[A-Za-z0-9_-]{20,}"),
    *((f"xox{kind}-", r"[A-Za-z0-9-]{10,}") for kind in "abposre"),
    ("xai-", r"[A-Za-z0-9]{40,}"),
    *((f"{kind}k_", r"(?:live|test)_[A-Za-z0-9]{16,}") for kind in "sr"),
    ("whsec_", r"[A-Za-z0-9+/=]{24,}"),
    ("npm_", r"[A-Za-z0-9]{36}"),
    *((f"gh{kind}_", r"[A-Za-z0-9]{30,}") for kind in "pousr"),
    ("github_", r"pat_[A-Za-z0-9_]{30,}"),
    ("hf_", r"[A-Za-z0-9]{30,}"),
    ("hooks.", r"slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ("ya29.", r"[0-9A-Za-z_-]{20,}"),
    ("SG.", r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
)
# A PEM private key: its lines of base64 and headers (newlines, escaped newlines or spaces
# between them) and the END line when it is there. Line by line, no lazy search for END, so
# a run of BEGIN lines stays linear. It opens with a dash, so it shares that mark's pattern.
_PEM: Final = (
    r"----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
    r"(?:(?:\r?\n|\\n|[ ])(?:[A-Za-z0-9+/=]{1,128}|[A-Za-z-]{1,32}: [^\r\n\\]{0,128}))*"
    r"(?:(?:\r?\n|\\n|[ ])?-----END [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----)?"
)


def _after_mark(mark: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """The pattern for the keys whose prefix ends in `mark`, and how long the prefixes are
    that each of its branches looks behind for: branch `key<i>`, `widths[i]`. Prefixes of
    one length and one rest share a branch."""
    branches: dict[tuple[int, str], list[str]] = {}
    for prefix, rest in _KEYS:
        if prefix.endswith(mark):
            branches.setdefault((len(prefix), rest), []).append(re.escape(prefix))
    alternatives = [
        f"(?<={'|'.join(prefixes)}){rest}(?P<key{i}>)"
        for i, ((_, rest), prefixes) in enumerate(branches.items())
    ]
    if mark == "-":
        alternatives.append(f"{_PEM}(?P<pem>)")
    pattern = re.compile(f"{re.escape(mark)}(?:{'|'.join(alternatives)})")
    return pattern, tuple(width for width, _ in branches)


_MARKED_KEYS: Final = tuple((mark, *_after_mark(mark)) for mark in "-_.")
_UNMARKED_KEYS: Final = (
    (
        "A",
        re.compile(
            r"A(?:(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA)[A-Z0-9]{16}(?![A-Za-z0-9])"
            r"|Iza[0-9A-Za-z_-]{35})"
        ),
    ),
    ("J", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
)


def shaped_secrets(text: str) -> Iterator[Finding]:
    for mark, pattern, widths in _MARKED_KEYS:
        if mark in text:
            for match in pattern.finditer(text):
                branch = str(match.lastgroup)
                if branch == "pem":
                    yield match.start(), match.end(), "SECRET"
                else:
                    start = match.start() + 1 - widths[int(branch[3:])]
                    yield from _key(text, start, match.end())
    for needed, pattern in _UNMARKED_KEYS:
        if needed in text:
            for match in pattern.finditer(text):
                yield from _key(text, *match.span())


def _key(text: str, start: int, end: int) -> Iterator[Finding]:
    if start and text[start - 1] in WORD_CHARS:
        return  # "task-..." is no "sk-" key
    if _random_enough(text[start:end]):
        yield start, end, "SECRET"


def _random_enough(token: str) -> bool:
    # Issued keys mix digits or both cases at random; "sk-learn-is-great-for-this" does not.
    mixed = any(ch.isdigit() for ch in token) or (token.lower() != token != token.upper())
    return mixed and entropy_bits(token) >= 3.0


# --- labels: key=value secrets, bearer tokens, dates of birth -----------------------------
_LABEL_TOKEN: Final = re.compile(r"(?<![a-z0-9_.-])[a-z0-9_.-]*+\Z")
_LABEL_TAIL: Final = re.compile(r"[a-z0-9_]*(?:[.-][a-z0-9_]+)*")
_LABEL_NAMES: Final = frozenset(
    "password passwd pass pwd passphrase passcode secret token key apikey secretkey accesskey "
    "privatekey authtoken accesstoken refreshtoken credential credentials clientsecret "
    "sessiontoken".split()
)
_LABEL_VALUE: Final = re.compile(
    r"[\"']?[ \t]{0,3}(?P<sep>[:=]|=>|:=|(?:is|was|are)(?=[ \t]))?[ \t]{0,3}[\"']?"
    r"(?P<value>[^\s\"'`,;<>(){}\[\]]{6,512})"
)
_BEARER: Final = re.compile(r"(?i:bearer)[ \t]+([A-Za-z0-9._~+/-]{12,4096}={0,2})")
_BASIC: Final = re.compile(r"(?i:basic)[ \t]+([A-Za-z0-9+/]{8,1024}={0,2})(?![A-Za-z0-9+/=])")
_MONTH: Final = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DOB_VALUE: Final = re.compile(
    rf"[a-z]{{0,8}}(?:[ \t](?:date|day))?[ \t]{{0,3}}(?:[:=-]|(?:is|was|on|in)\b)?"
    rf"[ \t]{{0,3}}(?:on\b)?[ \t]{{0,3}}"
    rf"(?P<value>\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?(?:\ of)?\ {_MONTH}\.?,?(?:\ \d{{4}})?"
    rf"|{_MONTH}\.?\ \d{{1,2}}(?:st|nd|rd|th)?,?(?:\ \d{{4}})?"
    rf"|\d{{4}}\b)",
    re.IGNORECASE,
)


def _secret_after(text: str, lowered: str, at: int, end: int) -> Finding | None:
    tail = _LABEL_TAIL.match(lowered, end)
    end = tail.end() if tail else end
    label = _LABEL_TOKEN.search(lowered, max(0, at - 40), end)
    if label is None:
        return None
    name = label.group().lstrip("-").replace("-", "_").replace(".", "_")
    if name.rsplit("_", 1)[-1] not in _LABEL_NAMES:
        return None
    match = _LABEL_VALUE.match(text, end)
    if match is None:
        return None
    value = match.group("value")
    if match.group("sep") == "=":
        value = value.split("&", 1)[0]  # the next parameter of a query string
    value = value.rstrip(".")
    loose = match.group("sep") is not None or label.group().startswith("-")
    if not secret_ok(value, labelled=loose):
        return None
    return match.start("value"), match.start("value") + len(value), "SECRET"


def _bearer_after(text: str, lowered: str, at: int, end: int) -> Finding | None:
    match = _BEARER.match(text, at)
    if match is None or not secret_ok(match.group(1), labelled=True):
        return None
    return match.start(1), match.end(1), "SECRET"


def _basic_after(text: str, lowered: str, at: int, end: int) -> Finding | None:
    match = _BASIC.match(text, at)
    if match is None or not basic_auth_ok(match.group(1)):
        return None
    return match.start(1), match.end(1), "SECRET"


def _birth_date_after(text: str, lowered: str, at: int, end: int) -> Finding | None:
    if at and lowered[at - 1].isalpha():
        return None
    match = _DOB_VALUE.match(text, end)
    if match is None:
        return None
    return match.start("value"), match.end("value"), "DOB"


# Each label word is a pattern of its own: sre skips to a literal about twice as fast as
# `str.find` does to a short word.
_LABELS: Final = tuple(
    (re.compile(word), read)
    for word, read in (
        *((w, _secret_after) for w in ("pass", "pwd", "secret", "token", "key", "credential")),
        ("bearer", _bearer_after),
        ("basic", _basic_after),
        *((w, _birth_date_after) for w in ("birth", "dob", "born")),
    )
)


def labelled(text: str, lowered: str) -> list[Finding]:
    """Values after credential labels (`password: ...`, `"api_key": "..."`, `--token ...`,
    `Authorization: Bearer ...`) and dates after birth labels."""
    found: list[Finding] = []
    for word, read in _LABELS:
        label = word.search(lowered)
        while label:
            finding = read(text, lowered, *label.span())
            if finding is None:
                label = word.search(lowered, label.start() + 1)
            else:  # a label inside the value ("password=password=...") is part of it
                found.append(finding)
                label = word.search(lowered, finding[1])
    return found
