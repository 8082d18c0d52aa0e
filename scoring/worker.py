"""The scoring worker: reads pair records from the `pairs` stream in a consumer group, embeds
a batch's texts in one call (in a thread, off the event loop), scores each pair and writes
the results.

Exactly once in effect: one Lua script acknowledges the entry and writes its score, review
item and aggregates together, and writes nothing if the entry was already acknowledged (by a
worker that claimed it after this one stalled). Entries left pending by a dead worker are
claimed with XAUTOCLAIM after `scoring.claim_idle_ms`; those the stream cap trimmed meanwhile
are acknowledged and counted lost (`lost:trimmed_pending`), not left pending forever. An entry
that fails `scoring.max_attempts` times, or cannot be parsed, goes to the dead-letter stream.
With the LLM judge enabled, a scored batch waits for its verdicts in the background
(`scoring.llm_judge.stage`) and is written when they are in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from gateway.config import Config
from gateway.constants import GROUP_REVIEWERS, GROUP_SCORERS, LOST_TRIMMED_PENDING, STREAM_FIELD
from gateway.keys import Keys
from gateway.proxy.arm_stats import (
    FIELD_PAIRS_DEAD_LETTER,
    FIELD_PAIRS_LOST,
    RETENTION_S,
    bucket_key,
)
from gateway.records import PairRecord, ReviewItem, ScoreRecord
from gateway.redis_client import as_text as _text
from gateway.redis_client import raise_if_cancelled
from scoring.aggregates import AGG_DEAD_LETTER, AGG_LOST, aggregate_fields
from scoring.divergence import Flagger, NoiseFloor, priority, score_pair, signals_of
from scoring.embedder import Embedder
from scoring.llm_judge.stage import JudgeStage
from scoring.providers import batching
from scoring.signals.detect import Detector
from scoring.signals.gate import EvidenceNoise, PairSignals

if TYPE_CHECKING:
    from scoring.tracing import EvaluationEvents

log = logging.getLogger("shadowgate.worker")

Entry = tuple[str, dict[bytes, bytes]]

# KEYS: pairs, scores, review, aggregates, dead-letter, attempts
# ARGV: group, entry id, score json, review json ("" for none), scores maxlen, review maxlen,
#       then field/increment pairs for the aggregates hash.
_COMMIT = f"""
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', '{STREAM_FIELD}', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', '{STREAM_FIELD}', ARGV[4])
end
for i = 7, #ARGV, 2 do
  redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], ARGV[i + 1])
end
redis.call('HDEL', KEYS[6], ARGV[2])
return 1
"""


# Claims entries idle for `min_idle_ms`. Redis 6.2 answers an entry trimmed while pending
# with a nil in place of the entry, without its id, and keeps it pending for ever; so those
# (ids below the stream's first) are found with XPENDING first, acknowledged and counted.
# Redis 7 drops such entries from the pending list itself and names them in a third element.
# KEYS: pairs, aggregates, current bucket. ARGV: group, consumer, min idle ms, count, ttl.
_CLAIM = f"""
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
local below = first and ('(' .. first[1]) or '+'
local trimmed = redis.pcall('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', below, ARGV[4])
if trimmed.err then
  return trimmed  -- NOGROUP as XAUTOCLAIM itself would answer it
end
local gone = 0
for _, entry in ipairs(trimmed) do
  gone = gone + redis.call('XACK', KEYS[1], ARGV[1], entry[1])
end
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0',
                         'COUNT', ARGV[4])
