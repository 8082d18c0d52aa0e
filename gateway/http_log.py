"""The logger both planes' aiohttp servers write to, with request bytes kept out of it.

aiohttp's parser errors quote the raw line that failed: a malformed `Authorization` header
would be logged whole, token included, at ERROR. Here such a record keeps only the reason
(the text before the quoted bytes) and goes down to INFO: it is the client's mistake.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


def _reason(exc: HttpProcessingError) -> str:
    # "Invalid header value char:\n\n  b'Authorization: ...'" and "Invalid HTTP header: b'...'"
    # alike: whatever follows the first colon may be request bytes.
    first_line = (exc.message or "").split("\n", 1)[0]
    return first_line.split(":", 1)[0].strip() or type(exc).__name__


class RedactRequestBytes(logging.Filter):
    """Rewrites records about unparseable requests so that no request bytes are logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            args = record.args if isinstance(record.args, tuple) else ()
            record.msg = f"{record.msg}: bad request (%s, %s)"
            record.args = (*args, exc.code, _reason(exc))
            record.exc_info = None
            record.exc_text = None
            if record.levelno > logging.INFO:
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


server_log = logging.getLogger("shadowgate.http")
server_log.addFilter(RedactRequestBytes())
