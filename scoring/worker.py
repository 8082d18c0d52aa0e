"""The scoring worker: reads pair records from the `pairs` stream in a consumer group, embeds
a batch's texts in one call (in a thread, off the event loop), scores each pair and writes
the results.

Exactly once in effect: one Lua script acknowledges the entry and writes its score, review
item and aggregates together, and writes nothing if the entry was already acknowledged (by a
worker that claimed it after this one stalled). Entries left pending by a dead worker are
claimed with XAUTOCLAIM after `scoring.claim_idle_ms`. An entry that fails
`scoring.max_attempts` times, or cannot be parsed, goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway.config import Config
from gateway.constants import (
    GROUP_REVIEWERS,
    GROUP_SCORERS,
    KEY_AGGREGATES,
    KEY_ATTEMPTS,
    KEY_DEAD_LETTER,
    KEY_PAIRS,
    KEY_REVIEW,
    KEY_SCORES,
    STREAM_FIELD,
)
from gateway.records import PairRecord
from gateway.redis_client import raise_if_cancelled
from scoring.aggregates import aggregate_fields
from scoring.divergence import Flagger, NoiseFloor, priority, score_pair
from scoring.embedder import Embedder
from scoring.records import ReviewItem, ScoreRecord

if TYPE_CHECKING:
    from scoring.tracing import EvaluationEvents

log = logging.getLogger("shadowgate.worker")

Entry = tuple[str, dict[bytes, bytes]]

# KEYS: pairs, scores, review, aggregates, dead-letter, attempts
# ARGV: group, entry id, score json, review json ("" for none), scores maxlen, review maxlen,
#       then field/increment pairs for the aggregates hash.
_COMMIT = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'data', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'data', ARGV[4])
end
for i = 7, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1])
end
redis.call('HDEL', KEYS[6], ARGV[2])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(response: Any) -> list[Entry]:
    """Entries of an XREADGROUP reply: [(stream, [(id, fields), ...]), ...]."""
    return [(_text(i), f) for _, items in response or [] for i, f in items]


class ScoringWorker:
    """One consumer in the `scorers` group."""

    def __init__(
        self,
        *,
        config: Config,
        redis: Redis,
        embedder: Embedder,
        consumer: str,
        evaluations: EvaluationEvents | None = None,
    ):
        self._config = config.scoring
        self._evaluations = evaluations
        self._redis = redis
        self._embedder = embedder
        self._consumer = consumer
        prefix = config.redis.key_prefix
        self._pairs = prefix + KEY_PAIRS
        self._scores = prefix + KEY_SCORES
        self._review = prefix + KEY_REVIEW
        self._dead = prefix + KEY_DEAD_LETTER
        self._attempts = prefix + KEY_ATTEMPTS
        self._aggregates = prefix + KEY_AGGREGATES
        self._flagger = Flagger(config.scoring)
        self._noise = NoiseFloor(
            window=config.scoring.noise_window, quantile=config.scoring.noise_quantile
        )
        self._commit = redis.register_script(_COMMIT)
        # A blocking read must return before the client's socket timeout, or an idle stream
        # reads as an outage and costs a retry pause.
        self._block_ms = max(1, int(config.redis.socket_timeout_s * 500))
        self.scored = 0

    async def ensure_groups(self) -> None:
        """Create both consumer groups if they are missing (idempotent)."""
        for stream, group in ((self._pairs, GROUP_SCORERS), (self._review, GROUP_REVIEWERS)):
            try:
                await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stop: asyncio.Event) -> None:
        """Score batches until `stop` is set; Redis outages are waited out."""
        await self.ensure_groups()
        while not stop.is_set():
            try:
                batch = await self.next_batch()
                if batch:
                    await self.process(batch)
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                log.warning("worker: redis unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def next_batch(self, block_ms: int | None = None) -> list[Entry]:
        """Stalled entries first, then new ones: up to `batch_size`, waiting at most
        `max_wait_ms` for a batch to fill once its first entry is in."""
        size = self._config.batch_size
        block_ms = self._block_ms if block_ms is None else block_ms
        # Redis 6.2 answers (next, entries); 7.0 adds the ids of deleted entries.
        reply = await self._redis.xautoclaim(
            self._pairs,
            GROUP_SCORERS,
            self._consumer,
            min_idle_time=self._config.claim_idle_ms,
            start_id="0-0",
            count=size,
        )
        entries: list[Entry] = [(_text(i), f) for i, f in reply[1] if f is not None]
        loop = asyncio.get_running_loop()
        deadline = None
        while len(entries) < size:
            if deadline is None:
                wait_ms = 1 if entries else block_ms
            else:
                wait_ms = int((deadline - loop.time()) * 1000)
                if wait_ms <= 0:
                    break
            response = await self._redis.xreadgroup(
                GROUP_SCORERS,
                self._consumer,
                {self._pairs: ">"},
                count=size - len(entries),
                block=wait_ms,
            )
            fresh = _entries(response)
            if not fresh and (deadline is None or not entries):
                break
            entries.extend(fresh)
            if deadline is None:
                deadline = loop.time() + self._config.max_wait_ms / 1000
        return entries

    async def process(self, entries: list[Entry]) -> None:
        """Score a batch; failures count an attempt and leave the entry pending."""
        pairs: list[tuple[str, PairRecord]] = []
        for entry_id, fields in entries:
            try:
                pairs.append((entry_id, PairRecord.from_json(fields[STREAM_FIELD.encode()])))
            except (KeyError, ValueError, ValidationError) as exc:
                await self._dead_letter(entry_id, fields, f"malformed record: {exc}"[:500])
        if not pairs:
            return
        try:
            vectors = await self._embed(pairs)
            scores = [
                score_pair(
                    pair,
                    vectors[n],
                    config=self._config,
                    flagger=self._flagger,
                    noise_floor=self._noise,
                )
                for n, (_, pair) in enumerate(pairs)
            ]
        except Exception as exc:  # a bad batch must never block the group
            log.exception("worker: scoring a batch of %d failed", len(pairs))
            for entry_id, _ in pairs:
                await self._failed(entry_id, dict(entries)[entry_id], exc)
            return
        for (entry_id, pair), score in zip(pairs, scores, strict=True):
            await self._write(entry_id, pair, score)

    async def _embed(
        self, pairs: list[tuple[str, PairRecord]]
    ) -> list[dict[str, npt.NDArray[np.float32]]]:
        texts: list[str] = []
        where: list[tuple[int, str]] = []
        for n, (_, pair) in enumerate(pairs):
            for side in ("production", "candidate", "noise"):
                exchange = getattr(pair, side)
                if exchange is not None and exchange.text:
                    texts.append(exchange.text)
                    where.append((n, side))
        matrix = await asyncio.to_thread(self._embedder.embed, texts) if texts else None
        vectors: list[dict[str, npt.NDArray[np.float32]]] = [{} for _ in pairs]
        for row, (n, side) in enumerate(where):
            assert matrix is not None
            vectors[n][side] = matrix[row]
        return vectors

    async def _write(self, entry_id: str, pair: PairRecord, score: ScoreRecord) -> None:
        review = (
            ReviewItem(pair=pair, score=score, priority=priority(score)).to_json()
            if score.queued
            else b""
        )
        fields = aggregate_fields(score)
        args: list[Any] = [
            GROUP_SCORERS,
            entry_id,
            score.to_json(),
            review,
            self._config.scores_maxlen,
            self._config.review_maxlen,
        ]
        for name, increment in fields.items():
            args.extend((name, increment))
        keys = [
            self._pairs, self._scores, self._review, self._aggregates, self._dead, self._attempts,
        ]  # fmt: skip
        written = await self._commit(keys=keys, args=args)
        if written:
            self.scored += 1
            if self._evaluations is not None:
                self._evaluations.emit(pair, score)

    async def _failed(self, entry_id: str, fields: dict[bytes, bytes], exc: Exception) -> None:
        attempts = await self._redis.hincrby(self._attempts, entry_id, 1)
        if attempts >= self._config.max_attempts:
            await self._dead_letter(entry_id, fields, f"failed {attempts} times: {exc}"[:500])

    async def _dead_letter(self, entry_id: str, fields: dict[bytes, bytes], error: str) -> None:
        log.warning("worker: entry %s to the dead-letter stream: %s", entry_id, error)
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(
            self._dead,
            {"entry": entry_id, "error": error, **{_text(k): v for k, v in fields.items()}},
            maxlen=10_000,
            approximate=True,
        )
        pipe.xack(self._pairs, GROUP_SCORERS, entry_id)
        pipe.hdel(self._attempts, entry_id)
        pipe.hincrbyfloat(self._aggregates, "dead_letter", 1)
        await pipe.execute()
