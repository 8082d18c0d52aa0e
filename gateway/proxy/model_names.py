"""The candidate's own model name: what a request for production's model asks the candidate.

A candidate usually serves another name than production (`gpt-4.1` for `gpt-4o`, a vLLM
`--served-model-name`), and an OpenAI-compatible server refuses a name it does not serve.
Mirrors and canary requests carry the candidate's name; noise samples, which go to
production again, keep the request's.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config import CandidateConfig


class ModelNames:
    """Maps the `model` of a request body to the name the candidate serves."""

    __slots__ = ("_by_production", "_default", "_served")

    def __init__(self, *, default: str | None = None, by_production: dict[str, str]) -> None:
        self._default = default
        self._by_production = dict(by_production)
        self._served = {*self._by_production.values(), *([default] if default else [])}

    @classmethod
    def for_candidate(cls, config: CandidateConfig | None) -> ModelNames:
        if config is None:
            return cls(by_production={})
        return cls(default=config.model, by_production=config.model_map)

    @property
    def rewrites(self) -> bool:
        """Whether any request can be rewritten at all (a cheap check on the hot path)."""
        return self._default is not None or bool(self._by_production)

    def candidate_name(self, production: str | None) -> str | None:
        """The candidate's name for a request asking `production`: mapped, else the default;
        unchanged when neither is configured or it already names a model the candidate serves."""
        if production is None or production in self._served:
            return production
        return self._by_production.get(production) or self._default or production

    def rewrite(self, document: Any) -> dict[str, Any] | None:
        """A copy of a JSON request with the candidate's model name, or None when it needs no
        change (not an object, no string `model`, or already the candidate's name). The field
        keeps its place, so the body differs from the client's in that value only."""
        if not isinstance(document, dict):
            return None
        name = document.get("model")
        if not isinstance(name, str):
            return None
        renamed = self.candidate_name(name)
        if renamed == name:
            return None
        return {**document, "model": renamed}

    def rewrite_body(self, body: bytes, document: Any) -> bytes:
        """The body to send the candidate for a request whose parsed JSON is `document` (any
        other value: not JSON). Serialised again only when the name changes, so a body that
        needs no rewrite, or is not JSON, goes out byte for byte as the client sent it."""
        renamed = self.rewrite(document)
        return body if renamed is None else orjson.dumps(renamed)
