"""OpenTelemetry tracing: server spans on nodes and gateways, client spans on the gateway's
forwarding and the Python client, W3C `traceparent` carried in gRPC metadata. Off unless
configured.

Owns: `Tracing` (a tracer from its own TracerProvider — never the process-global one, so
tests and several servers in one process each keep their spans apart), `TracingConfig`, and
the helpers that put a span's context into outgoing metadata and read it from incoming.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TRACE_HEADERS", "Outgoing", "Tracing", "TracingConfig", "current_traceparent", "set_error"]

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, slots=True)
class TracingConfig:
    otlp_endpoint: str | None = None
    """OTLP/gRPC collector ("host:4317" or "http(s)://host:4317"); None: tracing off."""
    service_name: str = "gater"
    """service.name of the spans (gater-node, gater-gateway, ...)."""
    record_in_metadata: bool = False
    """Nodes: write the appending call's `traceparent` into each appended event's JSON
    metadata, so a consumer can continue the trace."""


class Tracing:
    """A tracer, or nothing (`enabled` False: every span helper is a no-op)."""

    def __init__(self, provider: TracerProvider | None = None, *, record_in_metadata: bool = False) -> None:
        self.provider = provider
        self.record_in_metadata = record_in_metadata and provider is not None
        self._tracer = provider.get_tracer("gater") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @classmethod
    def from_config(cls, config: TracingConfig, exporter: SpanExporter | None = None) -> Tracing:
        """Tracing to `exporter`, or to the configured OTLP endpoint; off when neither."""
        if exporter is None and config.otlp_endpoint is None:
            return cls()
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter,  # only when used
            )

            endpoint = config.otlp_endpoint or ""
            exporter = OTLPSpanExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
        provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, record_in_metadata=config.record_in_metadata)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

    @contextlib.contextmanager
    def server_span(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> Iterator[Span | None]:
        """The span of one incoming call, a child of the caller's `traceparent` if any."""
        if self._tracer is None:
            yield None
            return
        carrier = {k: v for k, v in (metadata or ()) if isinstance(v, str)}
        parent = _PROPAGATOR.extract(carrier)
        with self._tracer.start_as_current_span(
            method.lstrip("/"), context=parent, kind=SpanKind.SERVER, attributes=_rpc_attributes(method)
        ) as span:
            yield span

    @contextlib.contextmanager
    def client_span(self, method: str, target: str = "") -> Iterator[Outgoing]:
        """A span for one outgoing call (a child of the current span), ended on leaving the
        block; yields the metadata entries that carry it (`traceparent`) and the span, to mark
        it failed with `set_error`. The span is not made current: the block may be an async
        generator that yields between its start and its end."""
        if self._tracer is None:
            yield _UNTRACED
            return
        attributes = _rpc_attributes(method)
        if target:
            attributes["server.address"] = target
        span = self._tracer.start_span(method.lstrip("/"), kind=SpanKind.CLIENT, attributes=attributes)
        try:
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
            yield Outgoing(tuple(carrier.items()), span)
        except BaseException as e:
            if not isinstance(e, GeneratorExit | asyncio.CancelledError):  # a caller leaving is normal
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
            raise
        finally:
            span.end()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What an outgoing call carries: `metadata` (W3C trace context entries) and its span."""

    metadata: tuple[tuple[str, str], ...]
    span: Span | None


_UNTRACED = Outgoing((), None)

TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
"""Metadata keys of the W3C trace context: replaced, not added to, when a call is forwarded."""


def set_error(span: Span | None, code: str, message: str) -> None:
    """Marks a span failed with the call's status."""
    if span is not None and code != "OK":
        span.set_attribute("rpc.grpc.status_code", code)
        span.set_status(Status(StatusCode.ERROR, f"{code}: {message}"[:200]))


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, None when there is none."""
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def _rpc_attributes(method: str) -> dict[str, Any]:
    _, service, name = (method.split("/", 2) + ["", ""])[:3]
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
