"""Whether a process traces, decided once at its entry point from the standard `OTEL_*`
environment variables. Importable without the `otel` extra: OpenTelemetry is imported only when
tracing is asked for, and the SDK then reads the rest of its variables itself (sampler, batch
processor, exporter endpoint and headers, resource attributes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.tracing.spans import Tracing

log = logging.getLogger("shadowgate.tracing")


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters to load, as entry-point names; empty means tracing is off.

    The specification's default exporter is OTLP; here it takes an OTLP endpoint (or an
    explicit `OTEL_TRACES_EXPORTER`) to turn tracing on, so that installing the extra alone never
    starts sending spans to a collector that is not there."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not names and endpoint:
        names = ["otlp"]
    if "none" in names:
        return []
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    otlp = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
    return [otlp if name == "otlp" else name for name in names]


def load_tracing(*, service_name: str, environ: Mapping[str, str]) -> Tracing | None:
    """A `Tracing` built from the environment, or None when tracing is off or the `otel` extra
    is missing (then a warning says so). Call once per process, at its entry point."""
    exporters = exporter_names(environ)
    if not exporters:
        return None
    try:
        from gateway.tracing.spans import tracing_from_environment
    except ImportError:
        log.warning(
            "OTEL_* asks for traces but the otel extra is not installed "
            "(pip install 'shadowgate[otel]'); tracing is off"
        )
        return None
    return tracing_from_environment(service_name=service_name, exporters=exporters)
