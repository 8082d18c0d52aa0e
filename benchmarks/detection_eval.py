"""Recall and false-alarm rate per kind on the labelled detection set, for the embedding alone,
the embedding with the behavioural flags (the pipeline before the signals), and the embedding
with flags and signals; on the tuning split and on the held-out split. Also the signals' CPU
time per pair (`signals_cpu.py`).

    python -m benchmarks.detection_eval [--data PATH] [--split tune|holdout] [--markdown]

Every pair goes through the worker's own scoring (`score_pair`) with the shipped embedder.
A pair counts as flagged when the worker would queue it for review. Each pair is judged on
its own: with its own noise sample where it has one, else against the route's noise floor as
a warmed-up worker holds it (production's re-runs in the same split); the evidence gate
starts empty for every pair.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks import signals_cpu
from benchmarks._detection_set import DATA, record
from gateway.config import ScoringConfig
from gateway.records import PairRecord
from scoring.divergence import Flagger, NoiseFloor, cosine_distance, score_pair, signals_of
from scoring.embedder import Embedder
from scoring.signals.detect import Detector
from scoring.signals.gate import EvidenceNoise, PairSignals

MODES = ("embedding", "+ flags", "+ signals")
SIDES = ("production", "candidate", "noise")
SPLITS = ("tune", "holdout")


def embed_all(embedder: Embedder, pairs: list[PairRecord]
              ) -> list[dict[str, npt.NDArray[np.float32]]]:  # fmt: skip
    texts, where = [], []
    for n, pair in enumerate(pairs):
        for name in SIDES:
            exchange = getattr(pair, name)
            if exchange is not None and exchange.text:
                texts.append(exchange.text)
                where.append((n, name))
    matrix = embedder.embed(texts)
    vectors: list[dict[str, npt.NDArray[np.float32]]] = [{} for _ in pairs]
    for row, (n, name) in enumerate(where):
        vectors[n][name] = matrix[row]
    return vectors


def route_noise(pairs: list[PairRecord], vectors: list[dict[str, npt.NDArray[np.float32]]]
                ) -> list[float]:  # fmt: skip
    """Distances of production's re-runs from production: what a warmed-up worker's rolling
    noise floor for the route holds."""
    return [
        cosine_distance(v["noise"], v["production"])
        for pair, v in zip(pairs, vectors, strict=True)
        if "noise" in v and "production" in v
    ]


def decide(
    pair: PairRecord,
    vectors: dict[str, npt.NDArray[np.float32]],
    config: ScoringConfig,
    flagger: Flagger,
    signals: PairSignals,
    noise: list[float],
) -> dict[str, bool]:
    """Whether each mode queues the pair."""

    def scored(with_signals: bool) -> Any:
        floor = NoiseFloor(window=config.noise_window, quantile=config.noise_quantile)
        for distance in noise:
            floor.add(pair.route, distance)
        return score_pair(
            pair, vectors, config=config, flagger=flagger, noise_floor=floor,
            signals=signals if with_signals else None,
            evidence_noise=EvidenceNoise(config.detection) if with_signals else None,
        )  # fmt: skip

    flags_only = scored(False)
    embedding = flags_only.excess is not None and flags_only.excess > config.review_threshold
    return {"embedding": embedding, "+ flags": flags_only.queued,
            "+ signals": scored(True).queued}  # fmt: skip


def evaluate(cases: list[dict[str, Any]]) -> tuple[dict[tuple[str, ...], list[int]], list[float]]:
    """Flagged counts per (split, label, kind, mode), and the signals' CPU ms per pair."""
    config = ScoringConfig(cache_size=0)
    embedder = Embedder(config)
    detector = Detector(vocabulary=embedder.vocabulary())
    flagger = Flagger(config)
    pairs = [record(c) for c in cases]
    vectors = embed_all(embedder, pairs)
    noise = {
        split: route_noise(
            [p for p, c in zip(pairs, cases, strict=True) if c["split"] == split],
            [v for v, c in zip(vectors, cases, strict=True) if c["split"] == split],
        )
        for split in {c["split"] for c in cases}
    }
    counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0])
    cpu_ms = []
    for case, pair, vector in zip(cases, pairs, vectors, strict=True):
        signals = signals_of(pair, detector=detector, flagger=flagger)
        cpu_ms.append(signals_cpu.cpu_ms(pair, detector, flagger, repeat=3))
        decisions = decide(pair, vector, config, flagger, signals, noise[case["split"]])
        for mode, flagged in decisions.items():
            for split in (case["split"], "all"):
                entry = counts[(split, case["label"], case["kind"], mode)]
                entry[0] += flagged
                entry[1] += 1
    return counts, cpu_ms


def table(counts: dict[tuple[str, ...], list[int]], split: str, markdown: bool) -> list[str]:
    kinds = sorted({(label, kind) for (s, label, kind, _) in counts if s == split},
                   key=lambda k: (k[0] != "regression", k[1]))  # fmt: skip
    head = ["kind", "pairs", *MODES]
    rows = []
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for label, kind in kinds:
        n = counts[(split, label, kind, MODES[0])][1]
        cells = []
        for mode in MODES:
            flagged, total = counts[(split, label, kind, mode)]
            totals[(label, mode)][0] += flagged
            totals[(label, mode)][1] += total
            cells.append(f"{flagged / total:.2f}")
        what = "recall" if label == "regression" else "false alarms"
        rows.append([f"{kind} ({what})", str(n), *cells])
    for label, what in (("regression", "recall, all regressions"),
                        ("acceptable", "false alarms, all acceptable")):  # fmt: skip
        n = totals[(label, MODES[0])][1]
        rows.append([f"**{what}**" if markdown else what, str(n),
                     *(f"{totals[(label, m)][0] / max(1, n):.3f}" for m in MODES)])  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return lines
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True))
            for r in [head, *rows]]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--split", choices=SPLITS, help="only this split (tune while tuning)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    cases = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    splits = (args.split,) if args.split else SPLITS
    cases = [c for c in cases if c["split"] in splits]
    counts, cpu_ms = evaluate(cases)
    for split in splits:
        n = sum(1 for c in cases if c["split"] == split)
        print(f"\n{split} split ({n} pairs): share of pairs queued for review")
        print("\n".join(table(counts, split, args.markdown)))
    print(f"\nsignals CPU per pair (thread time, best of 3): {signals_cpu.summary(cpu_ms)}")


if __name__ == "__main__":
    main()
