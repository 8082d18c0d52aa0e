"""OpenTelemetry spans of the data plane: a server span per proxied request, and a span per
mirror in a trace of its own, linked to the user's, so a slow candidate never holds the user's
trace open. Each upstream receives the W3C trace context of the span it serves.

Needs the `otel` extra; `gateway.tracing.setup` decides whether this module is used at all.
Attribute names follow the OpenTelemetry GenAI semantic conventions (development status).
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from opentelemetry.context import Context
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    set_span_in_context,
)

from gateway import __version__
from gateway.answers import Answer, reassemble
from gateway.constants import ARM_SHADOW
from gateway.errors import ConfigError
from gateway.proxy.capture import Capture

if TYPE_CHECKING:
    from gateway.proxy.upstream_client import UpstreamResponse
    from gateway.shadow.mirror import Captured, MirrorRequest

# The semantic-convention names, spelled out: the semconv package keeps the GenAI ones in a
# private, incubating module (a test checks that both agree).
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
# The project's own attributes.
SHADOWGATE_ARM: Final = "shadowgate.arm"
SHADOWGATE_MIRRORED: Final = "shadowgate.mirrored"
SHADOWGATE_NOISE: Final = "shadowgate.noise"
SHADOWGATE_SHADOW_OUTCOME: Final = "shadowgate.shadow.outcome"

# OpenAI routes by their last segments, and the semantic conventions' operation for each.
_OPERATIONS: Final = (
    ("/chat/completions", "chat"),
    ("/completions", "text_completion"),
    ("/responses", "chat"),
    ("/embeddings", "embeddings"),
)


def operation_name(route: str) -> str | None:
    for suffix, operation in _OPERATIONS:
        if route.endswith(suffix):
            return operation
    return None


def traceparent(context: SpanContext) -> str:
    """The W3C `traceparent` value of a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _request_attributes(route: str, document: Any) -> tuple[str | None, dict[str, Any]]:
    """The operation and the GenAI request attributes of a parsed request body."""
    attributes: dict[str, Any] = {}
    operation = operation_name(route)
    if operation is not None:
        attributes[GEN_AI_OPERATION_NAME] = operation
        model = document.get("model") if isinstance(document, dict) else None
        if isinstance(model, str):
            attributes[GEN_AI_REQUEST_MODEL] = model
            return f"{operation} {model}", attributes
    return operation, attributes


def _record_answer(span: Span, answer: Answer) -> None:
    if answer.model is not None:
        span.set_attribute(GEN_AI_RESPONSE_MODEL, answer.model)
    if answer.id is not None:
        span.set_attribute(GEN_AI_RESPONSE_ID, answer.id)
    if answer.finish_reason is not None:
        span.set_attribute(GEN_AI_RESPONSE_FINISH_REASONS, [answer.finish_reason])
    if answer.usage is not None:
        if answer.usage.prompt_tokens is not None:
            span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, answer.usage.prompt_tokens)
        if answer.usage.completion_tokens is not None:
            span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, answer.usage.completion_tokens)


class ServerSpan:
    """The span of one proxied request, from arm assignment to the end of the response."""

    __slots__ = ("_propagator", "span")

    def __init__(self, span: Span, propagator: TextMapPropagator) -> None:
        self.span = span
        self._propagator = propagator

    @property
    def context(self) -> SpanContext:
        return self.span.get_span_context()

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """The user's trace context for the upstream that serves the user (replacing the
        client's own `traceparent`, whose span is this one's parent)."""
        self._propagator.inject(headers, context=set_span_in_context(self.span, Context()))

    def finish(
        self,
        *,
        arm: str,
        status: int | None,
        error: str | None,
        capture: Capture | None,
        response: UpstreamResponse | None,
    ) -> None:
        """Record the outcome and end the span. Response attributes come from the captured
        answer of a mirrored request; other answers are streamed through unread."""
        span = self.span
        if span.is_recording():
            span.set_attribute(SHADOWGATE_ARM, arm)
            if status is not None:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error))
            elif status is not None and status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            if capture is not None:
                span.set_attribute(SHADOWGATE_MIRRORED, True)
                if error is None and response is not None and status is not None and status < 400:
                    answer = reassemble(
                        bytes(capture.buffer),
                        content_type=response.headers.get("Content-Type"),
                        content_encoding=response.headers.get("Content-Encoding"),
                        limit=capture.limit * 4,
                    )
                    _record_answer(span, answer)
        span.end()


class MirrorSpan:
    """The span of one mirror: the root of its own trace, linked to the user's span."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def traceparent(self) -> str:
        return traceparent(self.span.get_span_context())

    def answered(self, candidate: Captured, outcome: str, *, limit: int) -> None:
        """Record the candidate's answer (reassembled from its capture) and the outcome."""
        span = self.span
        if not span.is_recording():
            return
        span.set_attribute(SHADOWGATE_SHADOW_OUTCOME, outcome)
        if candidate.status is not None:
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, candidate.status)
        if candidate.error is not None or candidate.status is None or candidate.status >= 400:
            span.set_status(Status(StatusCode.ERROR, candidate.error))
            return
        answer = reassemble(
            candidate.body,
            content_type=candidate.content_type,
            content_encoding=candidate.content_encoding,
            limit=limit,
        )
        _record_answer(span, answer)

    def end(self, task: asyncio.Task[None]) -> None:
        """Done-callback of the mirror's task: ends the span however the task ended."""
        if task.cancelled():
            self.span.set_status(Status(StatusCode.ERROR, "mirror cancelled"))
        elif (exc := task.exception()) is not None:
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        self.span.end()


class Tracing:
    """The tracer and propagator one process uses; built at the entry point, passed down."""

    def __init__(
        self, *, provider: TracerProvider, propagator: TextMapPropagator | None = None
    ) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("shadowgate", __version__)
        # OTEL_PROPAGATORS (W3C trace context and baggage by default), as the API reads it.
        self.propagator = propagator or get_global_textmap()

    def server_span(self, request: web.BaseRequest, document: Any) -> ServerSpan:
        """Start the span of a proxied request, a child of the client's trace context if any."""
        name, attributes = _request_attributes(request.path, document)
        attributes[HTTP_REQUEST_METHOD] = request.method
        attributes[URL_PATH] = request.path
        span = self.tracer.start_span(
            name or request.method,
            context=self.propagator.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        return ServerSpan(span, self.propagator)

    def mirror_span(self, mirror: MirrorRequest) -> MirrorSpan:
        """Start a mirror's span in a new trace, linked to the user's span, and put its trace
        context (never the user's) into the mirror's headers."""
        name, attributes = _request_attributes(mirror.route, mirror.document)
        attributes[HTTP_REQUEST_METHOD] = mirror.method
        attributes[URL_PATH] = mirror.route
        attributes[SHADOWGATE_ARM] = ARM_SHADOW
        attributes[SHADOWGATE_NOISE] = mirror.noise
        span = self.tracer.start_span(
            name or mirror.method,
            context=Context(),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            links=[Link(mirror.user_span)] if mirror.user_span is not None else None,
        )
        self.propagator.inject(mirror.headers, context=set_span_in_context(span, Context()))
        return MirrorSpan(span)

    def shutdown(self) -> None:
        """Export what is left and stop; blocks, so call it off the event loop."""
        self.provider.shutdown()


def _exporter(name: str) -> SpanExporter:
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        installed = sorted(e.name for e in entry_points(group="opentelemetry_traces_exporter"))
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: no span exporter {name!r} is installed "
            f"(installed: {', '.join(installed) or 'none'})"
        )
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def tracing_from_environment(*, service_name: str, exporters: list[str]) -> Tracing:
    """A batch-exporting provider configured by the SDK from `OTEL_*`; `service_name` applies
    unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names the service."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    return Tracing(provider=provider)
