"""OpenTelemetry traces: the user's server span, the mirror's own linked trace, W3C context to
each upstream, and the scoring worker's evaluation event, read back from the SDK's in-memory
exporter; the `OTEL_*` switches that turn tracing on and off."""

from __future__ import annotations

import ast
import asyncio
import gzip
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.trace import SpanKind, StatusCode

from gateway.answers import reassemble
from gateway.config import ScoringConfig, parse_config
from gateway.errors import ConfigError
from gateway.records import PairRecord, ScoreRecord
from gateway.redis_client import connect
from gateway.serving.processes import Child, free_port, shadowgate_command
from gateway.tracing import spans as gateway_tracing
from gateway.tracing.setup import exporter_names, load_tracing
from gateway.tracing.spans import Tracing, traceparent
from scoring import tracing as scoring_tracing
from scoring.embedder import Embedder
from scoring.tracing import EvaluationEvents
from scoring.worker import ScoringWorker
from tests.conftest import Rig, RigFactory
from tests.test_e2e import write_config
from tests.test_shadow import SHADOW_ALL, chat_body, read_pairs, send_chat, shadow
from tests.test_worker import pair

CLIENT_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
CLIENT_SPAN = 0xB7AD6B7169203331
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE:032x}-{CLIENT_SPAN:016x}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(provider=provider)
    provider.shutdown()


