"""Validators for the scrubber's candidates: checksums, number plans and shapes that tell a
card, an IBAN, an SSN, an IP address, a phone number or a secret from a look-alike. They see
only the few strings the detectors found, so they may be thorough."""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import math
import re
from typing import Final

import phonenumbers
from phonenumbers import PhoneMetadata

_SEPARATORS: Final = str.maketrans("", "", " -.")
# Issuer prefixes (IIN ranges) of the card schemes in use; a Luhn-valid number outside them
# is an id, not a card. Maestro is the only scheme with 12-digit numbers.
_CARD_PREFIXES: Final = re.compile(r"[456]|3[04-9]|2[2-7]|2014|2149|2131|1800|0604")
# An IBAN's length by country: "AD24" is Andorra's, 24 characters.
_IBAN_LENGTHS: Final = {
    entry[:2]: int(entry[2:])
    for entry in (
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 "
        "EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 "
        "IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 "
        "NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 "
        "TR26 UA29 VA22 VG24 XK20"
    ).split()
}
# Luhn doubles every second digit from the right and sums the digits of the product.
_DOUBLED: Final = str.maketrans("0123456789", "0246813579")
# A calendar date: its day and month in range, so "+61.3.2008.2619" and "+55 22 2010-1953"
# stay phone numbers.
_DAY: Final = r"(?:0?[1-9]|[12][0-9]|3[01])"
_YEAR: Final = r"(?:19|20)[0-9][0-9]"
_DATE: Final = re.compile(
    rf"(?<![0-9])(?:{_YEAR}([-./ ]){_DAY}\1{_DAY}|{_DAY}([-./ ]){_DAY}\2{_YEAR})(?![0-9])"
)
_COMPACT_DATE: Final = re.compile(rf"{_YEAR}(?:0[1-9]|1[0-2]){_DAY}")  # 20240115
_AREA_CODE: Final = re.compile(r"\(\d{1,5}\)")
_GROUPS: Final = re.compile(r"[ .()/-]+")
_NANP_WITH_1: Final = frozenset(f"1{d}" for d in "23456789")
_EXTENSION: Final = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,5}\Z", re.IGNORECASE)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits."""
    codes = (digits[-1::-2] + digits[-2::-2].translate(_DOUBLED)).encode("ascii")
    return (sum(codes) - 48 * len(codes)) % 10 == 0


def card_ok(value: str) -> bool:
    """A payment card number: 12 (Maestro) or 13-19 digits, a scheme prefix, Luhn."""
    digits = value.translate(_SEPARATORS)
    if not (13 <= len(digits) <= 19 or (len(digits) == 12 and digits[0] in "056")):
        return False
    if not (digits.isascii() and digits.isdigit()) or not _CARD_PREFIXES.match(digits):
        return False
    return len(set(digits)) > 1 and luhn_ok(digits)


def iban_ok(value: str) -> bool:
    """An IBAN of its country's length whose check digits verify (ISO 13616 mod-97)."""
    compact = value.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is None or len(compact) != expected or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def ssn_ok(value: str) -> bool:
    """A US SSN the SSA could have issued: no area 000, 666 or 900-999, no group 00, no
    serial 0000, and not one of the numbers famously used in advertising."""
    digits = value.replace("-", "").replace(" ", "")
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("078051120", "219099999", "123456789")


