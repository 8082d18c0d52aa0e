"""An upstream on a bare asyncio server, for tests about the bytes on the wire: it keeps every
request exactly as received and answers with whatever its `answer` coroutine writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]

CHAT_ANSWER = orjson.dumps(
    {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris."},
                "finish_reason": "stop",
            }
        ],
    }
)


async def answer_chat(writer: asyncio.StreamWriter) -> None:
    """A small JSON chat completion on a keep-alive connection."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(CHAT_ANSWER) + CHAT_ANSWER)
    await writer.drain()


class RawUpstream:
    """Serves on 127.0.0.1; `requests` holds each request's head and body as raw bytes."""

    def __init__(self, answer: Answer = answer_chat) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections_closed = 0
        self._server: asyncio.Server | None = None
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing the connections ends the handlers (cancelling them would log an error).
        for writer in self._handlers.values():
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.requests.append(head + await reader.readexactly(length))
                await self.answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            _forget(exc)
        finally:
            self.connections_closed += 1
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError as exc:
                _forget(exc)
            self._handlers.pop(task, None)


def _forget(exc: BaseException) -> None:
    """The stream keeps the exception it raised, and its traceback this frame: a cycle that
    tests counting the gateway's garbage would see."""
    exc.__traceback__ = None
