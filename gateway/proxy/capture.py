"""A bounded copy of a response as it streams; `gateway.answers` reassembles it.

Feeding costs one bytearray append per chunk; everything else (decompression, SSE parsing,
JSON decoding) happens after the response ended, off the user's path.
"""

from __future__ import annotations


class Capture:
    """Keeps the first `limit` bytes of a body; marks itself truncated past that."""

    __slots__ = ("buffer", "limit", "truncated")

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.limit = limit
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.buffer)
        if len(chunk) <= room:
            self.buffer += chunk
        else:
            if room > 0:
                self.buffer += chunk[:room]
            self.truncated = True
