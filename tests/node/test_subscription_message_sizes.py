"""Every Subscribe message fits gRPC's default 4 MiB receive limit, however big the events:
batches are cut by bytes as well as by count, in catch-up and live, with json=true (whose
Struct form can be several times the size of the stored JSON) and with the retry_count of
persistent deliveries counted. The client here keeps grpcio's default limits."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.config import NodeConfig
from gater.node import NodeServer
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector

pytestmark = pytest.mark.timeout(180)

KIB = 1024
DEFAULT_RECEIVE_LIMIT = 4 * 1024 * 1024


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stubs]:
    """A node with its default limits (16 MiB messages) and a client with grpcio's defaults."""
    from tests.store.pg_fixtures import fresh_database

    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if request.param == "postgres":
            dsn = await stack.enter_async_context(fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True))
        node = NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", postgres_dsn=dsn, grace_s=0.5))
        await node.start()
        stack.push_async_callback(node.stop)
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(node.address))
        yield stubs_for(node.address, channel)


def blob_event(size: int) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(
        event_id=str(uuid.uuid4()), event_type="blob", data=json.dumps({"blob": "x" * size}).encode()
    )


def numbers_event(count: int) -> types_pb2.NewEvent:
    """~2 bytes of JSON per number, ~13 bytes each once it is a google.protobuf.Struct."""
    return types_pb2.NewEvent(
        event_id=str(uuid.uuid4()), event_type="numbers", data=json.dumps({"n": [1] * count}).encode()
    )


async def append_each(api: Stubs, events: list[types_pb2.NewEvent], stream_id: str = "big") -> None:
    for event in events:
        await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=[event]))


async def all_of(sub: Collector, n: int) -> list[types_pb2.EventRecord]:
    await sub.wait_for(lambda c: len(c.events) >= n or c.error is not None, timeout_s=60)
    assert sub.error is None, sub.error
    return sub.events


async def test_catch_up_of_big_events_is_cut_by_bytes(api: Stubs) -> None:
    # 60 events of 100 KiB: one message of max_batch (100) events would be 6 MB.
    await append_each(api, [blob_event(100 * KIB) for _ in range(60)])
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all")))
    events = await all_of(sub, 60)
    assert [e.position for e in events] == list(range(60))
    assert sub.messages.count("events") >= 2
    await sub.close()


async def test_every_all_subscription_gets_100_events_of_200_kb(api: Stubs) -> None:
    await append_each(api, [blob_event(200_000) for _ in range(100)])
    subs = [
        Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all"))),
        Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all", max_batch=1000))),
        Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(type=1, selector="blob", json=True))),
        # From the indexes, in batches the store framed: 1,000 of them would be 200 MB.
        Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="bi*", max_batch=1000))),
        Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="bi*", json=True))),
    ]
    for sub in subs:
        assert [e.position for e in await all_of(sub, 100)] == list(range(100))
        await sub.close()


async def test_live_deliveries_are_cut_by_bytes_too(api: Stubs) -> None:
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all", max_batch=1000)))
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    # 30 appends of 5 events of 200 KB each: the tailer hands the subscriber several at once.
    for _ in range(30):
        await api.streams.AppendEvents(
            streams_pb2.AppendEventsRequest(stream_id="live", events=[blob_event(200_000) for _ in range(5)])
        )
    assert [e.position for e in await all_of(sub, 150)] == list(range(150))
    await sub.close()


async def test_json_form_is_counted(api: Stubs) -> None:
    # 40 KB of JSON each, about 260 KB as a Struct: 40 of them are 1.6 MB stored, 10 MB as JSON.
    await append_each(api, [numbers_event(20_000) for _ in range(40)])
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all", json=True)))
    events = await all_of(sub, 40)
    assert [e.position for e in events] == list(range(40))
    assert list(events[0].data_json["n"])[:3] == [1, 1, 1]
    await sub.close()


async def test_a_persistent_subscription_delivers_big_events_instead_of_parking_them(api: Stubs) -> None:
    await api.subscriptions.SaveSubscription(
        pb.SaveSubscriptionRequest(name="big", selector="$all", settings=pb.SubscriptionSettings(max_in_flight=200))
    )
    await append_each(api, [blob_event(200_000) for _ in range(100)])
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="big")))
    events = await all_of(sub, 100)
    assert sorted(e.position for e in events) == list(range(100))
    assert {e.retry_count for e in events} == {0}
    # Retried deliveries carry a retry_count: still within the limit.
    await api.subscriptions.NackEvent(
        pb.NackEventRequest(subscription_name="big", positions=list(range(100)), action=pb.NACK_ACTION_RETRY)
    )
    events = await all_of(sub, 200)
    assert sorted(e.position for e in events[100:]) == list(range(100))
    assert {e.retry_count for e in events[100:]} == {1}
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="big", positions=list(range(100))))
    (info,) = (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert (info.parked, info.checkpoint) == (0, 99)
    await sub.close()
