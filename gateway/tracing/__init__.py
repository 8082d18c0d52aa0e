"""OpenTelemetry: the data plane's spans and each process's tracing setup."""
