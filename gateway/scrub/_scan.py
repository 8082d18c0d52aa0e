"""The scan over digits and capitals: cards, phones, SSNs, IPv4 addresses, IBANs, street lines
and names after a cue, as findings `(start, end, entity)`. Python's `re` skips ahead in C only
behind a literal or a character class, and a class costs a few ns a character, so all of
these share one scan that opens with one class; validators see only what it yields."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from gateway.scrub._rules import (
    card_ok,
    iban_ok,
    ip_ok,
    phone_digits,
    phone_ok,
    ssn_ok,
)

Finding = tuple[int, int, str]

WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _alternation(words: Iterable[str]) -> str:
    """An alternation grouped by first character: sre tests one literal per group instead
    of one per word."""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(re.escape(word[1:]))
    return "|".join(
        re.escape(first) + "(?:" + "|".join(sorted(rests, key=len, reverse=True)) + ")"
        for first, rests in by_first.items()
    )


def _after_first(words: Iterable[str]) -> str:
    """An alternation for a scan whose opening class already matched the first character:
    grouped by the second character, so sre skips a group on one literal test, and each word
    confirmed by a lookbehind over the whole of it."""
    by_second: dict[str, list[str]] = {}
    for word in sorted(words, key=len, reverse=True):
        by_second.setdefault(word[1], []).append(re.escape(word[2:]) + f"(?<={re.escape(word)})")
    return "|".join(f"{re.escape(c)}(?:{'|'.join(rests)})" for c, rests in by_second.items())


# A cue followed by a capitalised name; weak cues ("I am", "This is") need a first and last
# name. Capitalised cues share the scan for numbers below; lowercase ones have patterns of
# their own.
_CUES: Final = tuple(
    "Dear|Hi|Hello|Hey|My name is|Name:|Name is|Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Regards,|Best regards,|"
    "Kind regards,|Warm regards,|Sincerely,|Thanks,|Thank you,|Cheers,|Best,|Yours,|Yours truly,|"
    "Signed,|Attn:|Attention:|Patient:|Customer:".split("|")
)
_WEAK_CUES: Final = ("I'm", "I am", "This is")
_UPPER: Final = "A-ZÀ-ÖØ-ÞĀ-ž"
_LOWER: Final = "a-zß-öø-ÿĀ-ž"
_NAME_WORD: Final = rf"[{_UPPER}][{_LOWER}]+(?:[-'][{_UPPER}]?[{_LOWER}]+)?"
# Up to three words, with a middle initial allowed: "Faina D. Yefremova".
_FULL_NAME: Final = rf"{_NAME_WORD}(?:[ \t](?:[A-Z]\.[ \t])?{_NAME_WORD}){{0,2}}"
_NAME: Final = rf"[.,]?[ \t]*\n?[ \t]*(?P<name>{_FULL_NAME})"
# Lowercase cues, one pattern each, so that sre skips ahead to the literal.
_LOWER_CUES: Final = tuple(
    re.compile(cue + _NAME) for cue in (r"name(?:\ is|:|d(?=[ \t]))", "called", "regards,")
)
_WEAK: Final = frozenset({"i'm", "i am", "this is", "named", "called"})
_NOT_NAMES: Final = frozenset(
    "There All Team Everyone Everybody Sir Madam Again Folks World The This That It We You Please "
    "Thanks Thank Guys Customer Customers Friend Friends Colleagues Support Hiring Here Just Not "
    "Sure Sorry Happy Glad Good Morning Afternoon Evening Sales Admin Manager User Assistant Bot "
    "How What Can Could Would Is Are Do Does Will Ok Okay Yes No Very Really So Also Still Back "
    "Done Ready Available".split()
)


# --- one scan: cards, phones, SSNs, IPv4, IBANs, street lines, names after a cue ---------
_STREET_SUFFIXES: Final = tuple(
    "Street St Avenue Ave Road Rd Boulevard Blvd Lane Ln Drive Dr Court Ct Way Place Pl Terrace "
    "Ter Parkway Pkwy Square Sq Circle Cir Highway Hwy Crescent Close Grove Gardens Row Trail "
    "Loop Alley Plaza Mews Hill Hills Park Heights Expressway Freeway Ridge Port Ports Knoll "
    "Knolls Union View Views Village Station Crossing Estate Estates Falls Field Fields Forest "
    "Fork Forks Glen Green Harbor Haven Island Junction Landing Manor Meadow Meadows Mill Mills "
    "Mission Orchard Pass Pines Plains Point Points Prairie Ranch Rapids Shore Shores Spring "
    "Springs Summit Turnpike Vista Walk Wells Wood Woods Brook Brooks Bypass Canyon Cape Causeway "
    "Cliff Cliffs Common Corner Corners Cove Coves Creek Dale Divide Extension Ferry Flat Flats "
    "Ford Fords Fort Garden Gateway Hollow Inlet Isle Lake Lakes Light Lights Lock Locks Lodge "
    "Mall Mount Mountain Neck Oval Overpass Path Pike Plain Radial Ramp Route Run Shoal Shoals "
    "Skyway Spur Stream Stravenue Track Trafficway Tunnel Underpass Valley Valleys Viaduct Ville "
    "Ways Well".split()
)
_CUE_LETTERS: Final = "".join(sorted({cue[0] for cue in (*_CUES, *_WEAK_CUES)}))
# One scan finds numbers and capitalised name cues. Every candidate starts at a digit, '+',
# '(' or a cue's capital, never right after a digit. The pattern opens with exactly that
# class, so sre jumps between those characters in C (a character class costs a few ns per
# character, so one shared scan is worth its length); a branch that needs a particular first
# character re-reads it through a lookbehind or opens with a class sre tests before entering
# it. A trailing empty group names the branch.
_SCAN: Final = re.compile(
    rf"""[0-9+({_CUE_LETTERS}](?<![0-9]{{2}})(?:
        # an IBAN from its check digits on; its country code comes before the match
        [0-9](?<=[A-Za-z]{{2}}[0-9]{{2}})(?:\ ?[A-Za-z0-9]{{4}}){{2,7}}(?:\ ?[A-Za-z0-9]{{1,3}})?
            (?![A-Za-z0-9])(?P<iban>)
        # a street line: house number(s), up to four words, a street suffix
      | (?<=[0-9])[0-9]{{0,5}}+(?:\ [0-9]{{1,5}}+)?[A-Za-z]?,?[ ]
            (?:(?:[A-Z][a-z]+|[0-9]{{1,3}}(?:st|nd|rd|th)|[NSEW])\.?\ ){{1,4}}
            (?:{_alternation(_STREET_SUFFIXES)})\b(?P<address>)
        # a run of digits and separators: one or more cards, phones, SSNs, IPv4 addresses
      | (?<=[0-9+(])[0-9\ .()/+-]{{4,}}[0-9]
            (?:\ ?(?:x|ext\.?)\ ?[0-9]{{1,5}}\b)?(?P<run>)
        # a capitalised cue and the name after it
      | (?<=[A-Z])(?:{_after_first((*_CUES, *_WEAK_CUES))}){_NAME}(?P<person>)
    )""",
    re.VERBOSE,
)

# A number glued to these belongs to an identifier, an amount or a version ("v1.2", "#4821"),
# as does one after a digit and a colon (a time, an IPv6 address).
_GLUE_BEFORE: Final = frozenset(WORD_CHARS | set(".-/#$€£¥"))
# The word before a number that makes it an identifier, unless a PII word is near.
_ID_WORDS: Final = frozenset(
    "order invoice id ref ticket tracking build version release sku port isbn step pid uid commit "
    "line page no #".split()
)
_PII_WORDS: Final = ("card", "phone", "tel", "mobile", "cell", "fax", "call", "ssn", "social")
# Words that make the number after them a phone number, looked for among the five words
# before it (the window Presidio's context enhancer uses too).
_PHONE_WORDS: Final = re.compile(
    r"(?:phone|telephon|telefon|téléphon|mobil|móvil|cell|celular|call|reach|contact"
    r"|whatsapp|(?:tel|tél|tlf|fax|sms|mob|dial)\b)"
)
_IPV4: Final = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SSN: Final = re.compile(r"\d{3}-\d{2}-\d{4}|\d{3}\ \d{2}\ \d{4}")  # escaped: used verbose
_CARD: Final = re.compile(r"\d(?:[ -]?\d){11,18}")
# What a whole run is written like, in one test.
_SHAPE: Final = re.compile(
    rf"""(?P<date>\d{{4}}-\d\d-\d\d(?:\ \d\d)?|\d\d?(?P<ds>[./-])\d\d?(?P=ds)\d{{4}})
      | (?P<ip>{_IPV4.pattern})
      | (?P<ssn>{_SSN.pattern})
      | (?P<card_layout>\d{{4}}(?P<cs>[\ -])\d{{4}}(?P=cs)\d{{4}}(?P=cs)\d{{1,7}}
            |\d{{4}}(?P<as>[\ -])\d{{6}}(?P=as)\d{{5}}|\d{{13,19}})
      | (?P<card>{_CARD.pattern})""",
    re.VERBOSE,
)
_CHUNK: Final = re.compile(r"\S+")
_MAX_CHUNKS: Final = 24
_HOUSE_NUMBER_AFTER: Final = re.compile(r",?\ [A-Z][a-z]")


def scan(text: str) -> Iterator[Finding]:
    """Numbers of every kind, street lines and names after a cue."""
    search = _SCAN.search
    match = search(text)
    while match:
        start, end = match.span()
        kind = match.lastgroup
        if kind == "person":
            yield from _person(text, match)
            end = match.end("name")
        elif kind == "iban":
            begin = start - 2
            if begin == 0 or text[begin - 1] not in WORD_CHARS:
                if iban_ok(text[begin:end]):  # written like an IBAN: an IBAN or nothing
                    yield begin, end, "IBAN"
            else:
                end = start + 1  # inside a word ("xLm02 4111..."): the digits may be a card
        elif kind == "address":
            if start and (text[start - 1] in WORD_CHARS or text[start - 1] == ":"):
                # The first number ends something else ("...:7334 221 Baker Street").
                match = _SCAN.match(text, text.find(" ", start) + 1)
                if match is None or match.lastgroup != "address":
                    match = search(text, end)
                    continue
                start, end = match.span()
            yield start, end, "ADDRESS"
        elif end - start >= 7:
            yield from _run(text, start, end)
        match = search(text, end)
    for cue in _LOWER_CUES:  # capitalised cues were matched above
        for match in cue.finditer(text):
            yield from _person(text, match)


def _run(text: str, start: int, end: int) -> Iterator[Finding]:
    value = text[start:end]
    if start and (
        text[start - 1] in _GLUE_BEFORE
        or (text[start - 1] == ":" and text[start - 2 : start - 1].isdigit())
    ):
        cut = value.find(" ")  # the first chunk belongs to what it is glued to
        if cut < 0:
            return
        start, value = start + cut + 1, value[cut + 1 :]
    if end < len(text) and (text[end] in WORD_CHARS or text[end] == ":"):
        cut = value.rfind(" ")  # "1500ms", "3f78...", "10:30": the last chunk is not a number
        if cut < 0:
            return
        value = value[:cut]
    elif _HOUSE_NUMBER_AFTER.match(text, end):
        cut = value.rfind(" ")  # "... 0958 221 Baker Street": the last chunk is a house number
        street = _SCAN.match(text, start + cut + 1) if cut > 0 else None
        if street and street.lastgroup == "address":
            yield street.start(), street.end(), "ADDRESS"
            value = value[:cut]
    value = value.rstrip(" .(-/+")
    if len(value) < 7:
        return
    shape = _SHAPE.fullmatch(value)
    if shape and shape.lastgroup == "date":
        return
    window = text[max(0, start - 24) : start].lower()
    # Context ends at a placeholder: "<PHONE_1> order 460-89-9847" has no phone label.
    window = window[window.rfind(">") + 1 :]
    before = window.rstrip(" \t:.-=(")
    last_word = before[before.rfind(" ") + 1 :].lstrip("([{\"'")
    if last_word in _ID_WORDS and not any(word in window for word in _PII_WORDS):
        cut = value.find(" ")  # "order 48213 ...": the first number is an identifier
        if cut < 0:
            return
        start, value = start + cut + 1, value[cut + 1 :]
        shape = _SHAPE.fullmatch(value)
    if len(value) > 40:  # longer than any one value: several, or a table
        yield from _split_run(start, value)
        return
    kind = shape.lastgroup if shape else None
    end = start + len(value)
    if kind == "date":
        return
    if kind == "ip":
        if ip_ok(value):
            yield start, end, "IP"
    elif kind == "ssn" or (len(value) == 9 and ("ssn" in window or "social" in window)):
        # Written like an SSN, so an SSN or nothing: "666-12-3456" is no phone.
        if ssn_ok(value):
            yield start, end, "SSN"
    elif kind == "card_layout":
        # Written like a card, so a card or nothing: "4111 1111 1111 1112" is no phone.
        if card_ok(value):
            yield start, end, "CARD"
    elif kind == "card" and card_ok(value):
        yield start, end, "CARD"
    elif _HOUSE_NUMBER_AFTER.match(text, end) and phone_digits(value) <= 8:
        return  # "370 3911 Skogstien": a building and a house number
    elif phone_ok(value) or (_after_phone_word(text, start) and phone_ok(value, labelled=True)):
        yield start, end, "PHONE"
    else:
        yield from _split_run(start, value)


def _after_phone_word(text: str, start: int) -> bool:
    before = text[max(0, start - 64) : start]
    words = before[before.rfind(">") + 1 :].lower().split()[-5:]  # context ends at a placeholder
    return any(_PHONE_WORDS.match(word.lstrip("([{\"'")) for word in words)


def _split_run(start: int, value: str) -> Iterator[Finding]:
    """A run of several values: SSNs, IPs and cards stand alone, phones lie between them."""
    chunks = [m.span() for m in _CHUNK.finditer(value)]
    if len(chunks) > _MAX_CHUNKS:
        yield from _table(start, value, chunks)
        return
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
        i += 1
        if entity is None:
            continue
        yield from _phones(start + segment, value[segment:a])
        yield start + a, start + b, entity
        segment = b
    yield from _phones(start + segment, value[segment:])


def _table(start: int, value: str, chunks: list[tuple[int, int]]) -> Iterator[Finding]:
    # A long run of numbers is a table or a list: only values written in one piece count,
    # which keeps the work per character small on a megabyte of digits and spaces.
    for a, b in chunks:
        piece = value[a:b]
        if len(piece) < 7:
            continue
        if _SSN.fullmatch(piece):
            entity = "SSN" if ssn_ok(piece) else None
        elif _IPV4.fullmatch(piece):
            entity = "IP" if ip_ok(piece) else None
        elif _CARD.fullmatch(piece):
            entity = "CARD" if card_ok(piece) else None
        else:
            entity = "PHONE" if phone_ok(piece) else None
        if entity:
            yield start + a, start + b, entity


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


def _phones(offset: int, value: str) -> Iterator[Finding]:
    """Phone numbers in a stretch that may hold several in a row (`905-674-3793 07700 063
    966`): short chunks are joined while they fit one number, a chunk that is a number by
    itself stands alone unless it completes the chunks before it ("(212) 555-0147"), and a
    chunk without digits ("-") separates."""
    value = value.rstrip()
    if len(value) < 7:
        return
    if phone_ok(value):
        yield offset, offset + len(value), "PHONE"
        return
    run: list[tuple[int, int]] = []
    for chunk in (*_CHUNK.finditer(value), None):
        digits = phone_digits(chunk.group()) if chunk is not None else 0
        if chunk is not None and 0 < digits < 7:
            if run and phone_digits(value[run[0][0] : chunk.end()]) > 15:
                yield from _close(offset, value, run)
            run.append(chunk.span())
            continue
        if chunk is not None and run and digits and phone_ok(value[run[0][0] : chunk.end()]):
            yield offset + run[0][0], offset + chunk.end(), "PHONE"
            run.clear()
            continue
        yield from _close(offset, value, run)
        if chunk is not None and digits and phone_ok(chunk.group()):
            yield offset + chunk.start(), offset + chunk.end(), "PHONE"


def _close(offset: int, value: str, run: list[tuple[int, int]]) -> Iterator[Finding]:
    # The whole run, else without its last or its first chunk, which may belong to the
    # neighbour ("+44 20 7946 0958 00:1A:..."); a bounded number of tries keeps it linear.
    for a, b in ((0, len(run)), (0, len(run) - 1), (1, len(run))):
        if b - a > 0 and phone_ok(value[run[a][0] : run[b - 1][1]]):
            yield offset + run[a][0], offset + run[b - 1][1], "PHONE"
            break
    run.clear()


def _person(text: str, match: re.Match[str]) -> Iterator[Finding]:
    start = match.start()
    if start and text[start - 1].isalpha():
        return
    words = match.group("name").split()
    if words[0] in _NOT_NAMES:
        return
    cue = text[start : match.start("name")].strip(" \t\n.,").lower()
    if cue in _WEAK and len(words) < 2:
        return
    yield match.start("name"), match.end("name"), "PERSON"
