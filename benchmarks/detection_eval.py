"""Recall and false-alarm rate per kind on the labelled detection set, for the embedding alone,
the embedding with the behavioural flags (the pipeline before the signals), the embedding
with flags and signals, and all of those plus the LLM judge played by the simulator's judge
profile; on the tuning split and on the held-out split. Also the signals' CPU time per pair.

    python -m benchmarks.detection_eval [--data PATH] [--markdown]

Every pair goes through the worker's own scoring (`score_pair`) with the shipped embedder.
A pair counts as flagged when the worker would queue it for review. Each pair is judged on
its own: with its own noise sample where it has one, else against the route's noise floor as
a warmed-up worker holds it (production's re-runs in the same split); the evidence gate
starts empty for every pair. The judge sees the pairs `JUDGE_SELECTION` picks (as the demo
configures it), over HTTP through the worker's own client, and can only add a pair to the
queue (a regression verdict), never take one off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt

from benchmarks._detection_set import DATA, record
from gateway.config import JudgeSelection, LlmJudgeConfig, ScoringConfig
from gateway.records import PairRecord, ScoreRecord
from gateway.sim.simulator import PROFILES, start
from scoring.divergence import Flagger, NoiseFloor, cosine_distance, score_pair, signals_of
from scoring.embedder import Embedder
from scoring.llm_judge.client import JudgeClient
from scoring.llm_judge.prompt import build_messages
from scoring.llm_judge.stage import apply_verdict, selected
from scoring.signals.detect import Detector
from scoring.signals.gate import EvidenceNoise, PairSignals

MODES = ("embedding", "+ flags", "+ signals", "+ judge (simulated)")
JUDGE_SELECTION = JudgeSelection(flagged=True, excess_above=0.1)
SIDES = ("production", "candidate", "noise")


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
) -> tuple[dict[str, bool], ScoreRecord]:
    """Whether the modes before the signals queue the pair, and its score with the signals."""

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
    return {"embedding": embedding, "+ flags": flags_only.queued}, scored(True)


async def judge_all(items: list[tuple[PairRecord, ScoreRecord]]) -> list[bool]:
    """Whether each pair is queued once the simulated judge saw the selected ones."""
    runner, port = await start(PROFILES["judge"].model_copy(update={"first_token_ms": 0}))
    config = LlmJudgeConfig(enabled=True, url=f"http://127.0.0.1:{port}/v1", model="judge-model",
                            usd_per_day=None, select=JUDGE_SELECTION)  # fmt: skip
    calls = asyncio.Semaphore(config.max_concurrency)
    try:
        async with aiohttp.ClientSession() as session:
            client = JudgeClient(config=config, session=session)

            async def one(pair: PairRecord, score: ScoreRecord) -> bool:
                if selected(pair, score, config.select):
                    messages = build_messages(pair, score, max_chars=config.max_answer_chars)
                    async with calls:
                        verdict = await client.ask(messages)
                    assert verdict.label, verdict
                    apply_verdict(score, verdict, queue_regressions=True)
                return score.queued

            return list(await asyncio.gather(*(one(p, s) for p, s in items)))
    finally:
        await runner.cleanup()


Counts = dict[tuple[str, ...], list[int]]


def evaluate(cases: list[dict[str, Any]]) -> tuple[Counts, list[float], Counter[str]]:
    """Flagged counts per (split, label, kind, mode), the signals' CPU ms per pair, and the
    pairs the judge was asked about per split."""
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
    decisions, with_signals = [], []
    for case, pair, vector in zip(cases, pairs, vectors, strict=True):
        started = time.thread_time_ns()
        signals = signals_of(pair, detector=detector, flagger=flagger)
        cpu_ms.append((time.thread_time_ns() - started) / 1e6)
        before, score = decide(pair, vector, config, flagger, signals, noise[case["split"]])
        decisions.append({**before, "+ signals": score.queued})
        with_signals.append(score)
    judged = asyncio.run(judge_all(list(zip(pairs, with_signals, strict=True))))
    for case, decided, queued in zip(cases, decisions, judged, strict=True):
        for mode, flagged in {**decided, MODES[-1]: queued}.items():
            for split in (case["split"], "all"):
                entry = counts[(split, case["label"], case["kind"], mode)]
                entry[0] += flagged
                entry[1] += 1
    asked = Counter(c["split"] for c, s in zip(cases, with_signals, strict=True) if s.judge)
    return counts, cpu_ms, asked


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
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--split", choices=["tune", "holdout"], help="only this split (tune while tuning)"
    )
    args = parser.parse_args()
    cases = [json.loads(line) for line in args.data.read_text().splitlines() if line.strip()]
    splits = (args.split,) if args.split else ("tune", "holdout")
    cases = [c for c in cases if c["split"] in splits]
    counts, cpu_ms, asked = evaluate(cases)
    for split in splits:
        n = sum(1 for c in cases if c["split"] == split)
        print(f"\n{split} split ({n} pairs, {asked[split]} sent to the judge): "
              "share of pairs queued for review")  # fmt: skip
        print("\n".join(table(counts, split, args.markdown)))
    cpu_ms.sort()
    print(f"\nsignals CPU per pair: median {statistics.median(cpu_ms):.3f} ms, "
          f"p90 {cpu_ms[int(0.9 * len(cpu_ms))]:.3f} ms, max {cpu_ms[-1]:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
