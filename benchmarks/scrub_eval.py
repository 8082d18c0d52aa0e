"""Precision and recall of the PII scrubber per entity on labelled text: Microsoft Presidio's
synthetic set (shared/data/pii), a Faker-generated set in many locales and formats, a set of
secrets in the shapes providers issue, and hard negatives that only look like PII.

    python -m benchmarks.scrub_eval [--data PATH] [--seed N] [--holdout-seed N] [--presidio]

A labelled span is found when a detection of its entity overlaps it, and covered when every
letter and digit of it is inside some detection (nothing leaks). A detection is correct when
it overlaps a labelled span of its entity; on a hard negative it is always wrong. --presidio
scores Presidio's pattern recognizers on the same texts.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import string
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config import ScrubConfig
from gateway.scrub.scrubber import Finding, Scrubber

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/pii/synth_dataset_v2.json"
PRESIDIO_LABELS = {
    "CREDIT_CARD": "CARD", "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN", "US_SSN": "SSN", "IP_ADDRESS": "IP", "MAC_ADDRESS": "MAC",
    "PERSON": "PERSON", "STREET_ADDRESS": "ADDRESS", "DATE_TIME": "DATE",
}  # fmt: skip
# The Presidio set labels a date of birth as DATE_TIME: a DOB found there is right.
ALSO_RIGHT = {"DOB": "DATE"}
STRUCTURED = ("EMAIL", "PHONE", "CARD", "IBAN", "SSN", "IP", "MAC", "DOB", "SECRET")
MODEL_HARD = ("PERSON", "ADDRESS")
Detect = Callable[[str], Iterable[Finding]]


@dataclass
class Sample:
    text: str
    spans: list[Finding] = field(default_factory=list)


def compose(*parts: str | tuple[str, str]) -> Sample:
    """A sample from literal text and (entity, value) pieces, with the values' spans."""
    sample = Sample("")
    for part in parts:
        if isinstance(part, tuple):
            entity, value = part
            sample.spans.append((len(sample.text), len(sample.text) + len(value), entity))
            part = value
        sample.text += part
    return sample


def presidio_set(path: Path) -> list[Sample]:
    records = json.loads(path.read_text(encoding="utf-8"))
    return [
        Sample(
            r["full_text"],
            [
                (s["start_position"], s["end_position"], PRESIDIO_LABELS.get(s["entity_type"], "-"))
                for s in r["spans"]
            ],
        )
        for r in records
    ]


# --- generated sets -----------------------------------------------------------------------
TEMPLATES: dict[str, tuple[str, ...]] = {
    "EMAIL": ("Please write to {} when you can.", "Contact: {}", "cc {} on the thread.",
              "From: Support <{}>", "my address is {}, thanks", "{}"),
    "PHONE": ("Call me at {} after 5pm.", "Phone: {}", "my mobile is {}.", "Tel. {} (office)",
              "You can reach the front desk on {}.", "{} is the number on file."),
    "CARD": ("My card {} was charged twice.", "card number: {}", "Pay with {} exp 04/27.",
             "The refund went to {}.", "{}"),
    "IBAN": ("Please wire it to {}.", "IBAN: {}", "Account {} (business)", "{}"),
    "SSN": ("SSN: {}", "my social security number is {}.", "The form lists {} as the SSN."),
    "IP": ("Requests from {} were blocked.", "ssh admin@{} failed", "client ip={} port 443",
           "{} is the server"),
    "MAC": ("The laptop's MAC is {}.", "ether {} txqueuelen 1000", "device {} joined"),
    "DOB": ("Date of birth: {}", "DOB {}", "She was born on {}.", "birthdate: {}"),
    "PERSON": ("Dear {},", "My name is {}.", "Regards,\n{}", "Hi {}, thanks for the update.",
               "{} will join the call.", "I met {} at the conference."),
    "ADDRESS": ("Ship it to {}.", "Address: {}", "We moved to {} last year.", "{}"),
}  # fmt: skip
LOCALES = ("en_US", "en_GB", "en_CA", "en_AU", "en_IN", "de_DE", "fr_FR", "it_IT", "es_ES",
           "nl_NL", "pt_BR", "sv_SE", "pl_PL")  # fmt: skip
