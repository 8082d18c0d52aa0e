"""The scrubber: what it finds, what it leaves alone, and how it replaces."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from gateway.config import CustomPattern, ScrubConfig
from gateway.scrub import Scrubber

SCRUBBER = Scrubber(ScrubConfig())


def scrub(text: str) -> str:
    return SCRUBBER.session().text(text)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("mail jane.doe+x@mail.example.co.uk now", "jane.doe+x@mail.example.co.uk", "EMAIL"),
        ("call +1 415 555 0132 today", "+1 415 555 0132", "PHONE"),
        ("call (212) 555-0147.", "(212) 555-0147", "PHONE"),
        ("my mobile is 07700 900123", "07700 900123", "PHONE"),
        ("ring 9498777106", "9498777106", "PHONE"),
        ("ext 345-899-3560x4587 ok", "345-899-3560x4587", "PHONE"),
        ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111", "CARD"),
        ("card 5500-0000-0000-0004", "5500-0000-0000-0004", "CARD"),
        ("iban DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("iban GB82WEST12345698765432", "GB82WEST12345698765432", "IBAN"),
        ("ssn 460-89-9847", "460-89-9847", "SSN"),
        ("from 106.31.73.20 today", "106.31.73.20", "IP"),
        ("v6 2001:db8::8a2e:370:7334 x", "2001:db8::8a2e:370:7334", "IP"),
        ("mac 00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5E", "MAC"),
        ("key sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H", "sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H", "SECRET"),
        ("anthropic sk-ant-api03-abcdefghijklmnopqrstu", "sk-ant-api03-abcdefghijklmnopqrstu",
         "SECRET"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "SECRET"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
         "SECRET"),
        ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij", "SECRET"),
        ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234", "SECRET"),
        ("gkey AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv",
         "SECRET"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "SECRET"),
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234", "SECRET"),
        ("db password: hunter22x!", "hunter22x!", "SECRET"),
        ('{"api_key": "Zx81kLq02mNb77Pq"}', "Zx81kLq02mNb77Pq", "SECRET"),
        ("see https://u.example/x?token=abcdef123456&y=1", "abcdef123456", "SECRET"),
        ("postgres://admin:s3cr3t@db.internal/app", "postgres://admin:s3cr3t@", "URL_CREDENTIALS"),
        ("Dear John Smith,", "John Smith", "PERSON"),
        ("Hi, my name is Maria Lopez.", "Maria Lopez", "PERSON"),
        ("Regards,\nAiko Tanaka", "Aiko Tanaka", "PERSON"),
        ("ask Dr. Becker", "Becker", "PERSON"),
        ("ship to 221 Baker Street.", "221 Baker Street", "ADDRESS"),
        ("date of birth: 12/03/1985", "12/03/1985", "DOB"),
    ],
)  # fmt: skip
def test_detects_each_entity(text: str, value: str, entity: str) -> None:
    found = [(text[a:b], e) for a, b, e in SCRUBBER.detect(text)]
    assert (value, entity) in found
    assert value not in scrub(text)


@pytest.mark.parametrize(
    "text",
    [
        "Order #48213 shipped on 2024-01-15 10:30:00 UTC.",
        "Upgrade from version 1.2.3 to 2.10.4; release 3.4.5.6.",
        "Request id 550e8400-e29b-41d4-a716-446655440000 failed after 1500 ms.",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",
        "const MASK = 0x7fffffff;",
        "The price went from $1,299.99 to $1,099.00.",
        "Timestamps 1700000000 and 1699999999999.",
        "Use ports 8080 and 443; the range is 1024-65535.",
        "Card 4111-1111-1111-1112 fails the checksum.",
        "SSN 000-12-3456 and 666-12-3456 are never issued.",
        "Hi there, Dear Team, token: see below, password: ******.",
        "Loopback 127.0.0.1 and ::1 and 0.0.0.0 say nothing about anyone.",
    ],
)
def test_leaves_look_alikes_alone(text: str) -> None:
    assert scrub(text) == text


def test_same_value_same_placeholder_across_request_and_answers() -> None:
    session = SCRUBBER.session()
    request = session.json(
        {"model": "gpt-x", "messages": [{"role": "user", "content": "a@b.co and c@d.co, a@b.co"}]}
    )
    answer = session.text("I wrote to a@b.co.")
    assert request["messages"][0]["content"] == "<EMAIL_1> and <EMAIL_2>, <EMAIL_1>"
    assert answer == "I wrote to <EMAIL_1>."
    assert session.counts == {"EMAIL": 2}


def test_json_keeps_keys_identifiers_and_numbers() -> None:
    document: dict[str, Any] = {
        "model": "a@b.co",
        "temperature": 0.2,
        "max_tokens": 4111111111111111,
        "messages": [{"role": "user", "content": "call 212 555 0147", "name": "bob"}],
        "tools": [{"type": "function", "function": {"name": "lookup"}}],
        "a@b.co": True,
    }
    out = SCRUBBER.session().json(document)
    assert out["model"] == "a@b.co"
    assert out["max_tokens"] == 4111111111111111
    assert out["messages"][0]["content"] == "call <PHONE_1>"
    assert out["tools"] == document["tools"]
    assert out["a@b.co"] is True
    assert document["messages"][0]["content"] == "call 212 555 0147"


def test_pseudonyms_are_stable_across_requests_and_keyed() -> None:
    keyed = Scrubber(ScrubConfig(pseudonym_key=SecretStr("k1")))
    first = keyed.session().text("a@b.co")
    assert first == keyed.session().text("a@b.co")
    assert first.startswith("<EMAIL_") and first != "<EMAIL_1>"
    other = Scrubber(ScrubConfig(pseudonym_key=SecretStr("k2")))
    assert other.session().text("a@b.co") != first


def test_custom_patterns_and_allow_list() -> None:
    scrubber = Scrubber(
        ScrubConfig(
            custom=[CustomPattern(name="TICKET", pattern=r"TCK-\d{6}")],
            allow=["support@example.com"],
        )
    )
    text = "Ticket TCK-123456, write to support@example.com or me@example.com"
    assert scrubber.session().text(text) == (
        "Ticket <TICKET_1>, write to support@example.com or <EMAIL_1>"
    )