def ip_ok(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    # Unspecified, loopback and link-local addresses say nothing about anyone.
    return not (address.is_unspecified or address.is_loopback or address.is_link_local)


def mac_ok(value: str) -> bool:
    compact = value.replace("-", ":").lower()
    return compact not in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff")


def _without_extension(value: str) -> str:
    if "x" in value or "X" in value or "#" in value:
        return _EXTENSION.sub("", value)
    return value


def phone_digits(value: str) -> int:
    """Digits of a phone number, its extension left out."""
    return sum(map(str.isdecimal, _without_extension(value)))


def phone_ok(value: str, *, labelled: bool = False) -> bool:
    """A phone number by shape. After a country code it must have a length that country's
    numbers have (from `phonenumbers`' metadata); a national number (the region is unknown)
    must be grouped the way numbers are written, which dates, decimals, ranges, versions
    and timestamps are not. After a phone word (`labelled`) a national number may also be
    one piece of any length or two groups joined by a dot ("Tel. 83417047", "4026.1401")."""
    number = _without_extension(value)
    if ("19" in number or "20" in number) and _DATE.search(number):
        return False
    if number.startswith("+"):
        return _international_ok(number)
    groups = [g for g in _GROUPS.split(number) if g]
    if not all(map(str.isdecimal, groups)):
        return False
    digits = sum(map(len, groups))
    if not 7 <= digits <= 15:
        return False
    if number.startswith("00") and digits >= 10:
        return True  # "00" and a country code; a shorter one is judged as a national number
    if "(" in number or ")" in number:
        return _AREA_CODE.search(number) is not None  # "(212) 555-0147", not "2024 ( 2024"
    if "/" in number and number[0] != "0":
        return False  # "10.1000/182" is a DOI; only "030/1234567" puts a slash in a number
    if len(groups) > 1 and all(len(g) == 4 and g[:2] in ("19", "20") for g in groups):
        return False  # "2019 2020 2021": years
    if len(groups) == 1:
        if labelled:  # but not "reach 1000000 users" nor "mobile app build 20240115"
            return not (number.endswith("0000") or _COMPACT_DATE.fullmatch(number))
        # Unseparated: a NANP number (area code 2-9), with or without its country code 1,
        # or a national number with a trunk 0. Epoch timestamps (1...) and ids fall outside.
        return (digits == 10 and number[0] != "1" and number[:2] != "00") or (
            digits == 11 and (number[:2] in _NANP_WITH_1 or number[0] == "0")
        )
    if min(map(len, groups[1:])) == 1 or max(map(len, groups)) > 8:
        return False  # "978-3-16-148410-0": an ISBN, a part number
    if len(groups) == 2:
        # Two groups: a decimal, a range or a postcode, unless shaped like a local number
        # (555-0132, 9472 7916), a trunk-prefixed one or a long subscriber part.
        if "." in number and not labelled:
            return False
        local = len(groups[1]) == 4 and len(groups[0]) in (3, 4)
        return local or (number[0] == "0" and digits >= 9) or len(groups[1]) >= 6
    return True


@functools.cache
def _national_lengths(country_code: int) -> frozenset[int]:
    """Lengths a national number may have after this country code, from phonenumbers'
    metadata (static, so cached per code; parsing every candidate costs 20 µs)."""
    lengths: set[int] = set()
    for region in phonenumbers.region_codes_for_country_code(country_code):
        if region == "001":
            meta = PhoneMetadata.metadata_for_nongeo_region(country_code)
        else:
            meta = PhoneMetadata.metadata_for_region(region)
        if meta is not None and meta.general_desc is not None:
            lengths.update(meta.general_desc.possible_length or ())
    return frozenset(lengths)


def _international_ok(number: str) -> bool:
    digits = "".join(filter(str.isdecimal, number))
    if not 7 <= len(digits) <= 15:
        return False
    if "(0)" in number:  # "+44 (0)20 ...": the trunk 0 is not dialled from abroad
        digits = "".join(filter(str.isdecimal, number.replace("(0)", "")))
    # Country codes are prefix-free: the first known one is the one.
    for size in (1, 2, 3):
        lengths = _national_lengths(int(digits[:size]))
        if lengths:
            return len(digits) - size in lengths
    return False


def entropy_bits(value: str) -> float:
    """Shannon entropy per character."""
    n = len(value)
    return math.log2(n) - sum(c * math.log2(c) for c in map(value.count, set(value))) / n


def secret_ok(value: str, *, labelled: bool) -> bool:
    """A credential's value. After `password:`-style labels it needs a digit, a symbol,
    mixed case or some length, and must not repeat a character or two ("******"); next to a
    bare word ("my token abc...") only long, mixed, high-entropy strings count."""
    if value.startswith(("<", "$", "{", "%")):  # placeholders and template variables
        return False
    has_digit = any(map(str.isdigit, value))
    if labelled:
        mixed = not value.isalnum() or (value[1:].lower() != value[1:] and value.upper() != value)
        return (has_digit or mixed or len(value) >= 12) and entropy_bits(value) >= 2.5
    classes = has_digit + any(map(str.islower, value)) + any(map(str.isupper, value))
    return len(value) >= 16 and classes >= 2 and has_digit and entropy_bits(value) >= 3.5


def basic_auth_ok(value: str) -> bool:
    """HTTP Basic credentials: base64 of `user:password`."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded
