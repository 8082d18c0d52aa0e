"""Answers of OpenAI-compatible endpoints, reassembled from a whole JSON body or an SSE stream
(Chat Completions, Completions, Responses API): text, finish reason, usage, id and model.

The capture tee hands it what it kept of a response after the response ended; replay hands it
a model's answer to a golden prompt. Never raises: what cannot be read becomes `error`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.records import Exchange, Usage


@dataclass(slots=True)
class Answer:
    """What a model said, reassembled from a JSON body or an SSE stream."""

    text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    streamed: bool = False
    error: str | None = None
    parts: list[str] = field(default_factory=list)
    id: str | None = None
    model: str | None = None


def _decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if encoding != "deflate" else 15
        return zlib.decompressobj(wbits).decompress(body, limit)
    raise ValueError(f"unsupported content-encoding {encoding!r}")


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    # The Responses API names them input/output tokens.
    return Usage(
        prompt_tokens=value.get("prompt_tokens", value.get("input_tokens")),
        completion_tokens=value.get("completion_tokens", value.get("output_tokens")),
        total_tokens=value.get("total_tokens"),
    )


def _response_output_text(doc: dict[str, Any]) -> str | None:
    if isinstance(doc.get("output_text"), str):
        return str(doc["output_text"])
    texts = []
    for item in doc.get("output") or []:
        if isinstance(item, dict):
            for content in item.get("content") or []:
                if isinstance(content, dict) and isinstance(content.get("text"), str):
                    texts.append(content["text"])
    return "".join(texts) if texts else None


def _identify(answer: Answer, doc: dict[str, Any]) -> None:
    """The answer's id and the model that wrote it: at the top of a Chat Completions document
    or chunk, under `response` in a Responses API event."""
    source = doc["response"] if isinstance(doc.get("response"), dict) else doc
    if answer.id is None and isinstance(source.get("id"), str):
        answer.id = source["id"]
    if answer.model is None and isinstance(source.get("model"), str):
        answer.model = source["model"]


def _apply_document(answer: Answer, doc: Any) -> None:
    """Merge one JSON document (a whole response or one stream event) into the answer."""
    if not isinstance(doc, dict):
        return
    if isinstance(doc.get("error"), dict):
        answer.error = str(doc["error"].get("message") or doc["error"])[:500]
    if doc.get("usage") is not None:
        answer.usage = _usage(doc["usage"]) or answer.usage
    _identify(answer, doc)
    event_type = doc.get("type")
    if isinstance(event_type, str) and event_type.startswith("response."):
        if event_type == "response.output_text.delta" and isinstance(doc.get("delta"), str):
            answer.parts.append(doc["delta"])
        elif event_type in ("response.completed", "response.incomplete"):
            response = doc.get("response") or {}
            answer.usage = _usage(response.get("usage")) or answer.usage
            answer.finish_reason = "stop" if event_type == "response.completed" else "length"
        return
    if doc.get("object") == "response":
        answer.parts.append(_response_output_text(doc) or "")
        answer.finish_reason = "stop" if doc.get("status") == "completed" else doc.get("status")
        return
    for choice in doc.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        message = choice.get("message")
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str):
                answer.parts.append(delta["content"])
            if delta.get("tool_calls"):
                answer.parts.append(orjson.dumps(delta["tool_calls"]).decode())
        elif isinstance(message, dict):
            if isinstance(message.get("content"), str):
                answer.parts.append(message["content"])
            if message.get("tool_calls"):
                answer.parts.append(orjson.dumps(message["tool_calls"]).decode())
        elif isinstance(choice.get("text"), str):
            answer.parts.append(choice["text"])
        if choice.get("finish_reason"):
            answer.finish_reason = choice["finish_reason"]


def _parse_sse(body: bytes, answer: Answer) -> None:
    answer.streamed = True
    for line in body.splitlines():
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        try:
            _apply_document(answer, orjson.loads(payload))
        except orjson.JSONDecodeError:
            answer.error = answer.error or "malformed stream event"


def reassemble(
    body: bytes,
    *,
    content_type: str | None,
    content_encoding: str | None,
    limit: int,
    truncated: bool = False,
) -> Answer:
    """Turn a captured body into text, finish reason and usage; never raises. Of a
    `truncated` capture only an event stream is read: a cut JSON document cannot be."""
    answer = Answer()
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if truncated and mime != "text/event-stream" and not body[:64].lstrip().startswith(b"data:"):
        answer.error = "answer larger than the capture limit (capture.max_bytes)"
        return answer
    try:
        raw = _decode(body, content_encoding, limit)
    except (ValueError, zlib.error) as exc:
        answer.error = f"undecodable body: {exc}"
        return answer
    if mime == "text/event-stream" or raw.lstrip().startswith(b"data:"):
        _parse_sse(raw, answer)
    else:
        try:
            _apply_document(answer, orjson.loads(raw))
        except orjson.JSONDecodeError:
            answer.error = answer.error or "response is not JSON"
    if answer.parts:
        answer.text = "".join(answer.parts)
    elif answer.error is None and answer.text is None:
        answer.text = ""
    return answer


def to_exchange(
    answer: Answer,
    *,
    status: int | None,
    latency_ms: float | None,
    ttfb_ms: float | None,
    truncated: bool,
    error: str | None = None,
) -> Exchange:
    """An `Exchange` for the pair record from a reassembled answer and its timings."""
    return Exchange(
        status=status,
        text=answer.text,
        finish_reason=answer.finish_reason,
        usage=answer.usage,
        latency_ms=latency_ms,
        ttfb_ms=ttfb_ms,
        streamed=answer.streamed,
        truncated=truncated,
        error=error or answer.error,
    )