IBAN_LOCALES = ("de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "pl_PL", "pt_PT", "fi_FI")
CARD_TYPES = ("visa16", "visa13", "mastercard", "amex", "discover", "jcb16", "diners", "maestro")


def _card(fake: Any, rng: random.Random) -> str:
    digits: str = fake.credit_card_number(rng.choice(CARD_TYPES))
    style = rng.random()
    sep = " " if style < 0.4 else "-" if style < 0.6 else ""
    if not sep:
        return digits
    groups = (4, 6, 5) if len(digits) == 15 else (4,) * (len(digits) // 4) + (len(digits) % 4,)
    out, at = [], 0
    for size in groups:
        if size:
            out.append(digits[at : at + size])
            at += size
    return sep.join(out)


def _iban(fake: Any, rng: random.Random) -> str:
    value: str = fake.iban()
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def _dob(fake: Any, rng: random.Random) -> str:
    day = fake.date_of_birth(minimum_age=18, maximum_age=90)
    formats = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%B %d, %Y", "%d %B %Y")
    return str(day.strftime(rng.choice(formats)))


def _mac(fake: Any, rng: random.Random) -> str:
    value: str = fake.mac_address()
    return value.upper().replace(":", "-") if rng.random() < 0.3 else value


def faker_set(seed: int, per_locale: int) -> list[Sample]:
    """Values from Faker's providers in many locales, in everyday sentences."""
    faker: Any = importlib.import_module("faker")
    rng = random.Random(seed)
    makers: dict[str, Callable[[Any], str]] = {
        "EMAIL": lambda f: str(rng.choice((f.email, f.free_email, f.company_email))()),
        "PHONE": lambda f: str(f.phone_number()),
        "CARD": lambda f: _card(f, rng),
        "SSN": lambda f: str(f.ssn()),
        "IP": lambda f: str(rng.choice((f.ipv4_public, f.ipv4_private, f.ipv6))()),
        "MAC": lambda f: _mac(f, rng),
        "DOB": lambda f: _dob(f, rng),
        "PERSON": lambda f: str(f.name()),
        "ADDRESS": lambda f: str(f.street_address()),
    }
    samples = []
    for locale in LOCALES:
        fake = faker.Faker(locale)
        fake.seed_instance(seed)
        for entity, make in makers.items():
            if entity == "SSN" and locale != "en_US":
                continue
            for _ in range(per_locale):
                samples.append(_fill(rng, entity, make(fake)))
    for locale in IBAN_LOCALES:
        fake = faker.Faker(locale)
        fake.seed_instance(seed)
        samples.extend(_fill(rng, "IBAN", _iban(fake, rng)) for _ in range(per_locale))
    return samples


def _fill(rng: random.Random, entity: str, value: str) -> Sample:
    before, _, after = rng.choice(TEMPLATES[entity]).partition("{}")
    return compose(before, (entity, value), after)


def _token(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def secret_set(seed: int, count: int) -> list[Sample]:
    """Credentials in the shapes their issuers use, in the places people paste them."""
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits
    b64 = alnum + "+/"
    upper = string.ascii_uppercase + string.digits

    def pem() -> str:
        body = "\n".join(_token(rng, b64, 64) for _ in range(rng.randint(3, 8)))
        kind = rng.choice(("RSA ", "EC ", "OPENSSH ", ""))
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"

    shapes: tuple[Callable[[], str], ...] = (
        lambda: "sk-" + _token(rng, alnum, 48),
        lambda: "sk-proj-" + _token(rng, alnum + "_-", 100),
        lambda: "sk-ant-api03-" + _token(rng, alnum + "_-", 93) + "AA",
        lambda: "AKIA" + _token(rng, upper, 16),
        lambda: "ghp_" + _token(rng, alnum, 36),
        lambda: "github_pat_" + _token(rng, alnum + "_", 82),
        lambda: "xoxb-" + _token(rng, string.digits, 12) + "-" + _token(rng, alnum, 24),
        lambda: "sk_live_" + _token(rng, alnum, 24),
        lambda: "AIza" + _token(rng, alnum + "_-", 35),
        lambda: "glpat-" + _token(rng, alnum + "_-", 20),
        lambda: (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ"
            + _token(rng, alnum, 40)
            + "."
            + _token(rng, alnum + "_-", 43)
        ),
        pem,
    )
    contexts = ("Here is my key: {}", "export TOKEN={}", '{{"api_key": "{}"}}', "use {} for now",
                "OPENAI_API_KEY={}", "{}")  # fmt: skip
    labelled: tuple[tuple[str, Callable[[], str]], ...] = (
        ("password: ", lambda: _token(rng, alnum + "!#%", rng.randint(8, 16))),
        ("DB_PASSWORD=", lambda: _token(rng, alnum, rng.randint(10, 20))),
        ("aws_secret_access_key = ", lambda: _token(rng, b64, 40)),
        ("Authorization: Bearer ", lambda: _token(rng, alnum + "-._", 40)),
        ('"client_secret": "', lambda: _token(rng, alnum, 32)),
        ("https://api.example.com/v1/items?access_token=", lambda: _token(rng, alnum, 32)),
        ("postgres://app:", lambda: _token(rng, alnum, 16)),
        ("--token ", lambda: _token(rng, alnum, 32)),
    )
    samples = []
    for _ in range(count):
        before, _, after = rng.choice(contexts).partition("{}")
        samples.append(compose(before, ("SECRET", rng.choice(shapes)()), after))
        label, make = rng.choice(labelled)
        tail = "@db.internal:5432/app" if label.startswith("postgres") else ""
        samples.append(compose(label, ("SECRET", make()), tail))
    return samples


HARD_NEGATIVES = (
    "Order #48213 shipped on 2024-01-15 10:30:00 UTC, tracking 1Z999AA10123456784.",
    "Upgrade from version 1.2.3 to 2.10.4; see release 3.4.5.6 notes.",
    "Request id 550e8400-e29b-41d4-a716-446655440000 failed after 1500 ms.",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it; parent 9fceb02.",
    "const MASK = 0x7fffffff; const SEED = 0xdeadbeefcafebabe;",
    "The price went from $1,299.99 to $1,099.00 (save 15%).",
    "Invoice 2023-0042 totals 12 500 EUR, due 30/04/2024.",
    "Timestamps: 1700000000, 1700000123; epoch ms 1699999999999.",
    "Use port 8080 and 443; the range is 1024-65535.",
    "Population grew from 1,234,567 to 2,345,678 between 2010 and 2020.",
    "Call the function with max_tokens=256 and temperature 0.7.",
    "The ISBN is 978-3-16-148410-0 and the DOI is 10.1000/182.",
    "Dimensions: 1920x1080 at 60 Hz, 3840x2160 at 30 Hz.",
    "Meeting at 10:30-11:45 in room 4.21, building B.",
    "Hi there, Dear Team, hello World: token: see below, password: ******.",
    "Account tier: gold; plan id plan_monthly_2024; sku ABC-12345-XYZ.",
    "GPS 48.8584, 2.2945 and elevation 330 m.",
    "Build 20240115.3 passed 1432 of 1433 tests in 00:12:45.",
    "Matrix [[1, 2, 3], [4, 5, 6]] has determinant 0.",
    "The year 1999 had 365 days and 52 weeks.",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "docker pull nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
    "arn:aws:iam::123456789012:role/deploy and arn:aws:s3:::my-bucket/key.txt",
    "pod api-7d9f8c6b5-x2v9q restarted 3 times; node ip-10-0-3-17.ec2.internal",
    "std::vector<int> v; std::map<std::string, int> m; a::b::c();",
    'Traceback (most recent call last): File "main.py", line 123, in <module>',
    "The color is #ff00aa and the fallback is rgb(255, 0, 170).",
    "Lat/long 40.7128, -74.0060; bearing 270 degrees.",
    "Progress: 45/120 files, 1.5 GB of 3.2 GB, ETA 00:04:13.",
    "HTTP/1.1 200 OK, Content-Length: 348, Date: Mon, 27 Jul 2009 12:28:53 GMT",
    "np.random.seed(42); x = np.linspace(0, 10, 1000); y = np.sin(x) * 2.5",
    "SELECT * FROM orders WHERE id IN (1001, 1002, 1003) AND total > 99.95;",
    "The tokenizer splits text into tokens; the key idea is attention.",
    "In chapter 12 the key points are on pages 233-245 and 250-261.",
    "Step 1: open the app. Step 2: tap Settings. Step 3: choose Privacy.",
    "Model gpt-4o-2024-08-06 and claude-3-5-sonnet-20241022 were compared.",
    "The password policy requires 12 characters; the secret sauce is consistency.",
    "Score: 98.7%, F1 0.912, AUC 0.9534, n = 12,408 samples.",
    "Version string 10.0.19045.3803 and kernel 6.5.0-1014-azure.",
    "UUIDs: 123e4567-e89b-12d3-a456-426614174000, 00000000-0000-0000-0000-000000000000",
    "base64 of hello world is aGVsbG8gd29ybGQ= and of foo is Zm9v.",
    "Serial numbers SN-2024-000123 through SN-2024-000199 are affected.",
    "The ticket JIRA-4821 links PR #1234 and issue 5678.",
    "Reading: 1013.25 hPa, 21.5 C, humidity 45 %, wind 12 km/h.",
    "Call stack depth 128, heap 512 MB, threads 16, fds 1024.",
    "Results for 2019 2020 2021 2022 2023 are in table 4.",
    "The IBAN field was left empty and the card on file expired.",
    "localhost 127.0.0.1 and ::1 and 0.0.0.0 are loopback or unspecified.",
    "Hello World, Hi All, Dear Sir or Madam, Thanks, Team",
    "Use the key: value format, for example colour: blue and size: large.",
)


def negative_set(seed: int, count: int) -> list[Sample]:
    """Hand-written look-alikes plus generated identifiers, hashes, times and numbers."""
    rng = random.Random(seed)
    hexdigits = "0123456789abcdef"
    makers: tuple[Callable[[], str], ...] = (
        lambda: f"request {uuid.UUID(int=rng.getrandbits(128))} failed",
        lambda: f"commit {_token(rng, hexdigits, 40)}",
        lambda: f"checksum {_token(rng, hexdigits, 64)}",
        lambda: (
            f"at {rng.randint(2000, 2030)}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}"
            f"T{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:{rng.randint(0, 59):02}Z"
        ),
        lambda: f"epoch {rng.randint(1_500_000_000, 1_800_000_000)}",
        lambda: f"v{rng.randint(0, 20)}.{rng.randint(0, 40)}.{rng.randint(0, 99)}",
        lambda: f"total ${rng.randint(1, 99_999):,}.{rng.randint(0, 99):02}",
        lambda: f"order {rng.randint(10_000, 99_999_999)} shipped",
        lambda: f"ORD-{rng.randint(2015, 2030)}-{rng.randint(0, 999_999):06}",
        lambda: f"line {rng.randint(1, 9999)}, column {rng.randint(1, 200)}",
        lambda: f"{rng.randint(1, 9999)} of {rng.randint(1, 9999)} items",
    )
    samples = [Sample(text) for text in HARD_NEGATIVES]
    samples.extend(Sample(rng.choice(makers)()) for _ in range(count))
    return samples


# --- scoring ------------------------------------------------------------------------------
@dataclass
class Tally:
    labelled: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    covered: Counter[str] = field(default_factory=Counter)
    detected: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        for name in ("labelled", "found", "covered", "detected", "correct"):
            getattr(self, name).update(getattr(other, name))

    def add(self, samples: Sequence[Sample], detect: Detect) -> None:
        for sample in samples:
            hits = list(detect(sample.text))
            for a, b, entity in sample.spans:
                self.labelled[entity] += 1
                if any(e == entity and a < hb and ha < b for ha, hb, e in hits):
                    self.found[entity] += 1
                if all(
                    any(ha <= i < hb for ha, hb, _ in hits)
                    for i in range(a, b)
                    if sample.text[i].isalnum()
                ):
                    self.covered[entity] += 1
            for ha, hb, entity in hits:
                self.detected[entity] += 1
                right = (entity, ALSO_RIGHT.get(entity))
                if any(e in right and a < hb and ha < b for a, b, e in sample.spans):
                    self.correct[entity] += 1


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def report(title: str, tally: Tally, entities: Sequence[str]) -> None:
    print(f"\n{title}")
    print(
        f"{'entity':<10}{'labelled':>9}{'recall':>8}{'covered':>9}{'detected':>9}{'precision':>10}"
    )
    rows = [e for e in entities if tally.labelled[e] or tally.detected[e]]
    if not rows:
        print("(nothing detected)")
    for entity in rows:
        n, d = tally.labelled[entity], tally.detected[entity]
        print(
            f"{entity:<10}{n:>9}{_ratio(tally.found[entity], n):>8}"
            f"{_ratio(tally.covered[entity], n):>9}{d:>9}{_ratio(tally.correct[entity], d):>10}"
        )
    group = [e for e in rows if e in STRUCTURED]
    if len(group) > 1:
        n = sum(tally.labelled[e] for e in group)
        d = sum(tally.detected[e] for e in group)
        found = sum(tally.found[e] for e in group)
        covered = sum(tally.covered[e] for e in group)
        correct = sum(tally.correct[e] for e in group)
        print(
            f"{'structured':<10}{n:>9}{_ratio(found, n):>8}{_ratio(covered, n):>9}{d:>9}"
            f"{_ratio(correct, d):>10}"
        )


def presidio_detector() -> Detect | None:
    """Presidio's analyzer with its pattern recognizers only (no spaCy model can be had
    here, so its NLP engine is the no-op one), mapped to this scrubber's entity names."""
    try:
        analyzer: Any = importlib.import_module("presidio_analyzer")
        nlp: Any = importlib.import_module("presidio_analyzer.nlp_engine")
        tldextract: Any = importlib.import_module("tldextract")
    except ImportError:
        return None
    # Presidio's email validator would fetch the public suffix list; use tldextract's snapshot.
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())
    engine = analyzer.AnalyzerEngine(
        nlp_engine=nlp.NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]),
        supported_languages=["en"],
    )

    def detect(text: str) -> list[Finding]:
        results = engine.analyze(text, language="en")
        return [
            (r.start, r.end, PRESIDIO_LABELS[r.entity_type])
            for r in results
            if r.entity_type in PRESIDIO_LABELS
        ]

    return detect


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=7, help="generated sets, seen while tuning")
    parser.add_argument("--holdout-seed", type=int, default=2027, help="a Faker set not tuned on")
    parser.add_argument("--per-locale", type=int, default=12)
    parser.add_argument("--presidio", action="store_true", help="also score Presidio")
    args = parser.parse_args()

    sets: dict[str, list[Sample]] = {"Presidio synthetic set": presidio_set(args.data)}
    try:
        sets["Faker set"] = faker_set(args.seed, args.per_locale)
        sets["Faker set, held out"] = faker_set(args.holdout_seed, args.per_locale)
    except ImportError:
        print("(Faker is not installed: pip install -e '.[bench]' for the generated set)")
    sets["secrets"] = secret_set(args.seed, 300)
    sets["hard negatives"] = negative_set(args.seed, 1000)

    detectors: dict[str, Detect] = {"shadowgate": Scrubber(ScrubConfig()).detect}
    if args.presidio:
        presidio = presidio_detector()
        if presidio is None:
            print("(presidio-analyzer is not installed: pip install -e '.[bench]')")
        else:
            detectors["Presidio pattern recognizers"] = presidio
    entities = (*STRUCTURED, *MODEL_HARD)
    for name, detect in detectors.items():
        overall = Tally()
        print(f"\n===== {name} =====")
        for title, samples in sets.items():
            tally = Tally()
            tally.add(samples, detect)
            overall.merge(tally)
            report(f"{title} ({len(samples)} texts)", tally, entities)
        report("all sets together", overall, entities)


if __name__ == "__main__":
    main()
