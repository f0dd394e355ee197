"""Subscriptions whose catch-up the store's indexes answer — BY_STREAM with a "prefix*"
selector, and BY_QUERY — transient and persistent, over real gRPC on each backend: they
deliver the same events a scan of `$all` would select, and they read them with
`EventStore.read_query` instead of reading `$all` (the node's store is wrapped to count what
each read returned; the wrapper only counts, the real store does the work)."""

from __future__ import annotations

import collections
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.config import NodeConfig
from gater.node import NodeServer
from gater.store.base import EventStore, StorageBackend
from gater.store.postgres import PostgresBackend
from gater.store.sqlite import SqliteBackend
from tests.conftest import small_limits, stubs_for
from tests.helpers import Collector
from tests.store.pg_fixtures import fresh_database

__all__: list[str] = []

pytestmark = pytest.mark.timeout(120)

NOISE = 400
"""Events that match no subscription here: a catch-up that scanned `$all` would read them."""


class CountingStore:
    """A real store, with the events each kind of read returned counted."""

    def __init__(self, store: EventStore, rows: collections.Counter[str]) -> None:
        self._store, self._rows = store, rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_all(self, *args: Any, **kw: Any) -> Any:
        page = await self._store.read_all(*args, **kw)
        self._rows["read_all"] += len(page)
        return page

    async def read_query(self, *args: Any, **kw: Any) -> Any:
        page, head = await self._store.read_query(*args, **kw)
        self._rows["read_query"] += len(page)
        self._rows["read_query calls"] += 1
        return page, head

    async def read_query_batches(self, *args: Any, **kw: Any) -> Any:
        """The same read, framed (a transient catch-up's): counted as one."""
        batches, head = await self._store.read_query_batches(*args, **kw)
        self._rows["read_query"] += sum(b.count for b in batches)
        self._rows["read_query calls"] += 1
        return batches, head


class CountingBackend:
    """A real backend whose stores are CountingStores."""

    def __init__(self, backend: StorageBackend) -> None:
        self._backend = backend
        self.rows: collections.Counter[str] = collections.Counter()
        self._stores: dict[str, CountingStore] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def __aenter__(self) -> CountingBackend:
        await self._backend.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._backend.stop()

    async def open_store(self, store_id: str) -> CountingStore:
        store = await self._backend.open_store(store_id)
        if store_id not in self._stores:
            self._stores[store_id] = CountingStore(store, self.rows)
        return self._stores[store_id]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def counted(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Any, CountingBackend]]:
    async with contextlib.AsyncExitStack() as stack:
        limits = small_limits()
        if request.param == "postgres":
            dsn = await stack.enter_async_context(fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True))
            real: StorageBackend = PostgresBackend(dsn, limits=limits, node_id="counted")
        else:
            real = SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=limits)
        backend = CountingBackend(real)
        config = NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", limits=limits, grace_s=0.5)
        server = NodeServer(config, backend)  # type: ignore[arg-type] - a counting stand-in
        await server.start()
        stack.push_async_callback(server.stop)
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(server.address))
        yield stubs_for(server.address, channel), backend


def event(event_type: str, *tags: str) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type=event_type, data=b"{}", tags=tags)


async def append(api: Any, stream_id: str, *events: types_pb2.NewEvent) -> None:
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events))


async def seed(api: Any) -> None:
    """order-1 (0), NOISE events, orders (tagged k:1), order-2, NOISE events, order-1 again."""
    await append(api, "order-1", event("placed"))
    for n in range(NOISE // 100):
        await append(api, f"noise-{n}", *(event("noise") for _ in range(100)))
    await append(api, "orders", event("placed", "k:1"))
    await append(api, "order-2", event("placed"))
    for n in range(NOISE // 100):
        await append(api, f"noise-{n}", *(event("noise") for _ in range(100)))
    await append(api, "order-1", event("placed", "k:1"))


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


PREFIX = {"type": pb.SUBSCRIPTION_TYPE_BY_STREAM, "selector": "order-*"}
QUERY = {"type": pb.SUBSCRIPTION_TYPE_BY_QUERY, "pattern": struct({"items": [{"tags": ["k:1"]}]})}


async def all_positions(api: Any, wanted: Any) -> list[int]:
    """What a scan of $all selects: the positions of the events `wanted` keeps."""
    found = []
    async for message in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
        found.extend(e.position for e in message.events if wanted(e))
    return found


@pytest.mark.parametrize(("selection", "wanted"), [
    (PREFIX, lambda e: e.stream_id.startswith("order-")),
    (QUERY, lambda e: "k:1" in e.tags),
])  # fmt: skip
async def test_a_transient_subscription_catches_up_from_the_indexes(counted: Any, selection: Any, wanted: Any) -> None:
    api, backend = counted
    await seed(api)
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(**selection)))
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    caught_up = [e.position for e in sub.events]
    assert backend.rows["read_all"] < NOISE and backend.rows["read_query calls"] >= 1, backend.rows
    await append(api, "order-3", event("placed", "k:1"))  # live
    await sub.count(len(caught_up) + 1)
    await sub.close()
    assert [e.position for e in sub.events] == await all_positions(api, wanted)


@pytest.mark.parametrize(("selection", "wanted"), [
    (PREFIX, lambda e: e.stream_id.startswith("order-")),
    (QUERY, lambda e: "k:1" in e.tags),
])  # fmt: skip
async def test_a_persistent_subscription_catches_up_from_the_indexes(counted: Any, selection: Any, wanted: Any) -> None:
    api, backend = counted
    await seed(api)
    await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="idx", **selection))
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="idx")))
    expected_now = 3 if selection is PREFIX else 2
    await sub.count(expected_now)
    assert backend.rows["read_all"] < NOISE and backend.rows["read_query calls"] >= 1, backend.rows
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="idx", positions=[e.position for e in sub.events]))
    await append(api, "order-3", event("placed", "k:1"))  # after catch-up
    await sub.count(expected_now + 1)
    await sub.close()
    assert [e.position for e in sub.events] == await all_positions(api, wanted)


async def test_a_prefix_selector_is_checked(counted: Any) -> None:
    api, _ = counted
    for selector, message in (("*", "selector"), ("a*b*", "selector")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in api.subscriptions.Subscribe(pb.SubscribeRequest(selector=selector)):
                break
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith(message), caught.value.details()


async def test_an_indexed_catch_up_that_finds_nothing_goes_live(counted: Any) -> None:
    api, _ = counted
    await seed(api)
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="nobody-*")))
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert sub.events == []
    assert sub.last["caught_up"].position == NOISE * 2 + 3  # examined up to the head (the last of 804 events)
    await append(api, "nobody-1", event("late"))
    assert [e.stream_id for e in await sub.count(1)] == ["nobody-1"]
    await sub.close()
