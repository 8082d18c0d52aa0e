"""Mirrors sampled requests to the candidate (and, for a noise sample, to production again).

Fire-and-forget and bounded: at most `shadow.max_in_flight` mirrors run at once and a request
past that is dropped and counted, never queued. Each mirror is one task that scrubs the body,
calls the candidate with its own credentials, waits for the proxy to hand over production's
captured answer, then builds the pair record and gives it to the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from yarl import URL

from gateway.answers import Answer, reassemble, to_exchange
from gateway.config import CaptureConfig, ShadowConfig
from gateway.constants import (
    SHADOW_DROPPED_BACKLOG,
    SHADOW_DROPPED_CIRCUIT_OPEN,
    SHADOW_DROPPED_SATURATED,
    SHADOW_DROPPED_SHUTDOWN,
    SHADOW_FAILED,
    SHADOW_SENT,
    SHADOW_TIMEOUT,
    SHADOW_TRUNCATED,
)
from gateway.metrics import Metrics
from gateway.proxy.capture import Capture
from gateway.proxy.model_names import ModelNames
from gateway.proxy.upstream import Upstream
from gateway.records import Exchange, PairRecord
from gateway.scrub.scrubber import Scrubber, ScrubSession
from gateway.shadow.breaker import CircuitBreaker
from gateway.shadow.mirror_session import MirrorSession
from gateway.shadow.publish import PairPublisher

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

    from gateway.tracing.spans import MirrorSpan, Tracing

log = logging.getLogger("shadowgate.shadow")


@dataclass(slots=True)
class Captured:
    """One upstream's raw answer as captured, before reassembly."""

    status: int | None
    body: bytes
    truncated: bool
    content_type: str | None
    content_encoding: str | None
    latency_ms: float | None
    ttfb_ms: float | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MirrorRequest:
    """What a mirror needs from the user's request; never the request object itself."""

    route: str
    path_qs: str
    method: str
    document: Any
    headers: dict[str, str]
    unit: str | None
    noise: bool
    production_authorization: str | None
    user_span: SpanContext | None = None


class ShadowJob:
    """The proxy's handle on one mirror: it hands over production's answer when it ends."""

    __slots__ = ("_future",)

    def __init__(self, future: asyncio.Future[Captured]) -> None:
        self._future = future

    def finish(self, production: Captured) -> None:
        if not self._future.done():
            self._future.set_result(production)


class ShadowDispatcher:
    """Starts bounded background mirrors and turns their results into pair records."""

    def __init__(
        self,
        *,
        config: ShadowConfig,
        capture: CaptureConfig,
        candidate: Upstream,
        models: ModelNames,
        production_url: str,
        session: MirrorSession,
        scrubber: Scrubber,
        publisher: PairPublisher,
        metrics: Metrics,
        tracing: Tracing | None = None,
    ) -> None:
        self._config = config
        self._tracing = tracing
        self._capture_limit = capture.max_bytes
        self._candidate = candidate
        self._models = models
        self._production_url = production_url
        self._session = session
        self._scrubber = scrubber
        self._publisher = publisher
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()
        self._breaker = CircuitBreaker(
            failures=config.breaker_failures, cooldown_s=config.breaker_cooldown_s
        )
        self._dropped_saturated = metrics.shadow.labels(SHADOW_DROPPED_SATURATED)
        self._dropped_circuit_open = metrics.shadow.labels(SHADOW_DROPPED_CIRCUIT_OPEN)
        self._dropped_backlog = metrics.shadow.labels(SHADOW_DROPPED_BACKLOG)
        self.backlog = 0
        """Pairs not yet scored, as last measured (the runtime refreshes it)."""

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def circuit_open(self) -> bool:
        return self._breaker.is_open

    def admits(self) -> bool:
        """Whether a mirror may start now; a refusal is counted as its outcome.

        Asked before the proxy builds a mirror, so a saturated dispatcher or a candidate that
        refuses connections costs the user's request nothing more than this call. Past
        `shadow.max_backlog` unscored pairs a mirror is shed: nobody would score its answer
        before the stream cap trimmed it, and the candidate would be paid for it all the same.
        """
        if self.backlog >= self._config.max_backlog:
            self._dropped_backlog.inc()
            return False
        if len(self._tasks) >= self._config.max_in_flight:
            self._dropped_saturated.inc()
            return False
        if not self._breaker.allows():
            self._dropped_circuit_open.inc()
            return False
        return True

    def start(self, mirror: MirrorRequest) -> ShadowJob | None:
        """Start a mirror, or count it dropped when `max_in_flight` are already running."""
        if len(self._tasks) >= self._config.max_in_flight:
            self._dropped_saturated.inc()
            return None
        future: asyncio.Future[Captured] = asyncio.get_running_loop().create_future()
        trace = self._tracing.mirror_span(mirror) if self._tracing is not None else None
        task = asyncio.create_task(self._mirror(mirror, future, trace))
        if trace is not None:
            task.add_done_callback(trace.end)
        self._tasks.add(task)
        self._metrics.shadow_in_flight.set(len(self._tasks))
        task.add_done_callback(self._done)
        return ShadowJob(future)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._metrics.shadow_in_flight.set(len(self._tasks))
        if not task.cancelled() and task.exception() is not None:
            log.error("shadow: mirror failed unexpectedly", exc_info=task.exception())

    async def close(self, grace_s: float = 0.0) -> None:
        """Shutdown: mirrors still running get `grace_s` to finish and hand their pair to the
        publisher; the rest are cancelled, each one counted where its pair was lost."""
        if self._tasks and grace_s > 0:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _mirror(
        self,
        mirror: MirrorRequest,
        production: asyncio.Future[Captured],
        trace: MirrorSpan | None = None,
    ) -> None:
        session = self._scrubber.session()
        scrubbed = session.json(mirror.document)
        body = orjson.dumps(scrubbed)
        # After scrubbing, so the configured name reaches the candidate verbatim; the noise
        # sample goes to production and keeps the request's name.
        renamed = self._models.rewrite(scrubbed)
        candidate_body = body if renamed is None else orjson.dumps(renamed)
        candidate_headers = dict(mirror.headers)
        if self._candidate.authorization is not None:
            candidate_headers["Authorization"] = self._candidate.authorization
        candidate_call = asyncio.ensure_future(
            self._call(
                self._candidate.url(mirror.path_qs),
                mirror.method,
                candidate_body,
                candidate_headers,
                breaker=self._breaker,
            )
        )
        noise_call = None
        if mirror.noise:
            noise_headers = dict(mirror.headers)
            if mirror.production_authorization is not None:
                noise_headers["Authorization"] = mirror.production_authorization
            noise_call = asyncio.ensure_future(
                self._call(
                    self._production_url + mirror.path_qs, mirror.method, body, noise_headers
                )
            )
        outcome = None
        try:
            candidate, outcome = await candidate_call
            self._metrics.shadow.labels(outcome).inc()
            if trace is not None:
                trace.answered(candidate, outcome, limit=self._capture_limit * 4)
            noise = (await noise_call)[0] if noise_call else None
            prod = await production
        except asyncio.CancelledError:
            # Only shutdown cancels a mirror. Before the candidate answered, that is the
            # mirror's outcome; after, the outcome is counted and the pair is what was lost.
            if outcome is None:
                self._metrics.shadow.labels(SHADOW_DROPPED_SHUTDOWN).inc()
            else:
                self._metrics.pairs_dropped.labels("shutdown").inc()
            raise
        finally:
            candidate_call.cancel()
            if noise_call:
                noise_call.cancel()
        record = PairRecord(
            id=uuid.uuid4().hex,
            ts=time.time(),
            route=mirror.route,
            method=mirror.method,
            unit=mirror.unit,
            model=_model_name(mirror.document),
            candidate_model=_model_name(renamed or scrubbed),
            request=orjson.loads(body),
            production=self._exchange(prod, session),
            candidate=self._exchange(candidate, session),
            noise=self._exchange(noise, session) if noise else None,
            traceparent=trace.traceparent if trace is not None else None,
        )
        record.pii = dict(session.counts)
        for entity, count in session.counts.items():
            self._metrics.pii.labels(entity).inc(count)
        self._publisher.submit(record)

    def _exchange(self, captured: Captured, session: ScrubSession) -> Exchange:
        answer = (
            reassemble(
                captured.body,
                content_type=captured.content_type,
                content_encoding=captured.content_encoding,
                limit=self._capture_limit * 4,
                truncated=captured.truncated,
            )
            if captured.status is not None and captured.error is None
            else Answer()
        )
        if answer.text:
            answer.text = session.text(answer.text)
        if answer.error:
            answer.error = session.text(answer.error)
        return to_exchange(
            answer,
            status=captured.status,
            latency_ms=captured.latency_ms,
            ttfb_ms=captured.ttfb_ms,
            truncated=captured.truncated,
            error=captured.error,
        )

    async def _call(
        self,
        url: str,
        method: str,
        body: bytes,
        headers: dict[str, str],
        *,
        breaker: CircuitBreaker | None = None,
    ) -> tuple[Captured, str]:
        """One mirrored call, bounded by `shadow.timeout_s`; returns the capture and its outcome.

        `breaker` learns whether the upstream answered in full (a timeout tells it nothing:
        `shadow.max_in_flight` bounds a slow candidate).
        """
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        started = time.perf_counter()
        ttfb_ms: float | None = None
        capture = Capture(self._capture_limit)
        status: int | None = None
        content_type = content_encoding = None
        try:
            async with asyncio.timeout(self._config.timeout_s):
                async with self._session.session.request(
                    method,
                    URL(url, encoded=True),
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                ) as response:
                    ttfb_ms = (time.perf_counter() - started) * 1000
                    status = response.status
                    content_type = response.headers.get("Content-Type")
                    content_encoding = response.headers.get("Content-Encoding")
                    if _useless_past_cap(response, self._capture_limit):
                        # A JSON document cut at the cap cannot be parsed: not worth a byte.
                        capture.truncated = True
                    else:
                        async for chunk in response.content.iter_any():
                            capture.feed(chunk)
                            if capture.truncated:
                                break
                    if capture.truncated:
                        # The rest would be read only to be thrown away, on the loop the
                        # users share: the connection is closed instead of drained.
                        response.close()
        except TimeoutError as exc:
            _forget_tracebacks(exc)
            return self._failed(status, started, ttfb_ms, "timeout"), SHADOW_TIMEOUT
        except (aiohttp.ClientError, OSError) as exc:
            _forget_tracebacks(exc)
            if breaker is not None:
                breaker.record(failed=True)
            error = f"{type(exc).__name__}: {exc}"[:300]
            return self._failed(status, started, ttfb_ms, error), SHADOW_FAILED
        if breaker is not None:
            breaker.record(failed=capture.truncated)
        captured = Captured(
            status=status,
            body=bytes(capture.buffer),
            truncated=capture.truncated,
            content_type=content_type,
            content_encoding=content_encoding,
            latency_ms=(time.perf_counter() - started) * 1000,
            ttfb_ms=ttfb_ms,
        )
        if status >= 500:
            return captured, SHADOW_FAILED
        return captured, SHADOW_TRUNCATED if capture.truncated else SHADOW_SENT

    @staticmethod
    def _failed(status: int | None, started: float, ttfb_ms: float | None, error: str) -> Captured:
        latency_ms = (time.perf_counter() - started) * 1000
        return Captured(
            status=status,
            body=b"",
            truncated=False,
            content_type=None,
            content_encoding=None,
            latency_ms=latency_ms,
            ttfb_ms=ttfb_ms,
            error=error,
        )


def _useless_past_cap(response: aiohttp.ClientResponse, limit: int) -> bool:
    """Whether the answer says it is larger than the capture and only its whole is of use:
    any declared length over the cap, except an event stream (its first events are text)."""
    length = response.content_length
    return length is not None and length > limit and response.content_type != "text/event-stream"


def _forget_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of a failed call's exception chain.

    aiohttp keeps the exception on the response's stream, and its traceback holds the frames
    that held that response (ours and the protocol's `connection_lost`): a reference cycle
    per failed mirror, with its socket and capture buffer, left for the full collections
    that paused the loop for tens of milliseconds. Only the message is kept.
    """
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is not None and id(current) not in seen:
            seen.add(id(current))
            current.__traceback__ = None
            pending += (current.__cause__, current.__context__)


def _model_name(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("model"), str):
        return str(document["model"])
    return None
