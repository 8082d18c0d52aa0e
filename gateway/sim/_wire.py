"""OpenAI's wire format for the simulator: reading a completion request, and writing an answer
whole or as server-sent events (one token per event), or an error body."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

log = logging.getLogger("shadowgate.simulator")


def json_response(data: Any, status: int = 200) -> web.Response:
    """`data` as a JSON response."""
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def error_response(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    """An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json_response({"error": error}, status)


def prompt_texts(chat: bool, doc: dict[str, Any]) -> list[str] | None:
    """The prompt's texts in order (the messages' contents, or the completion prompt), or None
    when the request has no usable `messages` / `prompt`."""
    if not chat:
        prompt = doc.get("prompt")
        parts = prompt if isinstance(prompt, list) else [prompt]
        if not prompt or not all(isinstance(p, str) for p in parts):
            return None
        return [str(p) for p in parts]
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    texts: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            return None
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return texts or None


def invalid_parameters(doc: dict[str, Any]) -> str | None:
    """Why the request's generation parameters are refused, if they are."""
    if doc.get("n", 1) != 1:
        return "only n=1 is supported"
    for name in ("max_tokens", "max_completion_tokens"):
        value = doc.get(name)
        if value is not None and (type(value) is not int or value < 1):
            return f"'{name}' must be a positive integer"
    if not isinstance(doc.get("stream", False), bool):
        return "'stream' must be a boolean"
    return None


@dataclass
class Reply:
    """Writes one completion in OpenAI's shapes. `cut` (a fault test's wish) closes the
    connection part-way: after a few events, or half-way through a whole body."""

    request: web.Request
    chat: bool
    ident: str
    created: int
    model: str
    cut: bool = False
    cut_after_events: int = 3

    def _envelope(self, choices: list[dict[str, Any]], *, chunk: bool) -> dict[str, Any]:
        kind = "chat.completion" if self.chat else "text_completion"
        return {
            "id": self.ident,
            "object": kind + ".chunk" if chunk and self.chat else kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def _choice(
        self, text: str | None, finish: str | None, *, role: bool = False
    ) -> dict[str, Any]:
        if not self.chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        delta: dict[str, Any] = {"role": "assistant"} if role else {}
        if text is not None:
            delta["content"] = text
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    async def whole(self, text: str, finish: str, usage: dict[str, int]) -> web.StreamResponse:
        """The answer as one JSON body."""
        if self.chat:
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        else:
            choice = self._choice(text, finish)
        body = orjson.dumps({**self._envelope([choice], chunk=False), "usage": usage})
        if not self.cut:
            return web.Response(body=body, content_type="application/json")
        # Promise the whole body, deliver half: the client sees a connection cut mid-answer.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(self.request)
        await response.write(body[: len(body) // 2])
        self._close()
        return response

    async def stream(
        self, text: str, finish: str, usage: dict[str, int] | None, *, tokens_per_s: float
    ) -> web.StreamResponse:
        """The answer as server-sent events, one per token, paced at `tokens_per_s` (0: no
        pause); `usage`, when given, goes in a last event with no choices."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(self.request)
        interval = 1 / tokens_per_s if tokens_per_s else 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if self.chat:
                await self._event(response, [self._choice("", None, role=True)])
            for i, word in enumerate(text.split(" ")):
                await self._event(response, [self._choice(word if i == 0 else " " + word, None)])
                if self.cut and i + 1 == self.cut_after_events:
                    self._close()
                    return response
                if interval:
                    # Paced against the start, so scheduling delays do not add up over a stream.
                    await asyncio.sleep(max(0.0, started + (i + 1) * interval - loop.time()))
            await self._event(response, [self._choice(None if self.chat else "", finish)])
            if usage is not None:
                await self._event(response, [], usage=usage)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            log.debug("client went away during %s", self.ident)
        return response

    async def _event(
        self, response: web.StreamResponse, choices: list[dict[str, Any]], **extra: Any
    ) -> None:
        chunk = {**self._envelope(choices, chunk=True), **extra}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

    def _close(self) -> None:
        # close() sends what was already written before closing; abort() would drop it.
        if self.request.transport is not None:
            self.request.transport.close()
