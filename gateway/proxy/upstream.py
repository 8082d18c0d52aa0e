"""One upstream model server on the user's path: its base URL, credentials and connection pool."""

from __future__ import annotations

import ssl

from yarl import URL

from gateway.config import UpstreamConfig
from gateway.proxy.query_credentials import strip_credential_params
from gateway.proxy.upstream_client import UpstreamClient


class Upstream:
    """The pooled client for one upstream, opened once for the life of the process."""

    def __init__(
        self,
        *,
        name: str,
        config: UpstreamConfig,
        strip_headers: frozenset[str] = frozenset(),
        strip_params: frozenset[str] = frozenset(),
    ):
        self.name = name
        # Request headers and query parameters of the user never sent to this upstream
        # (lower case).
        self.strip_headers = strip_headers
        self.strip_params = strip_params
        self.config = config
        self.base_url = config.url
        key = config.api_key.get_secret_value() if config.api_key else ""
        self.authorization = f"Bearer {key}" if key else None
        parsed = URL(config.url)
        # Requests go to base path + the client's path; the host and port come from here.
        self._base_path = parsed.raw_path.rstrip("/")
        self._host = parsed.raw_host or ""
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._https = parsed.scheme == "https"
        self._client: UpstreamClient | None = None

    @property
    def client(self) -> UpstreamClient:
        if self._client is None:
            raise RuntimeError(f"upstream {self.name} is not open")
        return self._client

    def url(self, path_qs: str) -> str:
        """The URL a mirror calls: the base URL + a target already passed through
        `without_credentials` (the mirror request holds it stripped, once)."""
        return self.base_url + path_qs

    def target(self, path_qs: str) -> str:
        """The request target sent on the wire: the upstream's base path + the client's, less
        `strip_params` (none for production: the user's target is proxied untouched)."""
        return self._base_path + self.without_credentials(path_qs)

    def without_credentials(self, path_qs: str) -> str:
        """`path_qs` less the query parameters this upstream must not receive."""
        # Checked first so a target without a query, or production's, costs nothing more.
        if self.strip_params and "?" in path_qs:
            return strip_credential_params(path_qs, self.strip_params)
        return path_qs

    async def open(self) -> None:
        config = self.config
        self._client = UpstreamClient(
            host=self._host,
            port=self._port,
            ssl_context=ssl.create_default_context() if self._https else None,
            max_connections=config.max_connections,
            pool_timeout_s=config.pool_timeout_s,
            # Shorter than the upstream's own idle timeout (uvicorn: 5 s), so a pooled
            # connection is not reused just as the server closes it.
            keepalive_s=config.keepalive_s,
            connect_timeout_s=config.connect_timeout_s,
            first_byte_timeout_s=config.first_byte_timeout_s,
            read_timeout_s=config.read_timeout_s,
        )

    def pool_in_use(self) -> int:
        """Connections currently checked out of the pool (0 when idle)."""
        return self._client.in_use() if self._client is not None else 0

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
