"""OpenTelemetry traces: one trace id from the Python client through the gateway to the node,
for an append and for a subscription (in-memory span export), and the appended event's
metadata carrying the trace when the node records it (trace_metadata).

Covers: the client's span per call and its `traceparent`; the gateway's server span, its
client span per forwarding attempt (whose traceparent replaces the caller's) and the node's
server span, parented in that order; JSON object metadata gaining "traceparent", events
without metadata getting {"traceparent": ...}, metadata that is not JSON or already has the
key left as it is; nothing recorded with the option off; a failed call's spans marked failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from gater.client import ALL, Client, NewEvent
from gater.config import GatewayConfig, NodeConfig
from gater.errors import WrongExpectedVersionError
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.node import NodeServer
from tests.obs_helpers import Spans, take

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def traced(tmp_path: Path, spans: Spans, record: bool = True) -> AsyncIterator[Client]:
    """A node (recording traceparents when `record`) behind a gateway, each tracing into
    `spans` as its own service, and a traced client of the gateway."""
    node = NodeServer(
        NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", grace_s=0.2),
        tracing=spans.tracing("gater-node", record_in_metadata=record),
    )
    async with node:
        gateway = GatewayServer(
            GatewayConfig(listen="127.0.0.1:0", grace_s=0.1),
            StaticDiscovery([node.address]),
            tracing=spans.tracing("gater-gateway"),
        )
        async with gateway, await Client.connect(gateway.address, tracing=spans.provider("app")) as client:
            yield client


def service(span) -> str:  # type: ignore[no-untyped-def]
    return span.resource.attributes["service.name"]


def chain(spans: list, name: str) -> list:  # type: ignore[no-untyped-def]
    """The spans named `name`, client → gateway (server, client) → node, checked to be one
    trace with each the parent of the next."""
    found = {(service(s), s.kind): s for s in spans if s.name == name}
    order = [("app", SpanKind.CLIENT), ("gater-gateway", SpanKind.SERVER), ("gater-gateway", SpanKind.CLIENT),
             ("gater-node", SpanKind.SERVER)]  # fmt: skip
    assert set(order) <= set(found), sorted(found)
    links = [found[k] for k in order]
    assert len({s.context.trace_id for s in links}) == 1
    for parent, child in zip(links, links[1:], strict=False):
        assert child.parent is not None and child.parent.span_id == parent.context.span_id
    return links


async def test_append_is_one_trace_and_the_event_carries_it(tmp_path: Path) -> None:
    spans = Spans()
    async with traced(tmp_path, spans) as client:
        await client.append_events("", "gh-1", [
            NewEvent("reading:v1", {"celsius": 21}, metadata={"operator": "John"}),
            NewEvent("reading:v1", {"celsius": 22}),
            NewEvent("reading:v1", {"celsius": 23}, metadata={"traceparent": "mine"}),
            NewEvent("reading:v1", {"celsius": 24}, metadata=b"\x00raw", metadata_content_type="application/octet-stream"),
        ])  # fmt: skip
        name = "exesdb.v1.Streams/AppendEvents"
        await spans.until(lambda s: sum(x.name == name for x in s) == 4)
        app, _, _, node = chain(spans.spans, name)
        events = await client.get_events("", "gh-1")
    trace_id = f"{app.context.trace_id:032x}"
    first, second, third, fourth = (e.metadata for e in events)
    # The node's own span: a consumer that goes on from it is a child of the append.
    assert first["operator"] == "John"
    assert first["traceparent"].startswith(f"00-{trace_id}-{node.context.span_id:016x}-")
    assert second == {"traceparent": first["traceparent"]}
    assert third == {"traceparent": "mine"}
    assert fourth == b"\x00raw"


async def test_subscription_is_one_trace(tmp_path: Path) -> None:
    spans = Spans()
    async with traced(tmp_path, spans) as client:
        await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": 21})])
        async with client.subscribe("", stream=ALL) as sub:
            await take(sub, 1)
        name = "exesdb.v1.Subscriptions/Subscribe"
        await spans.until(lambda s: sum(x.name == name for x in s) == 4)
        chain(spans.spans, name)


async def test_without_the_option_events_keep_their_metadata(tmp_path: Path) -> None:
    spans = Spans()
    async with traced(tmp_path, spans, record=False) as client:
        await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": 21})])
        (event,) = await client.get_events("", "gh-1")
    assert event.metadata is None or event.metadata == {}


async def test_a_failed_call_is_a_failed_trace(tmp_path: Path) -> None:
    spans = Spans()
    async with traced(tmp_path, spans) as client:
        with pytest.raises(WrongExpectedVersionError):
            await client.append_events("", "gh-1", [NewEvent("reading:v1", {})], expected_version=5)
        name = "exesdb.v1.Streams/AppendEvents"
        await spans.until(lambda s: sum(x.name == name for x in s) == 4)
        for span in chain(spans.spans, name):
            assert span.status.status_code == StatusCode.ERROR, (service(span), span.kind)
