"""Speed of the PII scrubber on realistic prompts of 200 B, 2 KB and 32 KB, side by side with
Microsoft Presidio's pattern recognizers on the same texts, in one run.

    python -m benchmarks.scrub_speed

Presidio's AnalyzerEngine wants a spaCy model, which cannot be downloaded here, so its
pattern recognizers (the ones that cover the same entities) are called directly with no NLP
artifacts: the fastest Presidio path, a fair lower bound on its cost. Prints medians in µs,
MB/s and the ratio; asserts nothing.
"""

from __future__ import annotations

import importlib
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.scrub_eval import DEFAULT_DATA
from gateway.config import ScrubConfig
from gateway.scrub import Scrubber

PLAIN = (
    "You are a helpful assistant. Summarise the following support conversation in three "
    "bullet points and suggest the next step for the agent. Keep it short and polite. "
)


def prompts(size: int, seed: int) -> list[str]:
    """Prompts of about `size` bytes: instructions plus labelled support messages with PII."""
    rng = random.Random(seed)
    sentences = [r["full_text"] for r in json.loads(Path(DEFAULT_DATA).read_text())]
    out = []
    for _ in range(20):
        parts = [PLAIN]
        while sum(len(p) for p in parts) < size:
            parts.append(rng.choice(sentences) if rng.random() < 0.3 else PLAIN)
        out.append(" ".join(parts)[:size])
    return out


def median_us(fn: Callable[[str], Any], texts: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            fn(text)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def presidio_analyzer() -> Callable[[str], Any] | None:
    # Imported by name so the benchmark (and its type check) works without the bench extra.
    try:
        tldextract: Any = importlib.import_module("tldextract")
        predefined: Any = importlib.import_module("presidio_analyzer.predefined_recognizers")
    except ImportError:
        return None
    # Presidio's email validator would fetch the public suffix list from the network; use the
    # snapshot bundled with tldextract instead.
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())
    names = ("CreditCard", "Email", "Iban", "Ip", "Phone", "UsSsn")
    recognizers = [getattr(predefined, f"{name}Recognizer")() for name in names]

    def analyze(text: str) -> list[Any]:
        results: list[Any] = []
        for recognizer in recognizers:
            results.extend(recognizer.analyze(text, recognizer.supported_entities, None))
        return results

    return analyze


def main() -> None:
    scrubber = Scrubber(ScrubConfig())
    ours: Callable[[str], Any] = lambda text: scrubber.session().text(text)  # noqa: E731
    presidio = presidio_analyzer()
    print("PII scrubber speed (median per prompt, this machine, one run)")
    header = f"{'prompt':>8}{'shadowgate µs':>15}{'MB/s':>8}"
    if presidio:
        header += f"{'Presidio µs':>14}{'ratio':>8}"
    print(header)
    for size, repeat in ((200, 200), (2048, 50), (32768, 5)):
        texts = prompts(size, seed=size)
        ours_us = median_us(ours, texts, repeat)
        line = f"{size:>7}B{ours_us:>15.1f}{size / ours_us:>8.1f}"
        if presidio:
            theirs_us = median_us(presidio, texts, max(1, repeat // 10))
            line += f"{theirs_us:>14.1f}{theirs_us / ours_us:>8.1f}x"
        print(line)
    if presidio is None:
        print("(install the bench extra for the Presidio comparison: pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
