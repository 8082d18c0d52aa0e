"""Mirrors sampled requests to the candidate (and, for a noise sample, to production again).

`offer` makes the whole decision for a request in the shadow slice, counting every skip under
its reason. Fire-and-forget and bounded: at most `shadow.max_in_flight` mirrors run at once and
a request past that is dropped and counted, never queued. Each mirror is one task that scrubs
the body, calls the candidate with its own credentials, waits for the proxy to hand over
production's captured answer, then builds the pair record and gives it to the publisher.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from gateway.answers import Answer, reassemble, to_exchange
from gateway.config import CaptureConfig, ShadowConfig
from gateway.constants import (
    SHADOW_DROPPED_BACKLOG,
    SHADOW_DROPPED_CIRCUIT_OPEN,
    SHADOW_DROPPED_SATURATED,
    SHADOW_DROPPED_SHUTDOWN,
    SHADOW_DROPPED_TOO_LARGE,
)
from gateway.metrics import Metrics
from gateway.proxy.arms import ArmAssigner, to_basis_points
from gateway.proxy.capture import Capture
from gateway.proxy.headers import shadow_request_headers
from gateway.proxy.model_names import ModelNames
from gateway.proxy.request_body import StreamedBody
from gateway.proxy.request_json import NOT_JSON
from gateway.proxy.upstream import Upstream
from gateway.records import Exchange, PairRecord
from gateway.scrub.scrubber import Scrubber, ScrubSession
from gateway.shadow.breaker import CircuitBreaker
from gateway.shadow.mirror import Captured, MirrorRequest, ShadowJob
from gateway.shadow.mirror_session import MirrorSession
from gateway.shadow.publish import PairPublisher

if TYPE_CHECKING:
    from gateway.tracing.spans import MirrorSpan, ServerSpan, Tracing

log = logging.getLogger("shadowgate.shadow")


class ShadowDispatcher:
    """Decides which requests are mirrored, starts bounded background mirrors and turns their
    results into pair records."""

    def __init__(
        self,
        *,
        config: ShadowConfig,
        capture: CaptureConfig,
        candidate: Upstream,
        production: Upstream,
        assigner: ArmAssigner,
        models: ModelNames,
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
        self._production = production
        self._assigner = assigner
        self._models = models
        # Every mirrored call has the same bounds: its time, and the bytes it keeps.
        self._send = functools.partial(
            session.send, timeout_s=config.timeout_s, capture_limit=capture.max_bytes
        )
        self._scrubber = scrubber
        self._publisher = publisher
        self._metrics = metrics
        self._paths = frozenset(config.paths)
        self._noise_bp = to_basis_points(config.noise_percent)
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

    def offer(
        self,
        request: web.BaseRequest,
        body: bytes | StreamedBody | None,
        document: Any,
        unit: str | None,
        *,
        request_id: str,
        span: ServerSpan | None,
    ) -> ShadowJob | None:
        """Mirror a request of the shadow slice, or count why not; each reason once.

        `document` is the body as the proxy parsed it (`NOT_JSON` when it is not JSON): every
        whole body small enough to mirror on a mirrored route was parsed before the arm was
        assigned. Cheap refusals come first, so a skipped request costs the user little more
        than this call.
        """
        if request.path not in self._paths or request.method != "POST":
            self._metrics.shadow_skipped.labels("route").inc()
            return None
        if not self.admits():
            return None
        if not isinstance(body, bytes) or len(body) > self._config.max_body_bytes:
            # No body, or one too large to mirror (a streamed body is larger than the buffer).
            if body is None:
                self._metrics.shadow_skipped.labels("no_body").inc()
            else:
                self._metrics.shadow.labels(SHADOW_DROPPED_TOO_LARGE).inc()
            return None
        if not isinstance(document, dict):
            # Only a JSON content type is parsed, so a document tells the reasons apart.
            if "json" not in request.content_type:
                reason = "content_type"
            else:
                reason = "malformed_json" if document is NOT_JSON else "not_an_object"
            self._metrics.shadow_skipped.labels(reason).inc()
            return None
        production_authorization = self._production.authorization or request.headers.get(
            "Authorization"
        )
        return self.start(
            MirrorRequest(
                route=request.path,
                # Without the user's query credentials, as without their headers: the noise
                # call too, and an error that quotes the URL lands in the pair record.
                path_qs=self._candidate.without_credentials(request.raw_path),
                method=request.method,
                document=document,
                headers=shadow_request_headers(
                    request.headers, request_id=request_id, authorization=None
                ),
                unit=self._assigner.unit_hash(unit) if unit is not None else None,
                noise=self._assigner.chance(self._noise_bp),
                production_authorization=production_authorization,
                user_span=span.context if span is not None else None,
            )
        )

    def admits(self) -> bool:
        """Whether a mirror may start now; a refusal is counted as its outcome.

        Asked before a mirror is built, so a saturated dispatcher or a candidate that refuses
        connections costs the user's request nothing more than this call. Past
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

    def start(self, mirror: MirrorRequest) -> ShadowJob:
        """Start a mirror that `admits` let through (no other check: nothing ran in between)."""
        future: asyncio.Future[Captured] = asyncio.get_running_loop().create_future()
        trace = self._tracing.mirror_span(mirror) if self._tracing is not None else None
        task = asyncio.create_task(self._mirror(mirror, future, trace))
        if trace is not None:
            task.add_done_callback(trace.end)
        self._tasks.add(task)
        self._metrics.shadow_in_flight.set(len(self._tasks))
        task.add_done_callback(self._done)
        return ShadowJob(future, Capture(self._capture_limit))

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
            self._send(
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
                self._send(self._production.url(mirror.path_qs), mirror.method, body, noise_headers)
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


def _model_name(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("model"), str):
        return str(document["model"])
    return None
