"""Credentials in the query string (`?api-key=...`) never reach a pair record, a log line or a
span, nor a mirror (the candidate's request line: `tests/test_credentials.py`); production
receives the user's target untouched."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.proxy.query_credentials import credential_params, strip_credential_params
from gateway.tracing.spans import Tracing
from tests.conftest import Rig, RigFactory
from tests.raw_upstream import RawUpstream
from tests.test_shadow import read_pairs

SECRETS = ("azure-query-secret-1", "google-query-secret-2", "oauth-query-secret-3", "tenant-4")
TARGET = (
    "/v1/chat/completions?api-version=2024-06-01&api-key=azure-query-secret-1"
    "&Key=google-query-secret-2&deployment=a%20b%26c&ACCESS_TOKEN=oauth-query-secret-3"
    "&flag&tenant_sig=tenant-4"
)
STRIPPED = "/v1/chat/completions?api-version=2024-06-01&deployment=a%20b%26c&flag"
CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


def candidate_config(url: str) -> dict[str, Any]:
    return {"url": url, "api_key": "candidate-key", "credential_params": ["Tenant_Sig"]}


async def post_chat(rig: Rig) -> None:
    resp = await rig.client.post(
        TARGET, data=CHAT, headers={"Content-Type": "application/json", "x-user-id": "u1"}
    )
    assert resp.status == 200
    await resp.read()


async def test_production_receives_the_query_untouched(make_rig: RigFactory) -> None:
    rig = await make_rig(traffic={"shadow_percent": 100}, shadow={"noise_percent": 0})
    await post_chat(rig)
    assert rig.production.seen[0].path_qs == TARGET


async def garbage_answer(writer: asyncio.StreamWriter) -> None:
    """A head aiohttp refuses: its error quotes the URL it called."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n")
    await writer.drain()


async def test_query_credentials_reach_no_pair_record_log_or_span(
    make_rig: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    caplog.set_level(logging.DEBUG)
    candidate = await RawUpstream(garbage_answer).start()
    try:
        rig = await make_rig(
            tracing=Tracing(provider=provider),
            traffic={"shadow_percent": 100},
            shadow={"noise_percent": 100},
            upstreams={"candidate": candidate_config(candidate.url)},
        )
        await post_chat(rig)
        (pair,) = await read_pairs(rig, 1)
    finally:
        await candidate.close()
        provider.shutdown()
    assert pair.candidate.error is not None  # the error that would have quoted the key
    spans = [span.to_json() for span in exporter.get_finished_spans()]
    # The test's production server logs its own access lines; the gateway has no access log.
    records = [record for record in caplog.records if record.name != "aiohttp.access"]
    assert records
    logged = "".join(f"{record.getMessage()} {record.__dict__}" for record in records)
    for secret in SECRETS:
        assert secret not in pair.model_dump_json()
        assert secret not in logged
        assert not any(secret in span for span in spans)
    noise = [seen for seen in rig.production.seen if "x-shadowgate-shadow" in seen.headers]
    assert [seen.path_qs for seen in noise] == [STRIPPED]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/v1/models", "/v1/models"),
        ("/v1/models?api-key=s", "/v1/models"),
        ("/v1/models?API-KEY=s&limit=5", "/v1/models?limit=5"),
        ("/v1/models?a=%20b&&api%5Fkey=s&c", "/v1/models?a=%20b&&c"),
        ("/v1/models?a=1&token&b=2", "/v1/models?a=1&b=2"),
        ("/v1/models?monkey=1&keys=2&key=3", "/v1/models?monkey=1&keys=2"),
        ("/v1/models?", "/v1/models?"),
    ],
)
def test_strip_removes_credential_params_and_keeps_the_rest_byte_identical(
    target: str, expected: str
) -> None:
    assert strip_credential_params(target, credential_params()) == expected