def only(spans: list[ReadableSpan], kind: SpanKind) -> ReadableSpan:
    (span,) = [s for s in spans if s.kind == kind]
    return span


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def mirrored_request(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> tuple[Rig, ReadableSpan, ReadableSpan, PairRecord]:
    """One mirrored chat request sent with a client trace context; its two spans and pair."""
    rig = await make_rig(tracing=tracing, **SHADOW_ALL, shadow=shadow())
    status, _ = await send_chat(rig, traceparent=CLIENT_TRACEPARENT)
    assert status == 200
    (pair,) = await read_pairs(rig, 1)
    spans = list(exporter.get_finished_spans())
    return rig, only(spans, SpanKind.SERVER), only(spans, SpanKind.CLIENT), pair


async def test_request_is_a_server_span_with_the_genai_attributes_of_its_answer(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig, server, _, _ = await mirrored_request(make_rig, tracing, exporter)
    assert server.name == "chat m"
    assert attrs(server) == {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.response.model": "m",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 7,
        "shadowgate.arm": "production",
        "shadowgate.mirrored": True,
    }
    # A child of the client's span, and production is told so.
    assert server.parent is not None and server.parent.span_id == CLIENT_SPAN
    assert server.context is not None and server.context.trace_id == CLIENT_TRACE
    (seen,) = rig.production.seen
    assert seen.headers.getall("traceparent") == [traceparent(server.context)]


async def test_mirror_is_a_trace_of_its_own_linked_to_the_users(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig, server, mirror, pair = await mirrored_request(make_rig, tracing, exporter)
    assert server.context is not None and mirror.context is not None
    assert mirror.parent is None
    assert mirror.context.trace_id != CLIENT_TRACE
    assert [link.context for link in mirror.links] == [server.context]
    assert mirror.name == "chat m"
    assert attrs(mirror)["shadowgate.arm"] == "shadow"
    assert attrs(mirror)["shadowgate.shadow.outcome"] == "sent"
    assert attrs(mirror)["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs(mirror)["gen_ai.usage.output_tokens"] == 7
    # The candidate sees the mirror's context, never the user's; the pair carries it on.
    (seen,) = rig.candidate.seen
    assert seen.headers["traceparent"] == traceparent(mirror.context)
    assert f"{CLIENT_TRACE:032x}" not in str(seen.multi_headers)
    assert pair.traceparent == traceparent(mirror.context)


async def test_users_span_ends_while_a_hung_mirror_is_still_open(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig = await make_rig(tracing=tracing, **SHADOW_ALL, shadow=shadow())
    rig.candidate.mode = "hang"
    status, _ = await send_chat(rig)
    assert status == 200
    (server,) = exporter.get_finished_spans()
    assert server.kind == SpanKind.SERVER
    assert rig.gateway.dispatcher is not None
    await rig.gateway.dispatcher.close()
    mirror = only(list(exporter.get_finished_spans()), SpanKind.CLIENT)
    assert mirror.status.status_code == StatusCode.ERROR
    assert server.context is not None
    assert [link.context for link in mirror.links] == [server.context]


async def test_canary_user_context_reaches_the_candidate_and_unread_answers_add_nothing(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig = await make_rig(tracing=tracing, traffic={"canary_percent": 100})
    status, _ = await send_chat(rig)
    assert status == 200
    (server,) = exporter.get_finished_spans()
    assert server.context is not None
    (seen,) = rig.candidate.seen
    assert seen.headers["traceparent"] == traceparent(server.context)
    assert attrs(server)["shadowgate.arm"] == "canary"
    # Not mirrored, so the answer streamed through unread: no response attributes.
    assert not any(key.startswith("gen_ai.response") for key in attrs(server))
    assert attrs(server)["gen_ai.request.model"] == "m"


async def test_other_routes_are_plain_http_spans_and_failures_are_errors(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig = await make_rig(tracing=tracing)
    resp = await rig.client.get("/v1/models")
    assert resp.status == 200
    down = await make_rig(
        tracing=tracing, upstreams={"production": {"url": f"http://127.0.0.1:{free_port()}"}}
    )
    resp = await down.client.post("/v1/chat/completions", data=chat_body())
    assert resp.status == 502
    ok, failed = exporter.get_finished_spans()
    assert ok.name == "GET"
    assert not any(key.startswith("gen_ai.") for key in attrs(ok))
    assert ok.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert attrs(failed)["http.response.status_code"] == 502


async def test_a_request_refused_before_any_upstream_still_ends_its_span(
    make_rig: RigFactory, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    rig = await make_rig(
        tracing=tracing,
        listen={"body_buffer_bytes": 1024},
        upstreams={"production": {"max_streamed_bodies": 1}},
    )
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"x" * 2048
        await release.wait()

    first = asyncio.create_task(rig.client.post("/v1/files", data=slow_body()))
    await rig.wait_for(lambda: rig.gateway.production.pool_in_use() == 1)
    resp = await rig.client.post("/v1/files", data=b"y" * 100_000)
    assert resp.status == 503
    (refused,) = exporter.get_finished_spans()
    assert attrs(refused)["http.response.status_code"] == 503
    assert refused.status.status_code == StatusCode.ERROR
    release.set()
    assert (await first).status == 200
    assert len(exporter.get_finished_spans()) == 2


def sse(*events: bytes) -> bytes:
    return b"".join(b"data: " + event + b"\n\n" for event in events)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"id": "r-1", "model": "gpt-x", "choices": []}', "application/json"),
        (
            sse(
                b'{"id": "r-1", "model": "gpt-x", "choices": [{"index": 0, "delta": {}}]}',
                b'{"id": "r-1", "model": "gpt-x", "choices": [{"index": 0, "delta": {}}]}',
            ),
            "text/event-stream",
        ),
        (b'{"object": "response", "id": "r-1", "model": "gpt-x", "status": "completed"}', None),
        (
            sse(
                b'{"type": "response.created", "response": {"id": "r-1", "model": "gpt-x"}}',
                b'{"type": "response.output_text.delta", "item_id": "msg-2", "delta": "Hi"}',
            ),
            "text/event-stream",
        ),
    ],
    ids=["chat-json", "chat-stream", "responses-json", "responses-stream"],
)
def test_answer_id_and_model_are_reassembled_from_bodies_and_streams(
    body: bytes, content_type: str | None
) -> None:
    answer = reassemble(body, content_type=content_type, content_encoding=None, limit=1 << 20)
    assert (answer.id, answer.model) == ("r-1", "gpt-x")


def traced_pair(i: int, candidate_text: str, parent: str | None) -> PairRecord:
    return pair(i, candidate_text).model_copy(update={"traceparent": parent})


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(ScoringConfig(threads=1))


async def test_scored_pair_is_an_evaluation_event_in_its_mirrors_trace(
    redis_url: str, tracing: Tracing, exporter: InMemorySpanExporter, embedder: Embedder
) -> None:
    config = parse_config(
        {
            "upstreams": {"production": {"url": "http://127.0.0.1:1"}},
            "scoring": {"batch_size": 8, "max_wait_ms": 20, "threads": 1},
        },
        env={},
    )
    mirrors = [
        tracing.tracer.start_span("mirror", kind=SpanKind.CLIENT).get_span_context()
        for _ in range(2)
    ]
    pairs = [
        traced_pair(1, "Paris is the capital of France.", traceparent(mirrors[0])),
        traced_pair(2, "Our refund policy does not cover damaged items.", traceparent(mirrors[1])),
        traced_pair(3, "France's capital is Paris.", None),  # a gateway without tracing
    ]
    redis = connect(config.redis, redis_url)
    try:
        for record in pairs:
            await redis.xadd("shadowgate:pairs", {"data": record.to_json()})
        worker = ScoringWorker(
            config=config,
            redis=redis,
            embedder=embedder,
            consumer="w1",
            evaluations=EvaluationEvents(tracing),
        )
        await worker.ensure_groups()
        while worker.scored < len(pairs):
            batch = await worker.next_batch(block_ms=50)
            await worker.process(batch)
        entries: Any = await redis.xrange("shadowgate:scores")
        scores = {
            score.pair_id: score
            for score in (ScoreRecord.model_validate_json(f[b"data"]) for _, f in entries)
        }
    finally:
        await redis.aclose()

    spans = {attrs(s)["shadowgate.pair.id"]: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"pair-1", "pair-2"}
    for mirror, pair_id, label in (
        (mirrors[0], "pair-1", "pass"),
        (mirrors[1], "pair-2", "review"),
    ):
        span = spans[pair_id]
        assert span.parent is not None
        assert (span.parent.trace_id, span.parent.span_id) == (mirror.trace_id, mirror.span_id)
        (event,) = span.events
        assert event.name == "gen_ai.evaluation.result"
        event_attributes = dict(event.attributes or {})
        assert event_attributes["gen_ai.evaluation.name"] == "shadowgate.divergence"
        assert event_attributes["gen_ai.evaluation.score.label"] == label
        assert event_attributes["gen_ai.evaluation.score.value"] == pytest.approx(
            scores[pair_id].excess
        )
    assert scores["pair-2"].queued
    assert "gen_ai.evaluation.explanation" in dict(spans["pair-2"].events[0].attributes or {})


def test_attribute_names_are_the_semantic_conventions() -> None:
    ours = {
        name: value
        for module in (gateway_tracing, scoring_tracing)
        for name, value in vars(module).items()
        if name.startswith("GEN_AI_") and name != "GEN_AI_EVALUATION_RESULT"
    }
    assert len(ours) == 11
    for name, value in ours.items():
        assert getattr(gen_ai_attributes, name) == value
    assert gen_ai_attributes.GenAiOperationNameValues.CHAT.value == "chat"
    assert gen_ai_attributes.GenAiOperationNameValues.TEXT_COMPLETION.value == "text_completion"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "gw"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp_proto_http"]),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            ["otlp_proto_grpc"],
        ),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp_proto_http"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_configured(
    environ: dict[str, str], expected: list[str]
) -> None:
    assert exporter_names(environ) == expected
    if not expected:
        assert load_tracing(service_name="shadowgate-gateway", environ=environ) is None


def test_environment_builds_a_provider_named_for_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    environ = {"OTEL_TRACES_EXPORTER": "console"}
    built = load_tracing(service_name="shadowgate-worker", environ=environ)
    assert built is not None
    assert built.provider.resource.attributes["service.name"] == "shadowgate-worker"
    built.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu-1")
    built = load_tracing(service_name="shadowgate-worker", environ=environ)
    assert built is not None
    assert built.provider.resource.attributes["service.name"] == "gateway-eu-1"
    built.shutdown()


def test_unknown_exporter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="OTEL_TRACES_EXPORTER: no span exporter 'zipkin'"):
        load_tracing(service_name="shadowgate-gateway", environ={"OTEL_TRACES_EXPORTER": "zipkin"})


def test_without_the_extra_tracing_is_off_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A None entry in sys.modules makes the import fail as it does without the package.
    monkeypatch.setitem(sys.modules, "gateway.tracing.spans", None)
    with caplog.at_level(logging.WARNING, logger="shadowgate.tracing"):
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
        assert load_tracing(service_name="shadowgate-gateway", environ=environ) is None
    assert "otel extra is not installed" in caplog.text


def test_pair_records_without_trace_context_still_load() -> None:
    old = b'{"schema_version": 1, "id": "p", "ts": 0, "route": "/v1/chat/completions",'
    old += b' "production": {"status": 200}, "candidate": {"status": 200}}'
    assert PairRecord.from_json(old).traceparent is None


class OtlpSink:
    """An OTLP/HTTP trace receiver on a thread: keeps every span it is sent, by service."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with sink._lock:
                    for resource_spans in request.resource_spans:
                        service = next(
                            a.value.string_value
                            for a in resource_spans.resource.attributes
                            if a.key == "service.name"
                        )
                        for scope in resource_spans.scope_spans:
                            sink.spans.extend((service, span) for span in scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate: Any, timeout_s: float) -> list[tuple[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            time.sleep(0.1)
        raise AssertionError(f"spans received: {[(s, span.name) for s, span in spans]}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.e2e
def test_serve_exports_both_traces_and_the_evaluation_over_otlp(tmp_path: Path) -> None:
    """`shadowgate serve` and its embedded worker, configured by OTEL_* alone."""
    sink = OtlpSink()
    ports = {name: free_port() for name in ("production", "candidate", "gateway", "control")}
    children: list[Child] = []
    try:
        for profile in ("production", "candidate"):
            command = shadowgate_command("simulate", "--profile=fast", f"--port={ports[profile]}")
            children.append(Child(profile, command, log_path=tmp_path / f"{profile}.log", env={}))
        for child, profile in zip(children, ("production", "candidate"), strict=True):
            child.wait_ready(f"http://127.0.0.1:{ports[profile]}/healthz")
        write_config(tmp_path / "gateway.yaml", ports, tmp_path / "state", shadow_percent=100)
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        gateway = Child(
            "gateway",
            shadowgate_command("serve", "--config", str(tmp_path / "gateway.yaml")),
            log_path=tmp_path / "gateway.log",
            env=env,
        )
        children.append(gateway)
        gateway.wait_ready(f"http://127.0.0.1:{ports['control']}/readyz", timeout_s=30)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{ports['gateway']}/v1", api_key="k", max_retries=0
        )
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])
        client.close()

        def evaluated(spans: list[tuple[str, Any]]) -> bool:
            return any(span.name == "evaluate divergence" for _, span in spans)

        spans = sink.wait_for(evaluated, timeout_s=45)
    finally:
        for child in reversed(children):
            child.stop()
        sink.close()
    by_kind = {(service, span.kind): span for service, span in spans}
    server = by_kind["shadowgate-gateway", OtlpSpan.SPAN_KIND_SERVER]
    mirror = by_kind["shadowgate-gateway", OtlpSpan.SPAN_KIND_CLIENT]
    evaluation = by_kind["shadowgate-worker", OtlpSpan.SPAN_KIND_INTERNAL]
    server_attributes = {a.key: a.value for a in server.attributes}
    assert server_attributes["gen_ai.request.model"].string_value == "m"
    assert server_attributes["gen_ai.usage.output_tokens"].int_value > 0
    assert mirror.trace_id != server.trace_id
    assert [(link.trace_id, link.span_id) for link in mirror.links] == [
        (server.trace_id, server.span_id)
    ]
    assert (evaluation.trace_id, evaluation.parent_span_id) == (mirror.trace_id, mirror.span_id)
    (event,) = evaluation.events
    assert event.name == "gen_ai.evaluation.result"


def test_spans_name_the_mirror_values_without_importing_the_dispatcher() -> None:
    """The dispatcher starts mirror spans, so the spans module importing it back (even for
    types) would close an import circle."""
    tree = ast.parse(Path(gateway_tracing.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "gateway.shadow.dispatcher" not in imported
    assert "gateway.shadow.mirror" in imported
