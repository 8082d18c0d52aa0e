"""The data plane: every request is forwarded to the upstream of its arm and streamed back.

The user's path reads top to bottom, as Pingora's hooks do: `handle` reads the body (up to
`listen.body_buffer_bytes`, before any upstream connection is taken), assigns the arm and
offers the request to the shadow dispatcher; `_forward` opens the exchange upstream (`_open`:
a failure before the answer began becomes an OpenAI-style 502/503/504, a client too slow with
its body a 408), relays the answer whole or streamed (`_relay`, teeing into the mirror's
capture) and records the request once at its end (`_finish`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, TypeGuard

from aiohttp import hdrs, web

from gateway.config import Config
from gateway.constants import ARM_CANARY, ARM_HEADER, ARM_PRODUCTION, REQUEST_ID_HEADER
from gateway.errors import ClientBodyTimeout, UpstreamError, UpstreamPoolTimeout, UpstreamTimeout
from gateway.metrics import Metrics
from gateway.proxy.arm_stats import ArmStats
from gateway.proxy.arms import ArmAssigner
from gateway.proxy.capture import Capture
from gateway.proxy.error_responses import (
    FailedExchange,
    body_timeout_response,
    error_response,
    incomplete_body_response,
    invalid_target_response,
    streamed_bodies_full_response,
)
from gateway.proxy.expect import answer_expect
from gateway.proxy.headers import response_headers, upstream_request_headers
from gateway.proxy.model_names import ModelNames
from gateway.proxy.prompt_features import prompt_features
from gateway.proxy.request_body import StreamedBody, StreamSlots, read_body
from gateway.proxy.request_json import parse_json
from gateway.proxy.request_target import origin_form
from gateway.proxy.traffic import TrafficState
from gateway.proxy.upstream import Upstream
from gateway.proxy.upstream_client import UpstreamResponse
from gateway.shadow.dispatcher import ShadowDispatcher
from gateway.shadow.mirror import ShadowJob

if TYPE_CHECKING:
    from gateway.tracing.spans import ServerSpan, Tracing

log = logging.getLogger("shadowgate.proxy")

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
# Bodies of known length up to this size are read whole and sent in one write.
_WHOLE_BODY_BYTES = 64 * 1024


class ProxyHandler:
    """Handles every data-plane request."""

    def __init__(
        self,
        *,
        config: Config,
        production: Upstream,
        candidate: Upstream | None,
        assigner: ArmAssigner,
        traffic: TrafficState,
        dispatcher: ShadowDispatcher | None,
        metrics: Metrics,
        arm_stats: ArmStats,
        tracing: Tracing | None = None,
    ) -> None:
        self._tracing = tracing
        self._production = production
        self._candidate = candidate
        self._assigner = assigner
        self._traffic = traffic
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._arm_stats = arm_stats
        self._models = ModelNames.for_candidate(config.upstreams.candidate)
        self._shadow_paths = frozenset(config.shadow.paths)
        self._max_body = config.shadow.max_body_bytes
        self._buffer_bytes = config.listen.body_buffer_bytes
        self._mirror_buffer = max(self._buffer_bytes, self._max_body)
        self._body_timeout_s = config.listen.body_timeout_s
        self._stream_slots = {
            ARM_PRODUCTION: StreamSlots(production.config.streamed_bodies_limit),
            ARM_CANARY: StreamSlots(candidate.config.streamed_bodies_limit if candidate else 0),
        }
        self._cutting = False
        # Label children looked up once: `labels()` costs more than the increment itself.
        arms = (ARM_PRODUCTION, ARM_CANARY)
        self._ttfb = {arm: metrics.upstream_ttfb.labels(arm) for arm in arms}
        self._latency = {arm: metrics.upstream_latency.labels(arm) for arm in arms}
        self._requests: dict[tuple[str, int | None], Any] = {}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The user's path: read the request, assign its arm, offer it to the mirror, forward."""
        if expect := request.headers.get(hdrs.EXPECT):
            await answer_expect(request, expect)
        request_id = request.headers.get(REQUEST_ID_HEADER) or os.urandom(16).hex()
        if not request.raw_path.startswith("/"):
            normalised = origin_form(request, self._metrics)
            if normalised is None:
                return invalid_target_response(request_id)
            request = normalised
        try:
            body = await self._read_body(request)
        except asyncio.IncompleteReadError:
            self._metrics.client_disconnects.inc()
            return incomplete_body_response(request_id)
        except ClientBodyTimeout:
            self._metrics.client_timeouts.labels("body").inc()
            return body_timeout_response(ARM_PRODUCTION, request_id)
        # A small body on a mirrored route is parsed once, for the drift features (always:
        # the rollout compares against the traffic before it began), the unit key and the mirror.
        document: Any = parse_json(request, body) if self._mirrorable(body, request) else None
        span = self._tracing.server_span(request, document) if self._tracing is not None else None
        live = self._traffic.current
        job = None
        if live.canary_bp or live.shadow_bp:
            unit = self._assigner.unit_value(request.headers, document)
            assignment = self._assigner.assign(
                unit, canary_bp=live.canary_bp, shadow_bp=live.shadow_bp
            )
            if assignment.canary and self._candidate is not None:
                self._count_prompt(ARM_CANARY, request.path, document)
                if isinstance(body, bytes) and self._models.rewrites:
                    parsed = document if document is not None else parse_json(request, body)
                    body = self._models.rewrite_body(body, parsed)
                return await self._forward(
                    request, self._candidate, ARM_CANARY, body, request_id, None, span
                )
            if assignment.shadow and self._dispatcher is not None:
                job = self._dispatcher.offer(
                    request, body, document, unit, request_id=request_id, span=span
                )
        self._count_prompt(ARM_PRODUCTION, request.path, document)
        return await self._forward(
            request, self._production, ARM_PRODUCTION, body, request_id, job, span
        )

    def shutting_down(self) -> None:
        """Requests cancelled from now on are cut by shutdown, not left by their client."""
        self._cutting = True

    def _mirrorable(
        self, body: bytes | StreamedBody | None, request: web.BaseRequest
    ) -> TypeGuard[bytes]:
        """Whether this body is whole, small enough and on a route that mirrors."""
        return (
            isinstance(body, bytes)
            and len(body) <= self._max_body
            and request.path in self._shadow_paths
        )

    def _count_prompt(self, arm: str, route: str, document: Any) -> None:
        """Input-drift counts, only for a body this request already parsed."""
        if isinstance(document, dict):
            self._arm_stats.record_prompt(arm, prompt_features(route, document))

    def _upstream_failed(self, arm: str, kind: str) -> None:
        self._metrics.upstream_errors.labels(arm, kind).inc()
        self._arm_stats.record_upstream_error(arm, kind)

    def _count_request(self, arm: str, status: int | None) -> None:
        child = self._requests.get((arm, status))
        if child is None:
            child = self._requests[arm, status] = self._metrics.requests.labels(arm, str(status))
        child.inc()

    async def _read_body(self, request: web.BaseRequest) -> bytes | StreamedBody | None:
        """The body, read whole when small: no upstream connection waits on a slow client.

        None when the request has none. A mirrored route buffers up to the mirror's cap too."""
        if not request.body_exists:
            return None
        limit = self._mirror_buffer if request.path in self._shadow_paths else self._buffer_bytes
        return await read_body(
            request.content,
            length=request.content_length,
            limit=limit,
            timeout_s=self._body_timeout_s,
        )

    async def _forward(
        self,
        request: web.BaseRequest,
        upstream: Upstream,
        arm: str,
        body: bytes | StreamedBody | None,
        request_id: str,
        job: ShadowJob | None,
        span: ServerSpan | None,
    ) -> web.StreamResponse:
        """Open the exchange with the arm's upstream, relay its answer, finish: recorded once."""
        streamed = body if isinstance(body, StreamedBody) else None
        if streamed is not None and not streamed.claim(self._stream_slots[arm]):
            return self._refuse_streamed(arm, request_id, span)
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        started = time.perf_counter()
        answer: UpstreamResponse | None = None
        status: int | None = None
        error: str | None = None
        ttfb_ms: float | None = None
        complete = False
        try:
            answer = await self._open(request, body, upstream, arm, request_id, span)
            ttfb = time.perf_counter() - started
            ttfb_ms = ttfb * 1000
            self._ttfb[arm].observe(ttfb)
            status = answer.status
            capture = job.capture if job is not None else None
            response = await self._relay(request, answer, arm, request_id, capture)
            complete = True
            return response
        except FailedExchange as failed:
            status, error = failed.response.status, failed.error
            return failed.response
        except (asyncio.CancelledError, ConnectionResetError):
            if self._cutting:
                error = "cut at shutdown"
            else:
                error = "client disconnected"
                self._metrics.client_disconnects.inc()
            raise
        finally:
            if streamed is not None:
                streamed.close()
            if answer is not None:
                if complete:
                    answer.release()
                else:
                    answer.close()
            self._finish(arm, started, status, error, ttfb_ms, answer, span, job)

    def _refuse_streamed(self, arm: str, request_id: str, span: ServerSpan | None) -> web.Response:
        """Refused before an upstream connection is taken: slow uploads hold at most their
        share of the pool."""
        self._metrics.requests_refused.labels("streamed_bodies_full").inc()
        if span is not None:
            span.finish(arm=arm, status=503, error="refused", capture=None, response=None)
        return streamed_bodies_full_response(arm, request_id)

    async def _open(
        self,
        request: web.BaseRequest,
        body: bytes | StreamedBody | None,
        upstream: Upstream,
        arm: str,
        request_id: str,
        span: ServerSpan | None,
    ) -> UpstreamResponse:
        """Send the request upstream and wait for the head of its answer."""
        data: bytes | StreamedBody | None
        length: int | None
        if isinstance(body, bytes):
            data, length = body, len(body)
        elif body is not None:
            data, length = body, body.length
        elif request.method not in _BODYLESS_METHODS:
            # A POST/PUT with no body still says so, as aiohttp's client did.
            data, length = None, 0
        else:
            data, length = None, None
        headers = upstream_request_headers(
            request.headers,
            content_length=length,
            forwarded_for=request.remote,
            forwarded_proto=request.scheme,
            request_id=request_id,
            authorization=upstream.authorization,
            strip=upstream.strip_headers,
        )
        if span is not None:
            span.inject(headers)
        try:
            return await upstream.client.request(
                request.method,
                upstream.target(request.raw_path),
                headers.items(),
                data,
                chunked=data is not None and length is None,
            )
        except UpstreamPoolTimeout:
            status, code = 503, "upstream_pool_exhausted"
            error = "every upstream connection stayed busy"
            self._metrics.upstream_errors.labels(arm, "pool_timeout").inc()
        except UpstreamTimeout:
            status, code, error = 504, "upstream_timeout", "upstream timed out before responding"
            self._upstream_failed(arm, "timeout")
        except UpstreamError as exc:
            if isinstance(body, StreamedBody) and body.timed_out:
                self._metrics.client_timeouts.labels("body").inc()
                error = "the request body did not arrive in time"
                raise FailedExchange(body_timeout_response(arm, request_id), error) from None
            status, code = 502, "upstream_unreachable"
            error = f"upstream unreachable: {type(exc).__name__}"
            self._upstream_failed(arm, exc.kind)
        # The upstream never answered: the user gets the gateway's own error instead.
        raise FailedExchange(
            error_response(status, error, code, arm=arm, request_id=request_id), error
        )

    async def _relay(
        self,
        request: web.BaseRequest,
        answer: UpstreamResponse,
        arm: str,
        request_id: str,
        capture: Capture | None,
    ) -> web.StreamResponse:
        """The upstream's answer to the user, teed into a mirrored request's `capture`."""
        headers = response_headers(answer.headers)
        headers[ARM_HEADER] = arm
        headers[REQUEST_ID_HEADER] = request_id
        if answer.content_type == "text/event-stream":
            headers["X-Accel-Buffering"] = "no"
        length = answer.content_length
        if length is not None and length <= _WHOLE_BODY_BYTES and request.method != "HEAD":
            # A small body of known length: one read, one write (headers and body in one
            # syscall), and an upstream failure can still become a clean 502.
            try:
                payload = await answer.read()
            except UpstreamError as exc:
                error = f"upstream broke the response: {type(exc).__name__}"
                self._upstream_failed(arm, "mid_stream")
                broken = error_response(
                    502, error, "upstream_broken_response", arm=arm, request_id=request_id
                )
                raise FailedExchange(broken, error) from None
            if capture is not None:
                capture.feed(payload)
            del headers["Content-Length"]
            return web.Response(
                status=answer.status, reason=answer.reason, headers=headers, body=payload
            )
        response = web.StreamResponse(status=answer.status, reason=answer.reason, headers=headers)
        await response.prepare(request)
        try:
            while chunk := await answer.read_chunk():
                if capture is not None:
                    capture.feed(chunk)
                await response.write(chunk)
        except UpstreamError as exc:
            # Headers are out: the only honest signal left is to cut the connection.
            error = f"upstream broke mid-stream: {type(exc).__name__}"
            self._upstream_failed(arm, "mid_stream")
            log.warning("proxy: %s (%s, request %s)", error, arm, request_id)
            if request.transport is not None:
                request.transport.close()
            raise FailedExchange(response, error) from None
        await response.write_eof()
        return response

    def _finish(
        self,
        arm: str,
        started: float,
        status: int | None,
        error: str | None,
        ttfb_ms: float | None,
        answer: UpstreamResponse | None,
        span: ServerSpan | None,
        job: ShadowJob | None,
    ) -> None:
        """Record the request once, at its end (Pingora's logging hook): metrics, per-arm
        stats, the span, and production's answer handed over to the mirror."""
        elapsed = time.perf_counter() - started
        self._count_request(arm, status)
        self._latency[arm].observe(elapsed)
        self._arm_stats.record(arm, status, elapsed, ttfb_ms)
        if span is not None:
            capture = job.capture if job is not None else None
            span.finish(arm=arm, status=status, error=error, capture=capture, response=answer)
        if job is not None:
            job.finish(
                status=status,
                error=error,
                headers=answer.headers if answer is not None else None,
                latency_ms=elapsed * 1000,
                ttfb_ms=ttfb_ms,
            )
