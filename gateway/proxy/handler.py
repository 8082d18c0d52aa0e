"""The data plane: every request is forwarded to the upstream of its arm and streamed back.

The hot path reads top to bottom: read the body (up to `listen.body_buffer_bytes`, before any
upstream connection is taken), assign the arm, maybe start a mirror, forward and stream
(teeing into a bounded capture when mirrored), hand the capture over. Upstream failures before
the response started become OpenAI-style 502/503/504 errors, a client too slow with its body a
408.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson
from aiohttp import HttpVersion11, hdrs, web

from gateway.config import Config
from gateway.constants import (
    ARM_CANARY,
    ARM_HEADER,
    ARM_PRODUCTION,
    REQUEST_ID_HEADER,
    SHADOW_DROPPED_TOO_LARGE,
)
from gateway.errors import ClientBodyTimeout, UpstreamError, UpstreamPoolTimeout, UpstreamTimeout
from gateway.metrics import Metrics
from gateway.proxy.arm_stats import ArmStats
from gateway.proxy.arms import ArmAssigner
from gateway.proxy.capture import Capture
from gateway.proxy.headers import response_headers, shadow_request_headers, upstream_request_headers
from gateway.proxy.model_names import ModelNames
from gateway.proxy.prompt_features import prompt_features
from gateway.proxy.request_body import StreamedBody, StreamSlots, read_body
from gateway.proxy.request_target import origin_form
from gateway.proxy.traffic import TrafficState
from gateway.proxy.upstream import Upstream
from gateway.proxy.upstream_client import UpstreamResponse
from gateway.shadow.dispatcher import Captured, MirrorRequest, ShadowDispatcher, ShadowJob

if TYPE_CHECKING:
    from gateway.tracing.spans import ServerSpan, Tracing

log = logging.getLogger("shadowgate.proxy")

_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})
_NOT_JSON = object()
# Bodies of known length up to this size are read whole and sent in one write.
_WHOLE_BODY_BYTES = 64 * 1024


def error_body(message: str, code: str) -> bytes:
    """An OpenAI-style error document produced by the gateway itself."""
    error = {"message": message, "type": "gateway_error", "param": None, "code": code}
    return orjson.dumps({"error": error})


def error_response(
    status: int, message: str, code: str, *, arm: str, request_id: str
) -> web.Response:
    """An OpenAI-style error response produced by the gateway itself."""
    return web.Response(
        status=status,
        body=error_body(message, code),
        content_type="application/json",
        headers={ARM_HEADER: arm, REQUEST_ID_HEADER: request_id},
    )


def _body_timeout_response(arm: str, request_id: str) -> web.Response:
    response = error_response(
        408,
        "the request body did not arrive in time",
        "client_body_timeout",
        arm=arm,
        request_id=request_id,
    )
    response.force_close()  # the rest of the body may still be on its way
    return response


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
        self._body_timeout_s = config.listen.body_timeout_s
        self._stream_slots = {
            ARM_PRODUCTION: StreamSlots(production.config.streamed_bodies_limit),
            ARM_CANARY: StreamSlots(candidate.config.streamed_bodies_limit if candidate else 0),
        }
        self._cutting = False
        self._capture_limit = config.capture.max_bytes
        self._noise_bp = round(config.shadow.noise_percent * 100)
        # Label children looked up once: `labels()` costs more than the increment itself.
        arms = (ARM_PRODUCTION, ARM_CANARY)
        self._ttfb = {arm: metrics.upstream_ttfb.labels(arm) for arm in arms}
        self._latency = {arm: metrics.upstream_latency.labels(arm) for arm in arms}
        self._requests: dict[tuple[str, int | None], Any] = {}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if expect := request.headers.get(hdrs.EXPECT):
            await _answer_expect(request, expect)
        request_id = request.headers.get(REQUEST_ID_HEADER) or os.urandom(16).hex()
        if not request.raw_path.startswith("/"):
            normalised = origin_form(request, self._metrics)
            if normalised is None:
                return error_response(
                    400,
                    "the request target must be a path",
                    "invalid_request_target",
                    arm=ARM_PRODUCTION,
                    request_id=request_id,
                )
            request = normalised
        try:
            body = await self._read_body(request)
        except asyncio.IncompleteReadError:
            self._metrics.client_disconnects.inc()
            return error_response(
                400,
                "request body ended early",
                "incomplete_body",
                arm=ARM_PRODUCTION,
                request_id=request_id,
            )
        except ClientBodyTimeout:
            self._metrics.client_timeouts.labels("body").inc()
            return _body_timeout_response(ARM_PRODUCTION, request_id)
        # A small body on a mirrored route is parsed once, for the drift features (always:
        # the rollout compares against the traffic before it began), the unit key and the mirror.
        document: Any = _parse_json(request, body) if self._mirrorable(body, request) else None
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
                    parsed = document if document is not None else _parse_json(request, body)
                    body = self._models.rewrite_body(body, parsed)
                return await self._forward(
                    request, self._candidate, ARM_CANARY, body, request_id, None, span
                )
            if assignment.shadow and self._dispatcher is not None:
                job = self._start_mirror(request, body, document, unit, request_id, span)
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
        limit = self._buffer_bytes
        if request.path in self._shadow_paths:
            limit = max(limit, self._max_body)
        return await read_body(
            request.content,
            length=request.content_length,
            limit=limit,
            timeout_s=self._body_timeout_s,
        )

    def _start_mirror(
        self,
        request: web.BaseRequest,
        body: bytes | StreamedBody | None,
        document: Any,
        unit: str | None,
        request_id: str,
        span: ServerSpan | None,
    ) -> ShadowJob | None:
        dispatcher = self._dispatcher
        assert dispatcher is not None
        if request.path not in self._shadow_paths or request.method != "POST":
            self._metrics.shadow_skipped.labels("route").inc()
            return None
        if not dispatcher.admits():
            # Saturated or the candidate's circuit is open: drop before building anything.
            return None
        if not isinstance(body, bytes):
            # No body, or one larger than the buffer: it streams, and only a whole body mirrors.
            if body is None:
                self._metrics.shadow_skipped.labels("no_body").inc()
            else:
                self._metrics.shadow.labels(SHADOW_DROPPED_TOO_LARGE).inc()
            return None
        if len(body) > self._max_body:
            self._metrics.shadow.labels(SHADOW_DROPPED_TOO_LARGE).inc()
            return None
        if "json" not in request.content_type:
            self._metrics.shadow_skipped.labels("content_type").inc()
            return None
        if document is None:
            document = _parse_json(request, body)
        if document is _NOT_JSON:
            self._metrics.shadow_skipped.labels("malformed_json").inc()
            return None
        if not isinstance(document, dict):
            self._metrics.shadow_skipped.labels("not_an_object").inc()
            return None
        mirror = MirrorRequest(
            route=request.path,
            path_qs=request.raw_path,
            method=request.method,
            document=document,
            headers=shadow_request_headers(
                request.headers, request_id=request_id, authorization=None
            ),
            unit=self._assigner.unit_hash(unit) if unit is not None else None,
            noise=self._assigner.chance(self._noise_bp),
            production_authorization=self._production.authorization
            or request.headers.get("Authorization"),
            user_span=span.context if span is not None else None,
        )
        return dispatcher.start(mirror)

    async def _send(
        self,
        request: web.BaseRequest,
        upstream: Upstream,
        arm: str,
        body: bytes | StreamedBody | None,
        request_id: str,
        span: ServerSpan | None,
    ) -> UpstreamResponse:
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
        return await upstream.client.request(
            request.method,
            upstream.target(request.raw_path),
            headers.items(),
            data,
            chunked=data is not None and length is None,
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
        streamed = body if isinstance(body, StreamedBody) else None
        if streamed is not None and not streamed.claim(self._stream_slots[arm]):
            # Refused before an upstream connection is taken: slow uploads hold at most their
            # share of the pool.
            self._metrics.requests_refused.labels("streamed_bodies_full").inc()
            if span is not None:
                span.finish(arm=arm, status=503, error="refused", capture=None, response=None)
            return error_response(
                503,
                "too many large request bodies in flight, retry later",
                "too_many_streamed_bodies",
                arm=arm,
                request_id=request_id,
            )
        # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        capture = Capture(self._capture_limit) if job else None
        upstream_response: UpstreamResponse | None = None
        ttfb_ms: float | None = None
        complete = False
        try:
            try:
                upstream_response = await self._send(request, upstream, arm, body, request_id, span)
            except UpstreamPoolTimeout:
                status, error = 503, "every upstream connection stayed busy"
                self._metrics.upstream_errors.labels(arm, "pool_timeout").inc()
                return error_response(
                    503, error, "upstream_pool_exhausted", arm=arm, request_id=request_id
                )
            except UpstreamTimeout:
                status, error = 504, "upstream timed out before responding"
                self._upstream_failed(arm, "timeout")
                return error_response(
                    504, error, "upstream_timeout", arm=arm, request_id=request_id
                )
            except UpstreamError as exc:
                if streamed is not None and streamed.timed_out:
                    status, error = 408, "the request body did not arrive in time"
                    self._metrics.client_timeouts.labels("body").inc()
                    return _body_timeout_response(arm, request_id)
                status, error = 502, f"upstream unreachable: {type(exc).__name__}"
                self._upstream_failed(arm, exc.kind)
                return error_response(
                    502, error, "upstream_unreachable", arm=arm, request_id=request_id
                )
            ttfb = time.perf_counter() - started
            ttfb_ms = ttfb * 1000
            self._ttfb[arm].observe(ttfb)
            status = upstream_response.status
            headers = response_headers(upstream_response.headers)
            headers[ARM_HEADER] = arm
            headers[REQUEST_ID_HEADER] = request_id
            if upstream_response.content_type == "text/event-stream":
                headers["X-Accel-Buffering"] = "no"
            length = upstream_response.content_length
            if length is not None and length <= _WHOLE_BODY_BYTES and request.method != "HEAD":
                # A small body of known length: one read, one write (headers and body in one
                # syscall), and an upstream failure can still become a clean 502.
                try:
                    payload = await upstream_response.read()
                except UpstreamError as exc:
                    status, error = 502, f"upstream broke the response: {type(exc).__name__}"
                    self._upstream_failed(arm, "mid_stream")
                    return error_response(
                        502, error, "upstream_broken_response", arm=arm, request_id=request_id
                    )
                if capture is not None:
                    capture.feed(payload)
                complete = True
                del headers["Content-Length"]
                return web.Response(
                    status=status, reason=upstream_response.reason, headers=headers, body=payload
                )
            response = web.StreamResponse(
                status=status, reason=upstream_response.reason, headers=headers
            )
            await response.prepare(request)
            try:
                while chunk := await upstream_response.read_chunk():
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
                return response
            await response.write_eof()
            complete = True
            return response
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
            if upstream_response is not None:
                if complete:
                    upstream_response.release()
                else:
                    upstream_response.close()
            elapsed = time.perf_counter() - started
            self._count_request(arm, status)
            self._latency[arm].observe(elapsed)
            self._arm_stats.record(arm, status, elapsed, ttfb_ms)
            if span is not None:
                span.finish(
                    arm=arm, status=status, error=error, capture=capture, response=upstream_response
                )
            if job is not None:
                job.finish(
                    Captured(
                        status=status if error is None else None,
                        body=bytes(capture.buffer) if capture else b"",
                        truncated=capture.truncated if capture else False,
                        content_type=upstream_response.headers.get("Content-Type")
                        if upstream_response is not None
                        else None,
                        content_encoding=upstream_response.headers.get("Content-Encoding")
                        if upstream_response is not None
                        else None,
                        latency_ms=elapsed * 1000,
                        ttfb_ms=ttfb_ms,
                        error=error,
                    )
                )


async def _answer_expect(request: web.BaseRequest, expect: str) -> None:
    """Answer `Expect` as aiohttp's router did when the data plane was an Application: a
    client waiting for `100 Continue` holds its body back until it gives up (curl: 1 s)."""
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    # The interim answer is no part of the response that follows, nor of its logged size.
    request.writer.output_size = 0
    await request.writer.drain()


def _parse_json(request: web.BaseRequest, body: bytes) -> Any:
    if "json" not in request.content_type:
        return _NOT_JSON
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _NOT_JSON
