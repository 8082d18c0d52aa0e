"""One call to the judge: an OpenAI-compatible chat completion, its answer parsed, its cost
taken from the usage it reports (estimated from characters when it reports none)."""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import aiohttp
import orjson

from gateway.config import LlmJudgeConfig
from gateway.records import JudgeVerdict
from scoring.llm_judge.prompt import parse_verdict

log = logging.getLogger("shadowgate.llm_judge")

# A chat completion carrying a one-line verdict is a few kilobytes; a body past this is not one.
MAX_BODY_BYTES: Final = 1 << 20
# Characters per token when a server reports no usage: about right for English, and on the
# high side of cost for most tokenizers.
CHARS_PER_TOKEN: Final = 4


def endpoint(url: str) -> str:
    """The chat completions URL for a base URL as the openai client takes it (`.../v1`)."""
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _content(envelope: Any) -> str | None:
    try:
        content = envelope["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _tokens(usage: Any, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else None


async def _read(response: aiohttp.ClientResponse) -> bytes | None:
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 << 10):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


class JudgeClient:
    """Asks the configured judge; never raises for what the judge does (timeouts are the
    caller's: it bounds a whole batch)."""

    def __init__(self, *, config: LlmJudgeConfig, session: aiohttp.ClientSession) -> None:
        assert config.url is not None
        self._config = config
        self._session = session
        self._url = endpoint(config.url)
        self._headers = {"Content-Type": "application/json"}
        if config.api_key is not None:
            self._headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"

    def estimated_cost(self, messages: list[dict[str, str]], answer_chars: int | None) -> float:
        """USD for a call without usage: prompt characters, and the answer's (or the most
        the judge may write when the answer is unknown, as after a timeout)."""
        price = self._config.price
        if price is None:
            return 0.0
        prompt = sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN
        answer = (
            self._config.max_tokens if answer_chars is None else answer_chars // CHARS_PER_TOKEN
        )
        return price.cost_usd(prompt, answer)

    def _cost(self, usage: Any, messages: list[dict[str, str]], content: str) -> float:
        price = self._config.price
        if price is None:
            return 0.0
        prompt, completion = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
        if prompt is None or completion is None:
            return self.estimated_cost(messages, len(content))
        return price.cost_usd(prompt, completion)

    async def ask(self, messages: list[dict[str, str]]) -> JudgeVerdict:
        """The judge's verdict, or why there is none (`error`, `unparseable`), with the cost."""
        body: dict[str, Any] = {
            "model": self._config.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self._config.max_tokens,
        }
        if self._config.json_mode:
            body["response_format"] = {"type": "json_object"}
        model = self._config.model
        started = time.perf_counter()
        try:
            async with self._session.post(
                self._url, data=orjson.dumps(body), headers=self._headers
            ) as response:
                raw = await _read(response)
                status = response.status
        except TimeoutError:
            raise  # the caller's deadline: counted as `timeout`, not `error`
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("judge: call failed: %s", exc)
            return JudgeVerdict(skipped="error", model=model)
        latency_ms = (time.perf_counter() - started) * 1000
        if status != 200 or raw is None:
            log.warning(
                "judge: answered %d (%s bytes)", status, "over" if raw is None else len(raw)
            )
            return JudgeVerdict(skipped="error", model=model, latency_ms=latency_ms)
        try:
            envelope = orjson.loads(raw)
        except orjson.JSONDecodeError:
            envelope = None
        content = _content(envelope)
        if content is None:
            log.warning("judge: the answer is not a chat completion")
            return JudgeVerdict(skipped="error", model=model, latency_ms=latency_ms)
        assert isinstance(envelope, dict)
        cost = self._cost(envelope.get("usage"), messages, content)
        parsed = parse_verdict(content)
        if parsed is None:
            log.info("judge: no verdict in the answer %.200r", content)
            return JudgeVerdict(
                skipped="unparseable", model=model, cost_usd=cost, latency_ms=latency_ms
            )
        label, reason = parsed
        return JudgeVerdict(
            label=label, reason=reason, model=model, cost_usd=cost, latency_ms=latency_ms
        )
