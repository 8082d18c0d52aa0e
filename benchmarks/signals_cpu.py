"""CPU the content signals cost per pair, over the labelled detection set: thread CPU time per
call (best of `--repeat` calls per pair, caches warm as in a long-running worker), and with
`--callgrind` the instructions per pair counted by valgrind, which no other load on the
machine changes.

    python -m benchmarks.signals_cpu [--repeat 3] [--callgrind [--every 9]]

Every pair goes through the worker's `signals_of` (flags, then the signals against the
candidate's answer and, where the pair has one, the noise sample's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._detection_set import DATA, record
from gateway.config import ScoringConfig
from gateway.records import PairRecord
from scoring.divergence import Flagger, signals_of
from scoring.embedder import default_tokenizer_path
from scoring.signals.detect import Detector, load_vocabulary


def pairs(data: Path, every: int = 1) -> list[PairRecord]:
    lines = [line for line in data.read_text().splitlines() if line.strip()]
    return [record(json.loads(line)) for line in lines[::every]]


def cpu_ms(pair: PairRecord, detector: Detector, flagger: Flagger, repeat: int) -> float:
    """Thread CPU milliseconds of the signals on one pair: the best of `repeat` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time_ns()
        signals_of(pair, detector=detector, flagger=flagger)
        best = min(best, (time.thread_time_ns() - started) / 1e6)
    return best


def summary(values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    return (
        f"median {statistics.median(ordered):.3f} ms, p90 {ordered[int(0.9 * len(ordered))]:.3f}"
        f" ms, mean {statistics.mean(ordered):.3f} ms"
    )


def _tools() -> tuple[Detector, Flagger]:
    detector = Detector(vocabulary=load_vocabulary(default_tokenizer_path()))
    return detector, Flagger(ScoringConfig(cache_size=0))


def _marked_run(data: Path, every: int) -> None:
    """Under callgrind: warm up, then run the signals once between two `sched_yield` calls,
    where callgrind dumps its counters."""
    detector, flagger = _tools()
    chosen = pairs(data, every)
    for pair in chosen:
        signals_of(pair, detector=detector, flagger=flagger)
    os.sched_yield()
    for pair in chosen:
        signals_of(pair, detector=detector, flagger=flagger)
    os.sched_yield()
    print(len(chosen))


def callgrind(data: Path, every: int) -> tuple[int, float]:
    """(pairs, instructions per pair) of the signals, counted by valgrind's callgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--callgrind needs valgrind on the PATH")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [valgrind, "--tool=callgrind", "--dump-before=sched_yield",
             f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.signals_cpu",
             "--marked-run", "--every", str(every), "--data", str(data)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        count = int(done.stdout.split()[-1])
        # Dump 1 ends at the first marker (start-up and warm-up); dump 2 is the measured run.
        for line in Path(f"{out}.2").read_text().splitlines():
            if line.startswith("summary:"):
                return count, int(line.split()[1]) / count
    raise SystemExit("callgrind wrote no summary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--every", type=int, default=9, help="with --callgrind: every n-th pair")
    parser.add_argument("--marked-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.marked_run:
        _marked_run(args.data, args.every)
        return
    if args.callgrind:
        count, instructions = callgrind(args.data, args.every)
        print(
            f"signals: {instructions / 1e6:.2f} M instructions per pair (callgrind, {count} pairs)"
        )
        return
    detector, flagger = _tools()
    chosen = pairs(args.data)
    measured = [cpu_ms(pair, detector, flagger, args.repeat) for pair in chosen]
    print(f"signals CPU per pair ({len(chosen)} pairs, best of {args.repeat}): {summary(measured)}")


if __name__ == "__main__":
    main()
