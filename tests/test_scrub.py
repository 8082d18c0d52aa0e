"""The scrubber: what it finds, what it leaves alone, and how it replaces."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import SecretStr

from benchmarks.scrub_eval import HARD_NEGATIVES
from gateway.config import CustomPattern, ScrubConfig, parse_config
from gateway.errors import ConfigError
from gateway.scrub._rules import card_ok, iban_ok, luhn_ok, phone_ok, ssn_ok
from gateway.scrub.scrubber import Scrubber

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
        ("Tel. +44(0)131 4960979 (office)", "+44(0)131 4960979", "PHONE"),
        ("fr 03.93.92.16.85", "03.93.92.16.85", "PHONE"),
        ("my mobile is +61.3.2008.2619.", "+61.3.2008.2619", "PHONE"),  # no date in it
        ("call +55 22 2010-1953", "+55 22 2010-1953", "PHONE"),
        ("Phone: 0049 7484", "0049 7484", "PHONE"),  # too short for 00 and a country code
        ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111", "CARD"),
        ("card 5500-0000-0000-0004", "5500-0000-0000-0004", "CARD"),
        ("amex 3782 822463 10005.", "3782 822463 10005", "CARD"),
        ("iban DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00", "IBAN"),
        ("iban GB82WEST12345698765432", "GB82WEST12345698765432", "IBAN"),
        ("ssn 460-89-9847", "460-89-9847", "SSN"),
        ("SSN: 460899847", "460899847", "SSN"),
        ("from 106.31.73.20 today", "106.31.73.20", "IP"),
        ("client ip=10.0.3.17 port 443", "10.0.3.17", "IP"),
        ("v6 2001:db8::8a2e:370:7334 x", "2001:db8::8a2e:370:7334", "IP"),
        ("mac 00:1A:2B:3C:4D:5E", "00:1A:2B:3C:4D:5E", "MAC"),
        ("mac AB-1A-2B-3C-4D-5E.", "AB-1A-2B-3C-4D-5E", "MAC"),
        ("key sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H", "sk-proj-4fJx9QmZpL2vT8rKcW1nYb6H", "SECRET"),
        ("sk-ant-api03-abcdefghijklmnopqrstu1", "sk-ant-api03-abcdefghijklmnopqrstu1", "SECRET"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "SECRET"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
         "SECRET"),
        ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij", "SECRET"),
        ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234", "SECRET"),
        ("gkey AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv",
         "SECRET"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
         "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "SECRET"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
         "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "SECRET"),
        ('"-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\nAbC=\\n-----END PRIVATE KEY-----"',
         "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\nAbC=\\n-----END PRIVATE KEY-----", "SECRET"),
        ("cut off: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\nx9",
         "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\nx9", "SECRET"),
        ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234", "SECRET"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "SECRET"),
        ("db password: hunter22x!", "hunter22x!", "SECRET"),
        ("password is Tr0ub4dor&3", "Tr0ub4dor&3", "SECRET"),
        ('{"api_key": "Zx81kLq02mNb77Pq"}', "Zx81kLq02mNb77Pq", "SECRET"),
        ("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "SECRET"),
        ("run it with --token 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "SECRET"),
        ("my api key is Qm9vZ2llV29vZ2llMTIzNDU2", "Qm9vZ2llV29vZ2llMTIzNDU2", "SECRET"),
        ("see https://u.example/x?token=abcdef123456&y=1", "abcdef123456", "SECRET"),
        ("postgres://admin:s3cr3t@db.internal/app", "s3cr3t", "SECRET"),
        ("Dear John Smith,", "John Smith", "PERSON"),
        ("Hi, my name is Maria Lopez.", "Maria Lopez", "PERSON"),
        ("Regards,\nAiko Tanaka", "Aiko Tanaka", "PERSON"),
        ("ask Dr. Becker", "Becker", "PERSON"),
        ("Hi, I'm Maria Lopez.", "Maria Lopez", "PERSON"),
        ("a man named Łukasz Nowak said", "Łukasz Nowak", "PERSON"),
        ("ship to 221 Baker Street.", "221 Baker Street", "ADDRESS"),
        ("We moved to 4890 Bowers View last year", "4890 Bowers View", "ADDRESS"),
        ("date of birth: 12/03/1985", "12/03/1985", "DOB"),
        ("She was born on March 3, 1985.", "March 3, 1985", "DOB"),
    ],
)  # fmt: skip
def test_detects_each_entity(text: str, value: str, entity: str) -> None:
    found = [(text[a:b], e) for a, b, e in SCRUBBER.detect(text)]
    assert (value, entity) in found
    out = scrub(text)
    assert value not in out
    assert f"<{entity}_1>" in out


@pytest.mark.parametrize(
    "text",
    [
        *HARD_NEGATIVES,
        "Card 4111-1111-1111-1112 fails the checksum.",
        "Card 4111 1111 1111 1112 is not a phone either.",
        "SSN 000-12-3456 and 666-12-3456 and 912-12-3456 are never issued.",
        "IBAN DE89 3704 0044 0532 0130 01 has a wrong check digit.",
        "sk-learn-is-a-great-library and task-management-for-the-whole-team",
        "The basic idea: a bearer of good news.",
        "max_tokens=4096, tokens: 100000, password_policy: strict",
        "I am Very Happy with it.",
        "It costs 12.50 EUR; call me maybe.",
        "The campaign should reach 1000000 users by 2025.",
        "The ring buffer holds 1048576 entries; we called it 12000000 times.",
        "The mobile app build 20240115 crashed twice.",
        "<EMAIL_1> wrote to <PHONE_2> about <SECRET_3> and <PERSON_12>.",
    ],
)
def test_leaves_look_alikes_alone(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "ssn"),
    [("SSN: 460899847", True), ("social security no. 460899847", True), ("ref 460899847", False)],
)
def test_nine_bare_digits_are_an_ssn_only_when_labelled(text: str, ssn: bool) -> None:
    assert any(entity == "SSN" for _, _, entity in SCRUBBER.detect(text)) is ssn


@pytest.mark.parametrize("number", ["9487.5749", "83417047", "1805888718", "351739336"])
def test_bare_and_dotted_numbers_are_phones_only_after_a_phone_word(number: str) -> None:
    for text in (f"Tel. {number} (office)", f"You can reach the front desk on {number}."):
        assert scrub(text) == text.replace(number, "<PHONE_1>")
    assert scrub(f"The total was {number} last year.") == f"The total was {number} last year."


@pytest.mark.parametrize(
    "key",
    [
        "rk_live_4fJx9QmZpL2vT8rKcW1n",
        "whsec_4fJx9QmZpL2vT8rKcW1nYb6H",
        "npm_4fJx9QmZpL2vT8rKcW1nYb6H4fJx9QmZpL2v",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "glpat-4fJx9QmZpL2vT8rKcW1n",
        "xai-4fJx9QmZpL2vT8rKcW1nYb6H4fJx9QmZpL2vT8rK",
        "hf_4fJx9QmZpL2vT8rKcW1nYb6H4fJx9Qm",
        "hooks.slack.com/services/T0123ABCD/B0456EFGH/4fJx9QmZpL2vT8rK",
        "ya29.4fJx9QmZpL2vT8rKcW1nYb6H",
        "SG.4fJx9QmZpL2vT8rK.cW1nYb6H4fJx9QmZpL2v",
    ],
)
def test_keys_are_found_by_their_issuers_prefix_and_not_when_glued(key: str) -> None:
    assert scrub(f"use {key} here") == "use <SECRET_1> here"
    assert scrub(f"use x{key} here") == f"use x{key} here"


def test_same_value_same_placeholder_across_request_and_answers() -> None:
    session = SCRUBBER.session()
    request = session.json(
        {"model": "gpt-x", "messages": [{"role": "user", "content": "a@b.co and c@d.co, a@b.co"}]}
    )
    answer = session.text("I wrote to a@b.co.")
    assert request["messages"][0]["content"] == "<EMAIL_1> and <EMAIL_2>, <EMAIL_1>"
    assert answer == "I wrote to <EMAIL_1>."
    assert session.counts == {"EMAIL": 2}


def test_value_found_by_its_context_is_replaced_everywhere() -> None:
    text = "password: Zq81xLm02 and later, again, Zq81xLm02"
    assert scrub(text) == "password: <SECRET_1> and later, again, <SECRET_1>"


def test_answer_echoing_a_value_without_its_context_is_still_scrubbed() -> None:
    session = SCRUBBER.session()
    session.text("Dear Aiko Tanaka, my password: Zq81xLm02")
    assert session.text("Aiko Tanaka used Zq81xLm02.") == "<PERSON_1> used <SECRET_1>."


def test_counts_are_distinct_values_per_entity_and_never_values() -> None:
    session = SCRUBBER.session()
    session.text("a@b.co, c@d.co, a@b.co; call 212 555 0147")
    session.text("again a@b.co")
    assert session.counts == {"EMAIL": 2, "PHONE": 1}


def test_json_keeps_keys_identifiers_and_numbers_and_does_not_mutate() -> None:
    document: dict[str, Any] = {
        "model": "a@b.co",
        "temperature": 0.2,
        "max_tokens": 4111111111111111,
        "messages": [
            {"role": "user", "name": "jane@x.co", "content": "call 212 555 0147"},
            {"role": "tool", "tool_call_id": "call_4155550132", "content": "ok"},
        ],
        "tools": [{"type": "function", "function": {"name": "lookup_4155550132"}}],
        "image": "data:image/png;base64,AKIAIOSFODNN7EXAMPLE",
        "a@b.co": True,
    }
    before = copy.deepcopy(document)
    out = SCRUBBER.session().json(document)
    assert document == before
    assert out["model"] == "a@b.co"
    assert out["max_tokens"] == 4111111111111111
    assert out["messages"][0] == {"role": "user", "name": "<EMAIL_1>", "content": "call <PHONE_1>"}
    assert out["messages"][1] == document["messages"][1]
    assert out["tools"] == document["tools"]
    assert out["image"] == document["image"]
    assert out["a@b.co"] is True


def test_pseudonyms_are_stable_across_requests_and_keyed() -> None:
    keyed = Scrubber(ScrubConfig(pseudonym_key=SecretStr("k1")))
    first = keyed.session().text("a@b.co")
    assert first == keyed.session().text("a@b.co")
    assert (
        first.startswith("<EMAIL_") and first != "<EMAIL_1>" and len(first) == len("<EMAIL_>") + 8
    )
    assert keyed.session().text("c@d.co") != first
    other = Scrubber(ScrubConfig(pseudonym_key=SecretStr("k2")))
    assert other.session().text("a@b.co") != first


def test_custom_patterns_and_allow_list() -> None:
    scrubber = Scrubber(
        ScrubConfig(
            custom=[
                CustomPattern(name="TICKET", pattern=r"TCK-\d{6}"),
                CustomPattern(name="EMPTY", pattern=r"\b"),  # empty matches replace nothing
            ],
            allow=["support@example.com"],
        )
    )
    text = "Ticket TCK-123456, write to support@example.com or me@example.com"
    assert scrubber.session().text(text) == (
        "Ticket <TICKET_1>, write to support@example.com or <EMAIL_1>"
    )


def test_disabled_entity_types_are_left_alone() -> None:
    scrubber = Scrubber(ScrubConfig(disable=["PERSON", "ADDRESS"]))
    text = "Dear John Smith, ship to 221 Baker Street or mail js@example.com"
    assert scrubber.session().text(text) == (
        "Dear John Smith, ship to 221 Baker Street or mail <EMAIL_1>"
    )


@pytest.mark.parametrize(
    ("scrub_config", "where"),
    [
        ({"custom": [{"name": "T", "pattern": "("}]}, "scrub.custom.0.pattern"),
        ({"custom": [{"name": "lower", "pattern": "x"}]}, "scrub.custom.0.name"),
        ({"disable": ["EMAIL", "NAMES"]}, "scrub.disable"),
    ],
)
def test_bad_scrub_config_names_the_entry(scrub_config: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_config({"upstreams": {"production": {"url": "http://p"}}, "scrub": scrub_config})


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (luhn_ok, "4111111111111111", True),
        (luhn_ok, "4111111111111112", False),
        (card_ok, "4111 1111 1111 1111", True),
        (card_ok, "9111 1111 1111 1116", False),  # Luhn-valid, but no card scheme starts with 9
        (card_ok, "0000 0000 0000 0000", False),
        (iban_ok, "GB82 WEST 1234 5698 7654 32", True),
        (iban_ok, "GB82 WEST 1234 5698 7654 33", False),
        (iban_ok, "DE82 WEST 1234 5698 7654 32", False),  # wrong length for Germany
        (ssn_ok, "460-89-9847", True),
        (ssn_ok, "000-89-9847", False),
        (ssn_ok, "460-00-9847", False),
        (ssn_ok, "460-89-0000", False),
        (ssn_ok, "078-05-1120", False),  # the Woolworth wallet card
        (phone_ok, "+1 415 555 0132", True),
        (phone_ok, "+999 1234567", False),  # no such country code
        (phone_ok, "2024-01-15", False),
        (phone_ok, "1700000000", False),  # an epoch timestamp
        (phone_ok, "978-3-16-148410-0", False),  # an ISBN
        (phone_ok, "10.1000/182", False),  # a DOI
    ],
)
def test_validators(check: Any, value: str, expected: bool) -> None:
    assert check(value) is expected
