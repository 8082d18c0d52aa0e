"""Precision and recall of the PII scrubber per entity, on Microsoft Presidio's labelled
synthetic set (shared/data/pii) plus a hand-written set of harmless look-alikes.

    python -m benchmarks.scrub_eval [--data PATH]

A labelled span counts as found when a detection of the same entity overlaps it; a
detection counts as correct when it overlaps a labelled span of its entity. Every detection
on a hard negative is a false positive.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections import Counter
from pathlib import Path

from gateway.config import ScrubConfig
from gateway.scrub import Scrubber

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/pii/synth_dataset_v2.json"
LABELS = {
    "CREDIT_CARD": "CARD",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "PERSON": "PERSON",
    "STREET_ADDRESS": "ADDRESS",
}
STRUCTURED = ("CARD", "PHONE", "EMAIL", "IBAN", "SSN", "IP", "SECRET")

# Harmless text that looks like PII to a careless scanner; nothing here may be replaced.
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
)


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def secret_samples(count: int = 300, seed: int = 3) -> list[tuple[str, str]]:
    """Sentences with one generated secret each, in the shapes providers issue: (text, secret)."""
    rng = random.Random(seed)
    alnum = string.ascii_letters + string.digits
    b64url = alnum + "-_"
    shapes = [
        lambda: "sk-" + _token(rng, alnum, 48),
        lambda: "sk-proj-" + _token(rng, b64url, 56),
        lambda: "sk-ant-api03-" + _token(rng, b64url, 60),
        lambda: "AKIA" + _token(rng, string.ascii_uppercase + string.digits, 16),
        lambda: "ghp_" + _token(rng, alnum, 36),
        lambda: "github_pat_" + _token(rng, alnum + "_", 70),
        lambda: "xoxb-" + _token(rng, string.digits, 12) + "-" + _token(rng, alnum, 24),
        lambda: "sk_live_" + _token(rng, alnum, 24),
        lambda: "AIza" + _token(rng, b64url, 35),
        lambda: (
            "eyJ"
            + _token(rng, b64url, 20)
            + ".eyJ"
            + _token(rng, b64url, 40)
            + "."
            + _token(rng, b64url, 43)
        ),
        lambda: _token(rng, alnum, 32),  # a bare random value: only its label gives it away
    ]
    frames = [
        "Our key is {s}, please rotate it.",
        "export OPENAI_API_KEY={s}",
        'config = {{"api_key": "{s}"}}',
        "Authorization: Bearer {s}",
        "password: {s}",
        "the token={s} expired yesterday",
        "Why does {s} return 401 now?",
    ]
    out = []
    for _ in range(count):
        shape = rng.randrange(len(shapes))
        secret = shapes[shape]()
        frame = rng.choice(frames if shape != len(shapes) - 1 else frames[:6])
        out.append((frame.format(s=secret), secret))
    return out


SECRET_NEGATIVES = (
    "The token: see below for details.",
    "Set password: ******** in the form.",
    "Use the key in the second drawer.",
    "API keys are rotated every 90 days; see docs/security.md.",
    "sk-learn is a common typo for scikit-learn.",
    "The skeleton key opened every door.",
    "Bearer bonds were common in the 1920s.",
    "The secret to a good risotto is patience.",
)


def evaluate_secrets() -> None:
    scrubber = Scrubber(ScrubConfig())
    found = detected = correct = 0
    samples = secret_samples()
    for text, secret in samples:
        start = text.index(secret)
        span = (start, start + len(secret))
        hits = [(a, b) for a, b, e in scrubber.detect(text) if e == "SECRET"]
        detected += len(hits)
        correct += sum(overlaps(span, hit) for hit in hits)
        found += any(overlaps(span, hit) for hit in hits)
    false_positives = sum(
        1 for text in SECRET_NEGATIVES for *_, e in scrubber.detect(text) if e == "SECRET"
    )
    detected += false_positives
    print(f"secrets: {len(samples)} generated in 11 shapes and 7 contexts + "
          f"{len(SECRET_NEGATIVES)} look-alikes: recall {found / len(samples):.3f}, "
          f"precision {correct / detected:.3f}, false positives {false_positives}")  # fmt: skip


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def evaluate(data_path: Path) -> None:
    scrubber = Scrubber(ScrubConfig())
    records = json.loads(data_path.read_text())
    found: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    detections: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for record in records:
        spans = [
            (LABELS[s["entity_type"]], (s["start_position"], s["end_position"]))
            for s in record["spans"]
            if s["entity_type"] in LABELS
        ]
        hits = scrubber.detect(record["full_text"])
        for entity, span in spans:
            labelled[entity] += 1
            if any(e == entity and overlaps(span, (a, b)) for a, b, e in hits):
                found[entity] += 1
        for a, b, entity in hits:
            detections[entity] += 1
            if any(e == entity and overlaps(span, (a, b)) for e, span in spans):
                correct[entity] += 1
    negatives: Counter[str] = Counter()
    for text in HARD_NEGATIVES:
        for _, _, entity in scrubber.detect(text):
            negatives[entity] += 1
            detections[entity] += 1

    print(f"PII scrubber on {data_path.name} ({len(records)} texts) + "
          f"{len(HARD_NEGATIVES)} hard negatives")  # fmt: skip
    header = ("entity", "labelled", "recall", "detected", "precision", "FP on negatives")
    print("{:<10}{:>9}{:>8}{:>10}{:>11}{:>17}".format(*header))
    totals = Counter[str]()
    for entity in (*STRUCTURED, "PERSON", "ADDRESS"):
        n, d = labelled[entity], detections[entity]
        recall = found[entity] / n if n else float("nan")
        precision = correct[entity] / d if d else float("nan")
        print(f"{entity:<10}{n:>9}{recall:>8.3f}{d:>10}{precision:>11.3f}{negatives[entity]:>17}")
        if entity in STRUCTURED:
            totals.update(labelled=n, found=found[entity], detections=d, correct=correct[entity])
    print(
        f"{'structured':<10}{totals['labelled']:>9}{totals['found'] / totals['labelled']:>8.3f}"
        f"{totals['detections']:>10}{totals['correct'] / totals['detections']:>11.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    evaluate(parser.parse_args().data)
    evaluate_secrets()


if __name__ == "__main__":
    main()
