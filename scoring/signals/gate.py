"""Evidence of one pair, judged against production's own noise.

A finding counts unless production, asked the same question again, changes the same kind of
thing about as often. Two checks, in the spirit of Diffy's primary/secondary comparison:

- on the pair itself: when its noise answer (production's re-run) differs from production in
  the same kind at the same place (the same production value or path), the candidate's
  difference there is within noise;
- on the route: over the last `noise_window` pairs, the share of noise samples that show a
  kind against the share of candidate answers that show it. Once a route has
  `noise_min_samples` noise samples and production changes that kind at all, the kind counts
  only when the candidate's rate beats production's by both the relative margin (20%) and
  the absolute margin (3 points). A kind production never changes always counts, so a rare
  regression is not averaged away.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Final

from gateway.config import DetectionConfig
from gateway.records import Evidence, PairRecord, Severity
from scoring.signals.detect import Detector
from scoring.signals.parse import parse

# Behavioural flags as evidence: how much each one matters to a reviewer.
FLAG_SEVERITY: Final[dict[str, Severity]] = {
    "refusal": "high",
    "empty": "high",
    "error": "high",
    "timeout": "high",
    "invalid_json": "high",
    "truncated": "high",
    "length_ratio": "low",
}
FLAG_MESSAGES: Final = {
    "refusal": "the candidate refused",
    "empty": "the candidate's answer is empty",
    "error": "the candidate's request failed",
    "timeout": "the candidate timed out",
    "invalid_json": "JSON was asked for; the candidate's answer does not parse",
    "truncated": "the candidate's answer was cut off (length limit)",
    "length_ratio": "the answers differ a lot in length",
}
# Flags after which comparing content would only restate the flag.
NO_CONTENT: Final = frozenset({"refusal", "empty", "error", "timeout"})


@dataclass(frozen=True, slots=True)
class PairSignals:
    """What the signals found in a pair: candidate vs production, and noise vs production."""

    candidate: list[Evidence]
    noise: list[Evidence] | None = None


def prompt_of(request: Any) -> str:
    """The user's last message as text (string content or the text parts of a list)."""
    if not isinstance(request, dict):
        return ""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def pair_signals(
    pair: PairRecord, detector: Detector, *, wants_json: bool, skip_content: bool
) -> PairSignals:
    """Run the signals on a pair (pure; safe in a worker thread)."""
    prompt = prompt_of(pair.request)
    production = parse(pair.production.text)
    found = detector.compare(
        production,
        pair.candidate.text,
        prompt=prompt,
        wants_json=wants_json,
        content=not skip_content,
    )
    noise = None
    if pair.noise is not None and pair.noise.text and not pair.noise.error:
        noise = detector.compare(production, pair.noise.text, prompt=prompt, wants_json=wants_json)
    return PairSignals(found, noise)


def flag_evidence(flags: list[str], candidate_text: str | None) -> list[Evidence]:
    """The candidate's new behavioural flags as evidence items over its whole answer."""
    end = len(candidate_text or "")
    return [
        Evidence(
            kind=flag,
            severity=FLAG_SEVERITY.get(flag, "medium"),
            message=FLAG_MESSAGES.get(flag, flag),
            candidate_span=(0, end),
        )
        for flag in flags
    ]


def _spot(item: Evidence) -> tuple[str, object]:
    """Where in production an item is: its path, production span, or just its kind."""
    return item.kind, item.path or item.production_span or item.production


def _kinds(items: list[Evidence]) -> frozenset[str]:
    return frozenset(e.kind for e in items if e.severity != "low")


class EvidenceNoise:
    """Per route: which kinds of evidence production's re-runs and the candidate show."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        window = config.noise_window
        self._noise: dict[str, deque[frozenset[str]]] = defaultdict(lambda: deque(maxlen=window))
        self._candidate: dict[str, deque[frozenset[str]]] = defaultdict(
            lambda: deque(maxlen=window)
        )

    def judge(self, route: str, signals: PairSignals) -> list[Evidence]:
        """The candidate's evidence, each item marked `within_noise` where it is."""
        if signals.noise is not None:
            self._noise[route].append(_kinds(signals.noise))
        self._candidate[route].append(_kinds(signals.candidate))
        same_spot = {_spot(e) for e in signals.noise or []}
        noisy_kinds = {k for k in _kinds(signals.candidate) if self._route_noise(route, k)}
        return [
            e.model_copy(update={"within_noise": True})
            if _spot(e) in same_spot or e.kind in noisy_kinds
            else e
            for e in signals.candidate
        ]

    def rates(self, route: str, kind: str) -> tuple[float, float, int]:
        """(noise rate, candidate rate, noise samples) of a kind on a route."""
        noise, candidate = self._noise.get(route, ()), self._candidate.get(route, ())
        noise_rate = sum(kind in s for s in noise) / len(noise) if noise else 0.0
        candidate_rate = sum(kind in s for s in candidate) / len(candidate) if candidate else 0.0
        return noise_rate, candidate_rate, len(noise)

    def _route_noise(self, route: str, kind: str) -> bool:
        noise_rate, candidate_rate, samples = self.rates(route, kind)
        if samples < self._config.noise_min_samples or noise_rate == 0.0:
            return False
        excess = candidate_rate - noise_rate
        return not (
            excess > self._config.noise_absolute_margin
            and excess / noise_rate > self._config.noise_relative_margin
        )
