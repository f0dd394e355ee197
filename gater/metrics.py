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
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from . import __version__

__all__ = ["CommitObserver", "HttpEndpoint", "Metric", "Metrics", "RpcObserver", "SubscriptionGauges", "gauge"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge family to fill in a scrape-time collector."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def describe(self) -> Iterable[Metric]:
        # Registration asks collectors what they export; these answer at scrape time only
        # (a component registers in its __init__, before the state its callback reads).
        return []

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._collect())
        except Exception:  # noqa: BLE001 - a failing collector must not fail the whole scrape
            log.exception("metrics collector failed")
            return []


class Metrics:
    """The metric families of one process (node, gateway, or both in `gater dev`).

    Counters that count what happens (appends, deliveries, retries) are updated where it
    happens, once per batch; everything that *is* (positions, lags, queue depths, pool
    members) is read at scrape time by the collectors components register with `collect`."""

    def __init__(self, role: str = "node") -> None:
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
        # -- storage (hot path: once per commit, never per event) ---------------------------
        self.appended_events = Counter(
            "gater_appended_events", "Events appended (committed), by store.", ["store"], registry=r
        )
        self.appended_bytes = Counter(
            "gater_appended_bytes", "Bytes of appended event records as stored, by store.", ["store"], registry=r
        )
        self.commit_batch_events = Histogram(
            "gater_commit_batch_events",
            "Events per group commit (one transaction, one sync), by backend.",
            ["backend"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.postgres_notify_fallbacks = Counter(
            "gater_postgres_notify_fallbacks",
            "Commits found by the poller (or the listener's catch-up read) before LISTEN/NOTIFY told them.",
            registry=r,
        )
        # -- subscriptions --------------------------------------------------------------------
        self.delivered_events = Counter(
            "gater_subscription_delivered_events",
            "Events handed to subscribers: persistent ones by name (redeliveries included), "
            'transient ones together as subscription="transient".',
            ["store", "subscription"],
            registry=r,
        )
        self.redelivered_events = Counter(
            "gater_subscription_redelivered_events",
            "Events of persistent subscriptions delivered again (retry_count >= 1).",
            ["store", "subscription"],
            registry=r,
        )
        self.moved_to_catch_up = Counter(
            "gater_subscribers_moved_to_catch_up",
            "Live transient subscribers that fell behind the tailer and went back to reading from the store.",
            ["store"],
            registry=r,
        )
        # -- gateway --------------------------------------------------------------------------
        self.gateway_retries = Counter(
            "gater_gateway_retries",
            "Attempts the gateway made again on another node after one failed or could not be sent.",
            ["grpc_method"],
            registry=r,
        )
        self.gateway_failovers = Counter(
            "gater_gateway_failovers",
            "Calls that succeeded on another node after their first node failed.",
            ["grpc_method"],
            registry=r,
        )
        self.gateway_ejections = Counter(
            "gater_gateway_ejections",
            "Members taken out of rotation: after a failed call, or when their health probe stopped answering SERVING.",
            ["reason"],
            registry=r,
        )
        self.gateway_resumed_streams = Counter(
            "gater_gateway_resumed_streams",
            "Read and subscription streams carried on on another node after theirs failed mid-stream.",
            ["kind"],
            registry=r,
        )
        self._subscription_sources: list[Callable[[SubscriptionGauges], None]] = []
        self._rpc_methods: dict[tuple[str, bool], _Method] = {}
        """RpcObserver's series per (method, streaming), bound on first use."""
        info = Gauge("gater_build_info", "Always 1: the gater version and this process's role.", ["version", "role"], registry=r)
        info.labels(__version__, role).set(1)

    def collect(self, fn: Callable[[], Iterable[Metric]]) -> None:
        """Registers a scrape-time collector: `fn` returns gauge families built with `gauge()`."""
        self.registry.register(_Callback(fn))

    def report_subscriptions(self, fn: Callable[[SubscriptionGauges], None]) -> None:
        """Registers `fn`, called at scrape time to add its subscriptions to the one set of
        per-subscription families (transient ones from the hub, persistent ones from the
        dispatchers)."""
        if not self._subscription_sources:
            self.collect(self._subscriptions)
        self._subscription_sources.append(fn)

    def _subscriptions(self) -> list[Metric]:
        gauges = SubscriptionGauges()
        for fn in self._subscription_sources:
            fn(gauges)
        return gauges.families()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def commits(self, backend: str, store_id: str) -> CommitObserver:
        """What one store's writer records per commit (children bound once, not per commit)."""
        return CommitObserver(
            self.appended_events.labels(store_id),
            self.appended_bytes.labels(store_id),
            self.commit_batch_events.labels(backend),
        )


class SubscriptionGauges:
    """The per-subscription gauges of one scrape, labelled by store and subscription name
    (transient subscriptions, which have none, as one series per store named "transient")."""

    def __init__(self) -> None:
        labels = ["store", "subscription"]
        self.consumers = gauge("gater_subscription_consumers", "Subscribers connected to this node.", labels)
        self.lag_events = gauge(
            "gater_subscription_lag_events",
            "Events committed and not handled yet: persistent, after the checkpoint; transient, "
            "by the furthest-behind subscriber.",
            labels,
        )
        self.lag_seconds = gauge(
            "gater_subscription_lag_seconds",
            "Persistent: age of the oldest event delivered or waiting and not acked. Transient: age of "
            "the last event handed to the furthest-behind subscriber, while it is behind. 0 when caught up.",
            labels,
        )
        self.in_flight = gauge(
            "gater_subscription_in_flight_events", "Persistent: events delivered and not acked yet.", labels
        )
        self.parked = gauge("gater_subscription_parked_events", "Persistent: events parked.", labels)

    def add(
        self,
        store: str,
        subscription: str,
        *,
        consumers: int,
        lag_events: int,
        lag_seconds: float,
        in_flight: int | None = None,
        parked: int | None = None,
    ) -> None:
        key = [store, subscription]
        self.consumers.add_metric(key, consumers)
        self.lag_events.add_metric(key, max(0, lag_events))
        self.lag_seconds.add_metric(key, max(0.0, lag_seconds))
        if in_flight is not None:
            self.in_flight.add_metric(key, in_flight)
        if parked is not None:
            self.parked.add_metric(key, parked)

    def families(self) -> list[Metric]:
        return [self.consumers, self.lag_events, self.lag_seconds, self.in_flight, self.parked]


class CommitObserver:
    """`committed(events, record_bytes)`: one group commit of one store. Thread-safe (the
    SQLite writer calls it from its thread)."""

    __slots__ = ("_events", "_bytes", "_batch")

    def __init__(self, events: Any, record_bytes: Any, batch: Any) -> None:
        self._events, self._bytes, self._batch = events, record_bytes, batch

    def committed(self, events: int, record_bytes: int) -> None:
        if events:
            self._events.inc(events)
            self._bytes.inc(record_bytes)
            self._batch.observe(events)


class _Method:
    """The series of one method, looked up once: `labels()` hashes and locks on every call."""

    __slots__ = ("handled", "labels", "seconds", "started")

    def __init__(self, metrics: Metrics, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.started = metrics.rpc_started.labels(*labels)
        self.seconds = metrics.rpc_seconds.labels(*labels)
        self.handled: dict[str, Any] = {}


@dataclass(slots=True)
class _Call:
    method: _Method
    started: float


class RpcObserver:
    """Counts and times every RPC of a server; `start` when a call begins, `end` with its code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def start(self, full_method: str, streaming: bool) -> _Call:
        methods = self.metrics._rpc_methods
        series = methods.get((full_method, streaming))
        if series is None:
            _, service, method = full_method.split("/", 2)
            series = _Method(self.metrics, (service, method, "server_stream" if streaming else "unary"))
            methods[(full_method, streaming)] = series
        series.started.inc()
        return _Call(series, time.perf_counter())

    def end(self, call: _Call, code: str) -> None:
        series = call.method
        handled = series.handled.get(code)
        if handled is None:
            handled = series.handled[code] = self.metrics.rpc_handled.labels(*series.labels, code)
        handled.inc()
        series.seconds.observe(time.perf_counter() - call.started)


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
