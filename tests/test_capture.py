"""Reassembly of captured OpenAI answers: JSON and SSE, chat, completions and responses."""

from __future__ import annotations

import gzip

import orjson
import pytest

from gateway.answers import Answer, reassemble
from gateway.proxy.capture import Capture


def sse(*events: object) -> bytes:
    out = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events)
    return out + b"data: [DONE]\n\n"


def answer(
    body: bytes, content_type: str = "application/json", encoding: str | None = None
) -> Answer:
    return reassemble(body, content_type=content_type, content_encoding=encoding, limit=1 << 20)


def test_chat_completion_json() -> None:
    body = orjson.dumps(
        {
            "choices": [
                {"index": 0, "message": {"content": "Hi there"}, "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )
    result = answer(body)
    assert (result.text, result.finish_reason, result.streamed) == ("Hi there", "length", False)
    assert result.usage is not None and result.usage.total_tokens == 5


def test_streamed_chat_is_joined_with_usage_from_the_last_chunk() -> None:
    body = sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    )
    result = answer(body, "text/event-stream; charset=utf-8")
    assert (result.text, result.finish_reason, result.streamed) == ("Hello", "stop", True)
    assert result.usage is not None and result.usage.completion_tokens == 2


def test_streamed_completion_and_keepalive_comments() -> None:
    body = b": keep-alive\n\n" + sse(
        {"choices": [{"index": 0, "text": "4"}]},
        {"choices": [{"index": 0, "text": "2", "finish_reason": "stop"}]},
    )
    result = answer(body, "text/event-stream")
    assert (result.text, result.finish_reason) == ("42", "stop")


def test_responses_api_json_and_stream() -> None:
    doc = {
        "object": "response",
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "Yes."}]}],
        "usage": {"input_tokens": 4, "output_tokens": 1, "total_tokens": 5},
    }
    result = answer(orjson.dumps(doc))
    assert (result.text, result.finish_reason) == ("Yes.", "stop")
    assert result.usage is not None and result.usage.prompt_tokens == 4
    streamed = answer(
        sse(
            {"type": "response.output_text.delta", "delta": "Ye"},
            {"type": "response.output_text.delta", "delta": "s."},
            {"type": "response.completed", "response": {"usage": doc["usage"]}},
        ),
        "text/event-stream",
    )
    assert (streamed.text, streamed.finish_reason) == ("Yes.", "stop")


def test_tool_calls_are_kept_as_text() -> None:
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    body = orjson.dumps(
        {"choices": [{"index": 0, "message": {"content": None, "tool_calls": call}}]}
    )
    text = answer(body).text
    assert text is not None and '"name":"f"' in text


def test_gzip_body_is_decoded_after_the_fact() -> None:
    body = gzip.compress(orjson.dumps({"choices": [{"index": 0, "text": "zipped"}]}))
    assert answer(body, encoding="gzip").text == "zipped"


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"<html>", "text/html", "not JSON"),
        (b"data: {broken\n\n", "text/event-stream", "malformed stream event"),
        (b'{"error": {"message": "overloaded"}}', "application/json", "overloaded"),
        (b"\x1f\x8b garbage", "application/json", "undecodable"),
    ],
)
def test_garbage_is_an_error_not_an_exception(body: bytes, content_type: str, error: str) -> None:
    encoding = "gzip" if body.startswith(b"\x1f\x8b") else None
    result = answer(body, content_type, encoding)
    assert result.error is not None and error in result.error


def test_capture_keeps_at_most_its_limit() -> None:
    capture = Capture(10)
    for chunk in (b"12345", b"67890", b"abc"):
        capture.feed(chunk)
    assert bytes(capture.buffer) == b"1234567890"
    assert capture.truncated


@pytest.mark.parametrize("content_type", ["text/event-stream", None])
def test_truncated_stream_keeps_the_text_before_the_cut(content_type: str | None) -> None:
    delta = {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}
    body = sse(delta, delta)[:-20]  # cut inside the second event
    result = reassemble(
        body, content_type=content_type, content_encoding=None, limit=1 << 20, truncated=True
    )
    assert result.text == "Hello"


def test_truncated_json_is_not_parsed_and_says_why() -> None:
    body = b'{"choices": [{"index": 0, "message": {"content": "' + b"x" * 4096
    result = reassemble(
        body, content_type="application/json", content_encoding=None, limit=1 << 20, truncated=True
    )
    assert result.text is None
    assert result.error is not None and "capture limit" in result.error
