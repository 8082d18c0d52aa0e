"""`shadowgate replay GOLDEN.jsonl --candidate URL`: a regression suite grown from real
traffic. Each golden prompt goes to the model under test; its answer is compared with the
approved one (the candidate's answer when reviewers found it acceptable or better,
production's when they marked the candidate a regression). Prints a table and fails when
more than the allowed share regresses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError

from gateway.answers import reassemble
from gateway.config import ScoringConfig
from gateway.errors import ConfigError
from gateway.records import Exchange, GoldenCase
from scoring.divergence import Flagger, cosine_distance, wants_json
from scoring.embedder import Embedder


@dataclass
class Case:
    route: str
    request: dict[str, Any]
    reference: str
    label: str
    answer: Exchange | None = None
    divergence: float | None = None
    flags: tuple[str, ...] = ()

    def regressed(self, threshold: float) -> bool:
        return bool(self.flags) or self.divergence is None or self.divergence > threshold


def load_golden(path: Path) -> list[Case]:
    cases = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            golden = GoldenCase.from_json(line)
        except orjson.JSONDecodeError:
            raise ConfigError(f"{path}:{n}: not a JSON line") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ConfigError(f"{path}:{n}: {where}: {first['msg']}") from None
        request, reference = golden.request, golden.approved
        if not isinstance(request, dict) or reference is None:
            raise ConfigError(f"{path}:{n}: needs a request object and an approved answer")
        request = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
        route = golden.route or "/v1/chat/completions"
        cases.append(
            Case(route=route, request=request, reference=reference, label=golden.label or "")
        )
    if not cases:
        raise ConfigError(f"{path}: no golden records")
    return cases


async def _ask(session: aiohttp.ClientSession, base: str, case: Case, api_key: str | None) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with session.post(base + case.route, json=case.request, headers=headers) as resp:
            body = await resp.read()
            answer = reassemble(
                body, content_type=resp.content_type, content_encoding=None, limit=1 << 22
            )
            case.answer = Exchange(
                status=resp.status,
                text=answer.text,
                finish_reason=answer.finish_reason,
                error=answer.error,
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        case.answer = Exchange(error=f"{type(exc).__name__}: {exc}")


async def _ask_all(cases: list[Case], base: str, api_key: str | None, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(case: Case) -> None:
            async with gate:
                await _ask(session, base, case, api_key)

        await asyncio.gather(*(one(c) for c in cases))


def run_replay(
    golden: Path,
    *,
    candidate: str,
    api_key: str | None,
    config: ScoringConfig,
    max_regression_share: float,
    concurrency: int = 4,
) -> int:
    """Replay, print the table, and return 1 when too many cases regress."""
    cases = load_golden(golden)
    asyncio.run(_ask_all(cases, candidate.rstrip("/"), api_key, concurrency))
    flagger = Flagger(config)
    embedder = Embedder(config)
    answered = [c for c in cases if c.answer is not None and c.answer.text]
    texts = [t for c in answered for t in ((c.answer and c.answer.text) or "", c.reference)]
    vectors = embedder.embed(texts)
    for n, case in enumerate(answered):
        case.divergence = cosine_distance(vectors[2 * n], vectors[2 * n + 1])
    for case in cases:
        assert case.answer is not None
        case.flags = tuple(flagger.flags(case.answer, wants_json=wants_json(case.request)))
    print(f"{'#':>3}  {'route':<24}{'golden':<13}{'divergence':>11}  {'flags':<18}result")
    for n, case in enumerate(cases, start=1):
        divergence = f"{case.divergence:.3f}" if case.divergence is not None else "n/a"
        result = "REGRESSED" if case.regressed(config.review_threshold) else "ok"
        print(
            f"{n:>3}  {case.route:<24}{case.label:<13}{divergence:>11}  "
            f"{','.join(case.flags) or '-':<18}{result}"
        )
    regressed = sum(c.regressed(config.review_threshold) for c in cases)
    share = regressed / len(cases)
    print(
        f"{regressed} of {len(cases)} regressed ({share:.1%}); allowed {max_regression_share:.1%}"
    )
    return 1 if share > max_regression_share else 0
