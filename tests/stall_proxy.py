"""A unix-socket proxy in front of Redis that can stop forwarding what the client sends, to
cut a write on the wire; held bytes are passed on when released."""

from __future__ import annotations

import asyncio
from pathlib import Path


class StallProxy:
    """Forwards both ways; once `hold(marker)` is called, a chunk from the client holding
    `marker` (every chunk for b"") and all after it wait until `release()`."""

    def __init__(self, *, target: str, path: Path) -> None:
        self.url = f"unix://{path}"
        self._target = target
        self._path = path
        self._marker: bytes | None = None
        self._released = asyncio.Event()
        self.holding = asyncio.Event()  # set once a chunk is held
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self._path))

    def hold(self, marker: bytes = b"") -> None:
        self._marker = marker
        self._released.clear()
        self.holding.clear()

    def release(self) -> None:
        self._marker = None
        self._released.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self._target)
        for task in (self._pump(reader, up_writer, True), self._pump(up_reader, writer, False)):
            self._tasks.add(asyncio.create_task(task))

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, from_client: bool
    ) -> None:
        holding = False
        try:
            while data := await reader.read(65536):
                holding = holding or (
                    from_client and self._marker is not None and self._marker in data
                )
                if holding:
                    self.holding.set()
                    await self._released.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
