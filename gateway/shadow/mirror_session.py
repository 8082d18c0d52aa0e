"""The aiohttp client session mirrors are sent with: a pool of its own, apart from the user's.

Mirrors are off the user's path, so they keep aiohttp's full client; a separate, smaller
pool means a slow candidate can never take the connections users need.
"""

from __future__ import annotations

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector

from gateway.config import UpstreamConfig


class MirrorSession:
    """One pooled ClientSession for mirrored requests, opened once for the life of the process."""

    def __init__(self, *, config: UpstreamConfig, max_connections: int):
        self._config = config
        self._limit = max_connections
        self._session: ClientSession | None = None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError("the mirror session is not open")
        return self._session

    async def open(self) -> None:
        config = self._config
        connector = TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=config.keepalive_s,
            enable_cleanup_closed=False,
        )
        self._session = ClientSession(
            connector=connector,
            # Mirrors are bounded by `shadow.timeout_s` as a whole; these bound each step.
            timeout=ClientTimeout(
                total=None,
                connect=None,
                sock_connect=config.connect_timeout_s,
                sock_read=config.first_byte_timeout_s,
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            # A shared jar would carry one user's cookies into another user's requests.
            cookie_jar=DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