local live = {{}}
for _, entry in ipairs(reply[2]) do
  if entry then live[#live + 1] = entry end
end
if reply[3] then gone = gone + #reply[3] end
if gone > 0 then
  redis.call('HINCRBY', KEYS[2], '{AGG_LOST}{LOST_TRIMMED_PENDING}', gone)
  redis.call('HINCRBY', KEYS[3], '{FIELD_PAIRS_LOST}{LOST_TRIMMED_PENDING}', gone)
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return {{live, gone}}
"""

# Dead-letters an entry unless another worker acknowledged it meanwhile (then it was scored).
# KEYS: pairs, dead-letter, attempts, aggregates, current bucket.
# ARGV: group, entry id, bucket ttl, then field/values of the dead-letter entry.
_DEAD_LETTER = f"""
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', unpack(ARGV, 4))
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HINCRBYFLOAT', KEYS[4], '{AGG_DEAD_LETTER}', 1)
redis.call('HINCRBY', KEYS[5], '{FIELD_PAIRS_DEAD_LETTER}', 1)
redis.call('EXPIRE', KEYS[5], ARGV[3])
return 1
"""


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
        judge: JudgeStage | None = None,
        evaluations: EvaluationEvents | None = None,
    ):
        self._config = config.scoring
        self._judge = judge
        self._evaluations = evaluations
        self._redis = redis
        self._embedder = embedder
        self._consumer = consumer
        self._keys = Keys.for_prefix(config.redis.key_prefix)
        self._flagger = Flagger(config.scoring)
        self._noise = NoiseFloor(
            window=config.scoring.noise_window, quantile=config.scoring.noise_quantile
        )
        detection = config.scoring.detection
        self._detector = Detector(vocabulary=embedder.vocabulary()) if detection.enabled else None
        self._evidence_noise = EvidenceNoise(detection)
        self._commit = redis.register_script(_COMMIT)
        self._claim = redis.register_script(_CLAIM)
        self._dead_letter_script = redis.register_script(_DEAD_LETTER)
        # A blocking read must return before the client's socket timeout, or an idle stream
        # reads as an outage and costs a retry pause.
        self._block_ms = max(1, int(config.redis.socket_timeout_s * 500))
        self.scored = 0
        self.lost = 0

    async def ensure_groups(self) -> None:
        """Create both consumer groups if they are missing (idempotent)."""
        k = self._keys
        for stream, group in ((k.pairs, GROUP_SCORERS), (k.review, GROUP_REVIEWERS)):
            try:
                await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stop: asyncio.Event) -> None:
        """Score batches until `stop` is set; Redis outages are waited out, and groups that
        vanished with Redis's data are created again."""
        groups_ready = False
        while not stop.is_set():
            try:
                if not groups_ready:
                    await self.ensure_groups()
                    groups_ready = True
                batch = await self.next_batch()
                if batch:
                    await self.process(batch)
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # Redis lost the group (it came back empty, or the key was deleted):
                    # waiting would never bring it back. Made again, it reads from the start.
                    log.warning("worker: consumer group missing (%s); creating it again", exc)
                    groups_ready = False
                else:
                    log.warning("worker: redis unavailable (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def next_batch(self, block_ms: int | None = None) -> list[Entry]:
        """Stalled entries first, then new ones: up to `batch_size`, waiting at most
        `max_wait_ms` for a batch to fill once its first entry is in."""
        size = batching(self._config).pairs
        block_ms = self._block_ms if block_ms is None else block_ms
        entries = await self._claim_stalled(size)
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
                {self._keys.pairs: ">"},
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

    async def _claim_stalled(self, count: int) -> list[Entry]:
        """Entries other workers left pending too long; trimmed ones are counted lost."""
        keys = [self._keys.pairs, self._keys.aggregates, bucket_key(self._keys, time.time())]
        args: list[str | int] = [
            GROUP_SCORERS,
            self._consumer,
            self._config.claim_idle_ms,
            count,
            RETENTION_S,
        ]
        live, gone = await self._claim(keys=keys, args=args)
        if gone:
            self.lost += gone
            log.warning(
                "worker: %d pending pairs were trimmed from the stream before anyone scored "
                "them; counted lost (%s)",
                gone,
                LOST_TRIMMED_PENDING,
            )
        return [(_text(i), dict(zip(f[::2], f[1::2], strict=True))) for i, f in live]

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
            # The signals run in a thread beside the embedding (onnxruntime releases the GIL).
            vectors, signals = await asyncio.gather(self._embed(pairs), self._signals(pairs))
            scores = [
                score_pair(
                    pair,
                    vectors[n],
                    config=self._config,
                    flagger=self._flagger,
                    noise_floor=self._noise,
                    signals=signals[n],
                    evidence_noise=self._evidence_noise,
                )
                for n, (_, pair) in enumerate(pairs)
            ]
        except Exception as exc:  # a bad batch must never block the group
            log.exception("worker: scoring a batch of %d failed", len(pairs))
            for entry_id, _ in pairs:
                await self._failed(entry_id, dict(entries)[entry_id], exc)
            return
        if self._judge is None:
            await self._write_all(pairs, scores)
        else:  # judged in the background; writes when the judge answered or timed out
            judged = [(pair, score) for (_, pair), score in zip(pairs, scores, strict=True)]
            await self._judge.judge_then(judged, lambda: self._write_all(pairs, scores))

    async def _write_all(
        self, pairs: list[tuple[str, PairRecord]], scores: list[ScoreRecord]
    ) -> None:
        for (entry_id, pair), score in zip(pairs, scores, strict=True):
            await self._write(entry_id, pair, score)

    async def _signals(self, pairs: list[tuple[str, PairRecord]]) -> list[PairSignals | None]:
        detector = self._detector
        if detector is None:
            return [None] * len(pairs)
        return await asyncio.to_thread(lambda: [self._signals_of(p, detector) for _, p in pairs])

    def _signals_of(self, pair: PairRecord, detector: Detector) -> PairSignals | None:
        try:
            return signals_of(pair, detector=detector, flagger=self._flagger)
        except Exception:  # a signal's bug must not cost the pair its score
            log.exception("worker: signals failed on pair %s", pair.id)
            return None

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
        k = self._keys
        keys = [k.pairs, k.scores, k.review, k.aggregates, k.dead_letter, k.attempts]
        written = await self._commit(keys=keys, args=args)
        if written:
            self.scored += 1
            if self._evaluations is not None:
                self._evaluations.emit(pair, score)

    async def _failed(self, entry_id: str, fields: dict[bytes, bytes], exc: Exception) -> None:
        attempts = await self._redis.hincrby(self._keys.attempts, entry_id, 1)
        if attempts >= self._config.max_attempts:
            await self._dead_letter(entry_id, fields, f"failed {attempts} times: {exc}"[:500])

    async def _dead_letter(self, entry_id: str, fields: dict[bytes, bytes], error: str) -> None:
        log.warning("worker: entry %s to the dead-letter stream: %s", entry_id, error)
        record = {"entry": entry_id, "error": error, **{_text(k): v for k, v in fields.items()}}
        k = self._keys
        keys = [k.pairs, k.dead_letter, k.attempts, k.aggregates, bucket_key(k, time.time())]
        args: list[Any] = [GROUP_SCORERS, entry_id, RETENTION_S]
        for name, value in record.items():
            args.extend((name, value))
        await self._dead_letter_script(keys=keys, args=args)
