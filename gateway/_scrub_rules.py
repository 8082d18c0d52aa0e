"""Validators for the scrubber's candidates: checksums, number plans and shapes that tell a
card, an IBAN, an SSN, an IP address or a phone number from a look-alike."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from typing import Final

_CARD_SEPARATORS: Final = str.maketrans("", "", " -")
# Only Maestro issues 12-digit cards (prefixes 50 and 56-69, also seen as 06).
_MAESTRO_12: Final = frozenset({"50", "06", *(str(n) for n in range(56, 70))})
_DATE: Final = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")
_CHUNK: Final = re.compile(r"\S+")
_GROUP_SEPARATOR: Final = re.compile(r"[ .-]")
_NANP_WITH_1: Final = frozenset(f"1{d}" for d in "23456789")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_ok(value: str) -> bool:
    digits = value.translate(_CARD_SEPARATORS)
    if len(digits) == 12:
        if digits[:2] not in _MAESTRO_12:
            return False
    elif not 13 <= len(digits) <= 19:
        return False
    return len(set(digits)) > 1 and luhn_ok(digits)


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_ok(value: str) -> bool:
    digits = value.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def ip_ok(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    # Unspecified and loopback addresses say nothing about a person.
    return not (address.is_unspecified or address.is_loopback)


def mac_ok(value: str) -> bool:
    return value.replace("-", ":").lower() not in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")


def phone_digits(value: str) -> int:
    """Digits of a phone number, its extension left out."""
    number = value.split("x", 1)[0]
    return sum(map(number.count, "0123456789"))


def phone_ok(value: str) -> bool:
    digits = phone_digits(value)
    if not 7 <= digits <= 15 or _DATE.search(value):
        return False
    if value.startswith("+") or "(" in value:
        return True
    groups = _GROUP_SEPARATOR.split(value.split("x", 1)[0].strip())
    if len(groups) == 1:
        # Unseparated: a NANP number (area code 2-9), with or without its country code 1,
        # or a national number with a trunk 0. Epoch timestamps and ids fall outside.
        return (digits == 10 and value[0] in "23456789") or (
            digits == 11 and (value[:2] in _NANP_WITH_1 or value[0] == "0")
        )
    if len(groups) == 2:
        # Two groups: a decimal number, a range or a postcode, unless shaped like a local
        # number (555-0132, 9472 7916), a trunk-prefixed one or a long subscriber part.
        if "." in value:
            return False
        local = len(groups[1]) == 4 and len(groups[0]) in (3, 4)
        return local or (value[0] == "0" and digits >= 9) or len(groups[1]) >= 6
    return True


def phone_spans(value: str) -> list[tuple[int, int]]:
    """Phone numbers inside a candidate run, which may hold several numbers in a row
    (`905-674-3793 07700 063 966`): a chunk that is a number by itself stands alone, short
    chunks are joined while they fit one number."""
    if phone_ok(value):
        return [(0, len(value))]
    spans: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []

    def close() -> None:
        if run and phone_ok(value[run[0][0] : run[-1][1]]):
            spans.append((run[0][0], run[-1][1]))
        run.clear()

    for chunk in _CHUNK.finditer(value):
        if phone_digits(chunk.group()) >= 7:
            close()
            if phone_ok(chunk.group()):
                spans.append(chunk.span())
            continue
        if run and phone_digits(value[run[0][0] : chunk.end()]) > 15:
            close()
        run.append(chunk.span())
    close()
    return spans


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def secret_ok(value: str) -> bool:
    # A word after "token:" is prose ("token: see below"); a real one mixes character
    # classes or is long, and is not a run of one character ("******").
    has_digit = any(ch.isdigit() for ch in value)
    return (has_digit or len(value) >= 20) and _entropy(value) >= 2.5
