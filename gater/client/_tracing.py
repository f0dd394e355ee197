"""Client spans: one OpenTelemetry span per call of the client, its W3C `traceparent` sent in
the call's metadata so gateways and nodes continue the same trace.

Owns: `ClientTracing` (from an OpenTelemetry `TracerProvider`; `NO_TRACING` when the client
has none) and `CallSpan` (one call's span: the metadata entries to send, and `end()`).
Must not import anything from gater but gater.errors and this package. OpenTelemetry's API is
imported only when a provider is given, so the client runs without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NO_TRACING", "CallSpan", "ClientTracing"]


class CallSpan:
    """One call's span. `metadata`: the entries that carry it; `end(error)` closes it (the
    first call counts), marked failed when `error` is given."""

    __slots__ = ("metadata", "_span")

    def __init__(self, metadata: tuple[tuple[str, str], ...] = (), span: Any = None) -> None:
        self.metadata = metadata
        self._span = span

    def end(self, error: BaseException | None = None) -> None:
        span, self._span = self._span, None
        if span is None:
            return
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            code = getattr(error, "code", None)
            span.set_status(Status(StatusCode.ERROR, f"{code or type(error).__name__}"))
            if isinstance(code, str):
                span.set_attribute("rpc.grpc.status_code", code)
        span.end()


_UNTRACED = CallSpan()


class ClientTracing:
    """Spans of a client's calls, from `provider` (an OpenTelemetry TracerProvider), or none."""

    def __init__(self, provider: Any = None) -> None:
        self._tracer = None
        if provider is not None:
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            self._tracer = provider.get_tracer("gater.client")
            self._propagator = TraceContextTextMapPropagator()

    def start(self, service: str, method: str, target: str) -> CallSpan:
        """A span for `exesdb.v1.<Service>/<method>` to `target`, a child of the caller's
        current span; not made current (a stream's span lasts across the caller's awaits)."""
        if self._tracer is None:
            return _UNTRACED
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        span = self._tracer.start_span(
            f"exesdb.v1.{service}/{method}",
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "rpc.service": f"exesdb.v1.{service}", "rpc.method": method,
                        "server.address": target},
        )  # fmt: skip
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return CallSpan(tuple(carrier.items()), span)


NO_TRACING = ClientTracing()
