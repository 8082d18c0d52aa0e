"""A request body parsed once as JSON: the drift features, the unit key, the canary's model
name and the mirror all read the same document."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

NOT_JSON: Final = object()
"""What `parse_json` returns for a body that is not JSON (by content type or by content)."""


def parse_json(request: web.BaseRequest, body: bytes) -> Any:
    if "json" not in request.content_type:
        return NOT_JSON
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return NOT_JSON
