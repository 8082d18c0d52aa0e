"""Speed of the PII scrubber on realistic prompts of 200 B, 2 KB and 32 KB, side by side in one
run with Microsoft Presidio's analyzer and anonymizer on its pattern recognizers.

    python -m benchmarks.scrub_speed [--quick]

Prompts are chat traffic: instructions, support messages (about one in three carries PII:
names, emails, phones, cards, addresses), code, logs and JSON tool output. Presidio runs with
its no-op NLP engine, as no spaCy model can be downloaded here, so only its pattern
recognizers work: its fastest path. It is timed twice, with every recognizer it loads for
English and with only those for the entities both tools detect. Prints medians; asserts
nothing.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.scrub_eval import PRESIDIO_LABELS, presidio_detector
from gateway.config import ScrubConfig
from gateway.scrub.scrubber import Scrubber

NAMES = ("Maria Lopez", "John Carter", "Aiko Tanaka", "Olivia Schmidt", "Rahul Mehta")
EMAILS = ("maria.lopez@example.com", "j.carter@corp.example.org", "aiko@tanaka.example.net")
PHONES = ("+1 415 555 0132", "(212) 555-0147", "07700 900123", "+49 30 901820", "555-0199")
CARDS = ("4111 1111 1111 1111", "5500-0000-0000-0004", "3782 822463 10005")
ADDRESSES = ("221 Baker Street", "1600 Amphitheatre Parkway", "742 Evergreen Terrace")
PLAIN = (
    "You are a helpful support assistant. Answer politely, in the customer's language, and "
    "keep answers under 150 words. If you are unsure, say so and offer to escalate.",
    "Summarise the conversation below in three bullet points, then suggest the next step "
    "for the agent and draft a short reply the customer can read on a phone.",
    "The customer says the app crashes when they open the settings page after the last "
    "update. They tried reinstalling, clearing the cache and restarting the phone twice.",
    "def retry(fn, attempts=3, delay_s=0.5):\n    for i in range(attempts):\n        try:\n"
    "            return fn()\n        except TimeoutError:\n"
    "            time.sleep(delay_s * 2 ** i)\n",
    '{"order_id": 48213, "status": "shipped", "items": 3, "total": 129.99, '
    '"carrier": "UPS", "eta": "2024-05-03", "warehouse": "DE-FRA-2"}',
    "2024-05-01T10:31:07Z INFO worker-3 processed batch 1187 in 412 ms (queue depth 17, "
    "retries 0, version 2.14.1)",
    "Thanks for the quick answer! One more question: can I change the delivery date to "
    "next Tuesday, and will the discount still apply to the second item in my basket?",
    "Translate the following paragraph into French and keep the product names in English: "
    "the new model ships with 16 GB of memory, a 1 TB drive and a 14-inch display.",
)
WITH_PII = (
    "Hi, my name is {name}. My card {card} was charged twice for order 48213, please refund "
    "one of the payments.",
    "You can reach me at {email} or call {phone} between 9 and 5.",
    "Please ship the replacement to {address}, Springfield, and send the invoice to {email}.",
    "Dear {name}, we have updated your phone number to {phone} as requested.",
    "Customer {name} ({email}) reports that the payment with card ending 0004 failed.",
)


def prompts(size: int, count: int, seed: int) -> list[str]:
    """`count` prompts of `size` characters: instructions first, then a conversation."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts = [PLAIN[0]]
        while sum(map(len, parts)) < size:
            if rng.random() < 0.35:
                parts.append(
                    rng.choice(WITH_PII).format(
                        name=rng.choice(NAMES),
                        email=rng.choice(EMAILS),
                        phone=rng.choice(PHONES),
                        card=rng.choice(CARDS),
                        address=rng.choice(ADDRESSES),
                    )
                )
            else:
                parts.append(rng.choice(PLAIN))
        out.append("\n\n".join(parts)[:size])
    return out


def median_us(fn: Callable[[str], Any], texts: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        for text in texts:
            started = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def presidio_pipeline(entities: list[str] | None) -> Callable[[str], Any] | None:
    """Presidio's analyzer followed by its anonymizer, as a deployment would call them."""
    detect = presidio_detector()  # configures tldextract for offline use
    if detect is None:
        return None
    analyzer: Any = importlib.import_module("presidio_analyzer")
    nlp: Any = importlib.import_module("presidio_analyzer.nlp_engine")
    anonymizer: Any = importlib.import_module("presidio_anonymizer").AnonymizerEngine()
    engine = analyzer.AnalyzerEngine(
        nlp_engine=nlp.NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}]),
        supported_languages=["en"],
    )

    def run(text: str) -> str:
        results = engine.analyze(text, language="en", entities=entities)
        return str(anonymizer.anonymize(text=text, analyzer_results=results).text)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip Presidio")
    args = parser.parse_args()

    scrubber = Scrubber(ScrubConfig())

    def ours(text: str) -> str:
        return scrubber.session().text(text)

    shared = [e for e, ours_name in PRESIDIO_LABELS.items() if ours_name not in ("DATE",)]
    theirs: dict[str, Callable[[str], Any]] = {}
    if not args.quick:
        for label, entities in (("Presidio all", None), ("Presidio same", shared)):
            pipeline = presidio_pipeline(entities)
            if pipeline is not None:
                theirs[label] = pipeline
        if not theirs:
            print("(install the bench extra for Presidio: pip install -e '.[bench]')")

    print("PII scrubbing, median per prompt (µs); MB/s for shadowgate; ratio = Presidio/ours")
    header = f"{'prompt':>8}{'shadowgate':>12}{'MB/s':>7}{'no-PII':>9}"
    for label in theirs:
        header += f"{label:>15}{'ratio':>8}"
    print(header)
    plain_text = "\n\n".join(PLAIN * 300)
    for size, count, rounds in ((200, 50, 40), (2048, 30, 20), (32768, 6, 5)):
        texts = prompts(size, count, seed=size)
        ours_us = median_us(ours, texts, rounds)
        plain = [plain_text[i * size : (i + 1) * size] for i in range(count)]
        line = f"{size:>7}B{ours_us:>12.1f}{size / ours_us:>7.1f}"
        line += f"{median_us(ours, plain, rounds):>9.1f}"
        for pipeline in theirs.values():
            theirs_us = median_us(pipeline, texts[: max(3, count // 5)], 1)
            line += f"{theirs_us:>15.0f}{theirs_us / ours_us:>7.0f}x"
        print(line)


if __name__ == "__main__":
    main()
