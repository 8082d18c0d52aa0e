"""The judge as a step of the scoring worker, between scoring a batch and writing it.

A batch's selected pairs are asked concurrently (at most `max_concurrency` calls at once,
the most urgent first), and the whole batch gets at most `timeout_s`: pairs still unanswered
then are skipped as `timeout`, so a batch is acknowledged at most that much later. Batches
wait for their judge calls in background tasks, at most `max_batches_in_flight` of them, so
the worker reads and embeds the next batch meanwhile: the judge is off the embedding's path.
Every scored pair gets a `judge` field: the verdict, or the reason it has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import Config, JudgeSelection, LlmJudgeConfig
from gateway.keys import Keys
from gateway.records import JudgeVerdict, PairRecord, ScoreRecord
from scoring.divergence import priority
from scoring.llm_judge.budget import JudgeBudget
from scoring.llm_judge.client import JudgeClient
from scoring.llm_judge.prompt import build_messages

log = logging.getLogger("shadowgate.llm_judge")

Judged = tuple[PairRecord, ScoreRecord]
# The reason a pair the judge called a regression is queued with, when nothing else queued it.
QUEUE_REASON = "judge:regression"


def selected(pair: PairRecord, score: ScoreRecord, selection: JudgeSelection) -> bool:
    """Whether the configuration sends this pair to the judge (both answers must have text)."""
    if not pair.production.text or not pair.candidate.text:
        return False
    flagged = bool(score.counted_evidence or score.new_flags)
    above = selection.excess_above is not None and (score.excess or 0.0) > selection.excess_above
    return (selection.flagged and flagged) or above


def apply_verdict(score: ScoreRecord, verdict: JudgeVerdict, *, queue_regressions: bool) -> None:
    """Store the verdict with the score; a regression queues a pair nothing else queued. An
    acceptable verdict never unqueues one: the judge adds reviews, it never removes them."""
    score.judge = verdict
    if verdict.label == "regression" and queue_regressions and not score.queued:
        score.queued = True
        score.reasons.append(QUEUE_REASON)


class JudgeStage:
    """Judges the selected pairs of each batch, then lets the worker write the batch."""

    def __init__(self, *, config: LlmJudgeConfig, client: JudgeClient, budget: JudgeBudget):
        self._config = config
        self._client = client
        self._budget = budget
        self._calls = asyncio.Semaphore(config.max_concurrency)
        self._batches = asyncio.Semaphore(config.max_batches_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    async def judge(self, items: Sequence[Judged]) -> None:
        """Set `judge` on every score of a batch, within `timeout_s` for the whole batch."""
        asked = []
        for pair, score in items:
            if selected(pair, score, self._config.select):
                asked.append((pair, score))
            else:
                score.judge = JudgeVerdict(skipped="not_selected")
        asked.sort(key=lambda item: priority(item[1]), reverse=True)
        deadline = asyncio.get_running_loop().time() + self._config.timeout_s
        # Created in priority order, so the most urgent pairs take the call slots first.
        verdicts = await asyncio.gather(
            *(self._ask(pair, score, deadline) for pair, score in asked)
        )
        for (_, score), verdict in zip(asked, verdicts, strict=True):
            apply_verdict(score, verdict, queue_regressions=self._config.queue_regressions)

    async def _ask(self, pair: PairRecord, score: ScoreRecord, deadline: float) -> JudgeVerdict:
        model = self._config.model
        messages = build_messages(pair, score, max_chars=self._config.max_answer_chars)
        calling = False
        try:
            async with asyncio.timeout_at(deadline), self._calls:
                if skip := await self._budget.take():
                    return JudgeVerdict(skipped=skip, model=model)
                calling = True
                verdict = await self._client.ask(messages)
        except TimeoutError:
            verdict = JudgeVerdict(skipped="timeout", model=model)
            if calling:  # a call cut short may still be billed: count what it may have cost
                verdict.cost_usd = self._client.estimated_cost(messages, None)
        except RedisError as exc:
            log.warning("judge: budget unavailable (%s); pair not judged", exc)
            return JudgeVerdict(skipped="error", model=model)
        if verdict.cost_usd:
            with contextlib.suppress(RedisError):
                await self._budget.spend(verdict.cost_usd)
        return verdict

    async def judge_then(
        self, items: Sequence[Judged], write: Callable[[], Awaitable[None]]
    ) -> None:
        """Judge `items` in a background task, then `write` them. Returns at once unless
        `max_batches_in_flight` batches are waiting already; then waits for one to finish."""
        await self._batches.acquire()
        task = asyncio.create_task(self._judge_and_write(items, write))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _judge_and_write(
        self, items: Sequence[Judged], write: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await self.judge(items)
            await write()
        except Exception:  # the entries stay pending; another claim scores them again
            log.exception("judge: judging or writing a batch of %d failed", len(items))
        finally:
            self._batches.release()

    async def drain(self) -> None:
        """Wait for the batches in flight (each takes at most `timeout_s` plus its write)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def open_judge(config: Config, redis: Redis) -> AsyncIterator[JudgeStage | None]:
    """The judge stage of `config` (None when disabled), with its HTTP session; batches in
    flight are written before it closes."""
    judge = config.scoring.judge
    if not judge.enabled:
        yield None
        return
    connector = aiohttp.TCPConnector(limit=judge.max_concurrency)
    timeout = aiohttp.ClientTimeout(total=judge.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        key = Keys.for_prefix(config.redis.key_prefix).judge_budget
        budget = JudgeBudget(redis=redis, key=key, config=judge)
        stage = JudgeStage(
            config=judge, client=JudgeClient(config=judge, session=session), budget=budget
        )
        try:
            yield stage
        finally:
            await stage.drain()
