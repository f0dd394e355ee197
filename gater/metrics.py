"""Prometheus metrics and the HTTP listener that serves them with /livez and /readyz.

Owns: `Metrics` (one registry per process role, the metric families gater exports, and the
scrape-time collectors components register), `RpcObserver` (what every gRPC call records:
started/handled counts by service, method and code, and a latency histogram) and
`HttpEndpoint` (GET /metrics, /livez, /readyz on an asyncio server — no threads).
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway: components
hand their numbers in (counters on their hot paths, gauges through `collect` callbacks read
at scrape time, so an idle component costs nothing).

Names follow Prometheus conventions: units in names (`_seconds`, `_bytes`), `_total` counters,
and low-cardinality labels: service, method, code, store, subscription name, member state —
never a stream id or an event id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["HttpEndpoint", "Metrics", "RpcObserver", "gauge"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family to fill in a scrape-time collector."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._collect())
        except Exception:  # noqa: BLE001 - a failing collector must not fail the whole scrape
            log.exception("metrics collector failed")
            return []


class Metrics:
    """The metric families of one process (node, gateway, or both in `gater dev`)."""

    def __init__(self) -> None:
        disable_created_metrics()  # `_created` series double every counter and tell nobody anything
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_started = Counter(
            "grpc_server_started", "RPCs started on the server.", ["grpc_service", "grpc_method", "grpc_type"], registry=r
        )
        self.rpc_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, by status code.",
            ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its end (streams: their whole life).",
            ["grpc_service", "grpc_method", "grpc_type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.appended_events = Counter("gater_appended_events", "Events appended.", ["store"], registry=r)
        self.appended_bytes = Counter("gater_appended_bytes", "Bytes of appended event records.", ["store"], registry=r)
        self.commit_batch_events = Histogram(
            "gater_commit_batch_events",
            "Events per group commit (one transaction, one sync).",
            ["backend"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "gater_subscription_deliveries",
            "Events delivered to persistent-subscription consumers (first deliveries and redeliveries).",
            ["store", "subscription"],
            registry=r,
        )
        self.redeliveries = Counter(
            "gater_subscription_redeliveries",
            "Events delivered again (retry_count >= 1).",
            ["store", "subscription"],
            registry=r,
        )
        self.moved_to_catch_up = Counter(
            "gater_subscribers_moved_to_catch_up",
            "Live subscribers that fell behind and went back to reading from the store.",
            ["store"],
            registry=r,
        )
        self.gateway_retries = Counter(
            "gater_gateway_retries", "Calls the gateway sent again to another node.", ["grpc_method"], registry=r
        )
        self.gateway_ejections = Counter(
            "gater_gateway_ejections", "Members taken out of rotation after failures or failed probes.", registry=r
        )
        self.gateway_resumed_streams = Counter(
            "gater_gateway_resumed_streams",
            "Read and subscription streams carried on on another node after one failed.",
            ["kind"],
            registry=r,
        )
        self.postgres_notify_fallbacks = Counter(
            "gater_postgres_notify_fallbacks",
            "Times the poller found a commit that LISTEN/NOTIFY had not reported.",
            registry=r,
        )

    def collect(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Registers a scrape-time collector: `fn` returns gauge families built with `gauge()`."""
        self.registry.register(_Callback(fn))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(slots=True)
class _Call:
    service: str
    method: str
    kind: str
    started: float


class RpcObserver:
    """Counts and times every RPC of a server; `start` when a call begins, `end` with its code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def start(self, full_method: str, streaming: bool) -> _Call:
        _, service, method = full_method.split("/", 2)
        kind = "server_stream" if streaming else "unary"
        self.metrics.rpc_started.labels(service, method, kind).inc()
        return _Call(service, method, kind, time.perf_counter())

    def end(self, call: _Call, code: str) -> None:
        m = self.metrics
        m.rpc_handled.labels(call.service, call.method, call.kind, code).inc()
        m.rpc_seconds.labels(call.service, call.method, call.kind).observe(time.perf_counter() - call.started)


class HttpEndpoint:
    """GET /metrics (Prometheus text format), /livez (200 while the process runs its event
    loop) and /readyz (200 while `ready()` is true, else 503: the gRPC health, for load
    balancers that cannot speak gRPC). `port = await start()`; `stop()` is idempotent."""

    def __init__(self, listen: str, metrics: Metrics | None, ready: Callable[[], bool]) -> None:
        self.listen = listen
        self.metrics = metrics
        self.ready = ready
        self.port: int | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        host, _, port = self.listen.rpartition(":")
        try:
            self._server = await asyncio.start_server(self._serve, host.strip("[]") or None, int(port))
        except OSError as e:
            raise OSError(f"cannot listen for metrics on {self.listen}: {e.strerror}") from e
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics and HTTP health serving", extra={"address": f"{host}:{self.port}"})
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> HttpEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics" and self.metrics is not None:
            return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()
        if path == "/livez":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        if path == "/readyz":
            if self.ready():
                return 200, "text/plain; charset=utf-8", b"ready\n"
            return 503, "text/plain; charset=utf-8", b"not ready: no usable storage or node\n"
        return 404, "text/plain; charset=utf-8", b"not found: try /metrics, /livez or /readyz\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            status, content_type, body = (405, "text/plain", b"GET only\n") if method != "GET" else self._answer(
                path.split("?", 1)[0]
            )
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
            head = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError):
            pass  # a client that sent no proper request, or left
        finally:
            writer.close()
