"""One root exception; each leaf names a kind of failure a caller may want to catch."""

from typing import ClassVar


class ShadowgateError(Exception):
    """Root of every error shadowgate raises on purpose."""


class ConfigError(ShadowgateError, ValueError):
    """A configuration file or value is invalid; the message names the field."""


class UpstreamError(ShadowgateError):
    """An upstream model server could not be reached or broke the response."""

    # The reason the gateway's own error answers are counted under (metrics, per-arm stats).
    kind: ClassVar[str] = "connect"


class UpstreamTimeout(UpstreamError, TimeoutError):
    """An upstream did not answer within its connect, first-byte or read timeout."""

    kind = "timeout"


class UpstreamPoolTimeout(UpstreamError, TimeoutError):
    """Every pooled connection to an upstream stayed busy for `pool_timeout_s`."""


class UpstreamConnectError(UpstreamError):
    """A new connection to an upstream was refused or failed."""


class UpstreamDisconnected(UpstreamError):
    """An upstream closed the connection before its response was complete."""


class UpstreamProtocolError(UpstreamError):
    """An upstream's response is not valid HTTP/1.1."""

    kind = "protocol"


class UpstreamHeadTooLarge(UpstreamProtocolError):
    """An upstream's response head (status line and headers) is over the client's bound."""

    kind = "head_too_large"


class ClientBodyTimeout(ShadowgateError, TimeoutError):
    """A client sent nothing of its request body for `listen.body_timeout_s`."""


class EmbeddedRedisError(ShadowgateError):
    """The embedded redis-server could not be started."""


class ModelNotFoundError(ShadowgateError, FileNotFoundError):
    """The embedding model or its tokenizer is missing; raised at start-up, not on a pair."""
