"""An OpenAI-compatible upstream that answers from a script, for end-to-end checks that need
known answer pairs: each request names its case in the body's `user` field, and the script
holds production's, the candidate's and the noise sample's answer for every case.

    python -m tests.scripted_upstream --script cases.json --side production --port 8001

`--side production` answers the user's request with production's answer and a mirrored
request (`x-shadowgate-shadow: 1`, production asked again for the noise floor) with the
case's noise answer, production's own when it has none. Tool calls written in an answer as
the gateway captures them come back as the message's `tool_calls`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from gateway.constants import SHADOW_HEADER
from scoring.signals.parse import parse

SCRIPT = web.AppKey("script", dict)


def _message(text: str) -> dict[str, Any]:
    parsed = parse(text)
    if not parsed.tool_calls:
        return {"role": "assistant", "content": text}
    calls = [
        {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": call.name, "arguments": orjson.dumps(call.arguments).decode()},
        }
        for n, call in enumerate(parsed.tool_calls)
    ]
    content = parsed.prose.strip() or None
    return {"role": "assistant", "content": content, "tool_calls": calls}


def build_app(script: dict[str, Any], side: str) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        case = request.app[SCRIPT][body["user"]]
        answer = case[side]
        if side == "production" and request.headers.get(SHADOW_HEADER) == "1":
            answer = case.get("noise") or answer
        return web.json_response(
            {
                "id": "chatcmpl-script",
                "object": "chat.completion",
                "model": side,
                "choices": [
                    {
                        "index": 0,
                        "message": _message(answer["text"]),
                        "finish_reason": answer.get("finish_reason") or "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
            },
            dumps=lambda value: orjson.dumps(value).decode(),
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app[SCRIPT] = script
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--side", choices=("production", "candidate"), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    script = orjson.loads(args.script.read_bytes())
    web.run_app(build_app(script, args.side), host="127.0.0.1", port=args.port,
                access_log=None, print=None)  # fmt: skip


if __name__ == "__main__":
    main()
