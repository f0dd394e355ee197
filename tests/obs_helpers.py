"""What the observability tests share: an HTTP GET over a plain socket, /metrics parsed into
series, and a span exporter that tests can await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client.parser import text_string_to_metric_families

from gater.client import Event, Subscription
from gater.tracing import Tracing


async def http_get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    """(status, body) of GET `path` on host:port."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Series:
    """Every sample of /metrics: (name, labels) -> value."""
    status, body = await http_get(port, "/metrics")
    assert status == 200, body
    out: Series = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(series: Series, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in series.items() if n == name and want <= ls)


def has(series: Series, name: str) -> bool:
    return any(n == name for n, _ in series)


async def take(sub: Subscription, n: int, timeout_s: float = 20) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(timeout_s):
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
    return out


class Spans(SpanExporter):
    """Records finished spans; `await until(predicate)` returns once they satisfy it."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        self._loop.call_soon_threadsafe(self._changed.set)
        return SpanExportResult.SUCCESS

    def provider(self, service: str) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(self))
        return provider

    def tracing(self, service: str, **kw: Any) -> Tracing:
        return Tracing(self.provider(service), **kw)

    async def until(self, predicate: Callable[[list[ReadableSpan]], bool], timeout_s: float = 20) -> list[ReadableSpan]:
        async with asyncio.timeout(timeout_s):
            while not predicate(self.spans):
                self._changed.clear()
                await self._changed.wait()
        return self.spans
