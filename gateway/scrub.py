"""PII scrubbing of mirrored requests and stored answers (minimal version)."""

from __future__ import annotations

import re
from typing import Any

from gateway.config import ScrubConfig

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


class ScrubSession:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._seen: dict[str, str] = {}

    def text(self, value: str) -> str:
        def repl(m: re.Match[str]) -> str:
            v = m.group(0)
            if v not in self._seen:
                self.counts["EMAIL"] = self.counts.get("EMAIL", 0) + 1
                self._seen[v] = f"<EMAIL_{self.counts['EMAIL']}>"
            return self._seen[v]

        return _EMAIL.sub(repl, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k == "model" else self.json(v)) for k, v in value.items()}
        return value


class Scrubber:
    def __init__(self, config: ScrubConfig) -> None:
        self._config = config

    def session(self) -> ScrubSession:
        return ScrubSession()
