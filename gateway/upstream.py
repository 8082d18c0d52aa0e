"""One upstream model server: its base URL, credentials, timeouts and pooled client session."""

from __future__ import annotations

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector

from gateway.config import UpstreamConfig


class Upstream:
    """A pooled client session for one upstream, opened once for the life of the process."""

    def __init__(self, *, name: str, config: UpstreamConfig, max_connections: int | None = None):
        self.name = name
        self.config = config
        self.base_url = config.url
        key = config.api_key.get_secret_value() if config.api_key else ""
        self.authorization = f"Bearer {key}" if key else None
        # sock_read bounds the wait for the response headers (the first byte); once they are
        # in, the proxy switches the connection to the between-chunk timeout.
        self.first_byte_timeout = ClientTimeout(
            total=None,
            connect=None,
            sock_connect=config.connect_timeout_s,
            sock_read=config.first_byte_timeout_s,
        )
        self.read_timeout_s = config.read_timeout_s
        self._limit = max_connections or config.max_connections
        self._session: ClientSession | None = None

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError(f"upstream {self.name} is not open")
        return self._session

    def url(self, path_qs: str) -> str:
        return self.base_url + path_qs

    async def open(self) -> None:
        connector = TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            # Shorter than the upstream's own idle timeout (uvicorn: 5 s), so a pooled
            # connection is not reused just as the server closes it.
            keepalive_timeout=self.config.keepalive_s,
            enable_cleanup_closed=False,
        )
        self._session = ClientSession(
            connector=connector,
            timeout=self.first_byte_timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            # A shared jar would carry one user's cookies into another user's requests.
            cookie_jar=DummyCookieJar(),
            trust_env=False,
        )

    def pool_in_use(self) -> int:
        """Connections currently checked out of the pool (0 when idle)."""
        connector = self._session.connector if self._session else None
        if connector is None or not isinstance(connector, TCPConnector):
            return 0
        return len(connector._acquired)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
