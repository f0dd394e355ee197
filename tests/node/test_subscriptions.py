"""Transient subscriptions over real gRPC: every kind and selector spelling, start positions,
catch-up then live under concurrent appends, control messages."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import grpc
import pytest
from google.protobuf import struct_pb2

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.helpers import Collector, new_event

BY_STREAM, BY_TYPE, BY_PATTERN, BY_PAYLOAD = 0, 1, 2, 3


def subscribe(api, type_=BY_STREAM, selector="$all", pattern=None, **kw):
    request = pb.SubscribeRequest(type=type_, selector=selector, **kw)
    if pattern is not None:
        request.pattern.CopyFrom(struct(pattern))
    return Collector(api.subscriptions.Subscribe(request))


def struct(value):
    s = struct_pb2.Struct()
    s.update(value)
    return s


async def append(api, stream_id, *events):
    return await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=list(events)))


async def seed(api):
    await append(api, "gh-1", new_event("temperature_measured:v1", {"celsius": 21, "operator": "John"}))
    await append(api, "gh-2", new_event("temperature_measured:v1", {"celsius": 25, "operator": "Paul"}))
    await append(api, "gh-1", new_event("light_switched:v1", {"on": True, "operator": "John", "lamp": {"watts": 60}}))
    await append(api, "gh-2", new_event("humidity_measured:v1", {"percent": 40}))


@pytest.mark.parametrize(
    ("kind", "selector", "pattern", "expected_positions"),
    [
        (BY_STREAM, "$all", None, [0, 1, 2, 3]),
        (BY_STREAM, "gh-1", None, [0, 2]),
        (BY_STREAM, "$gh-1", None, [0, 2]),  # the seed's spelling
        (BY_TYPE, "temperature_measured:v1", None, [0, 1]),
        (BY_PATTERN, "", {"stream_id": "gh-2", "event_type": "humidity_measured:v1"}, [3]),
        (BY_PATTERN, "", {"data": {"operator": "John"}}, [0, 2]),
        (BY_PAYLOAD, "", {"operator": "John"}, [0, 2]),
        (BY_PAYLOAD, "", {"celsius": "_"}, [0, 1]),  # wildcard: field present, any value
        (BY_PAYLOAD, "", {"lamp": {"watts": 60}}, [2]),  # nested
        (BY_PAYLOAD, "", {"lamp": {"watts": "_"}, "on": True}, [2]),
        (BY_PAYLOAD, "", {"operator": "Ringo"}, []),
    ],
)
async def test_each_kind_catches_up_then_goes_live(api, kind, selector, pattern, expected_positions):
    await seed(api)
    sub = subscribe(api, kind, selector, pattern)
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert sub.messages[0] == "confirmation"
    assert [e.position for e in sub.events] == expected_positions
    await seed(api)  # the same four again, now live
    expected_live = expected_positions + [p + 4 for p in expected_positions]
    if expected_positions:
        await sub.count(len(expected_live))
    assert [e.position for e in sub.events] == expected_live
    await sub.close()


async def test_start_positions(api):
    await seed(api)
    from_revision = subscribe(api, start_from=pb.StartFrom(revision=2))
    from_version = subscribe(api, BY_STREAM, "gh-1", start_from=pb.StartFrom(revision=1))
    from_now = subscribe(api, start_from=pb.StartFrom(origin=pb.StartFrom.ORIGIN_NOW))
    for sub in (from_revision, from_version, from_now):
        await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert [e.position for e in from_revision.events] == [2, 3]
    assert [e.version for e in from_version.events] == [1]
    assert from_now.events == []
    await append(api, "gh-1", new_event())
    await from_now.count(1)
    await from_version.count(2)
    assert [e.position for e in from_now.events] == [4]
    assert [e.version for e in from_version.events] == [1, 2]
    for sub in (from_revision, from_version, from_now):
        await sub.close()


async def test_filters_send_checkpoints_and_idle_streams_heartbeats(api):
    sub = subscribe(api, BY_TYPE, "never-appended", heartbeat_ms=200)
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    for _ in range(20):
        await append(api, "noise", *[new_event() for _ in range(50)])
    await sub.wait_for(lambda c: "checkpoint" in c.messages)
    assert sub.last["checkpoint"].position > 0
    await sub.wait_for(lambda c: "heartbeat" in c.messages and c.last["heartbeat"].position == 999)
    assert sub.events == []
    await sub.close()


async def test_events_travel_in_batches(api):
    await append(api, "s", *[new_event() for _ in range(90)])
    sub = subscribe(api, max_batch=40)
    await sub.count(90)
    assert sub.messages.count("events") < 90  # several records per message
    await sub.close()


async def test_randomized_catch_up_to_live_switch_loses_and_repeats_nothing(api):
    rng = random.Random(7)
    streams = [f"r-{i}" for i in range(4)]
    types_ = ["a:v1", "b:v1", "c:v1"]
    total = 0
    progress = asyncio.Condition()
    subscribers: list[tuple[str, object, Collector]] = []

    async def appender(n: int) -> None:
        nonlocal total
        for _ in range(30):
            events = [new_event(rng.choice(types_), {"n": n, "k": rng.randint(0, 3)}) for _ in range(rng.randint(1, 4))]
            await append(api, rng.choice(streams), *events)
            async with progress:
                total += len(events)
                progress.notify_all()

    async def starter() -> None:
        # Subscribers start at random points of the append run (150 appends, ~375 events).
        for threshold in sorted(rng.randint(0, 300) for _ in range(8)):
            async with progress:
                await progress.wait_for(lambda t=threshold: total >= t)
            choice = rng.randint(0, 3)
            if choice == 0:
                subscribers.append(("all", None, subscribe(api)))
            elif choice == 1:
                name = rng.choice(streams)
                subscribers.append(("stream", name, subscribe(api, BY_STREAM, name)))
            elif choice == 2:
                t = rng.choice(types_)
                subscribers.append(("type", t, subscribe(api, BY_TYPE, t)))
            else:
                k = rng.randint(0, 3)
                subscribers.append(("payload", k, subscribe(api, BY_PAYLOAD, "", {"k": k})))

    await asyncio.gather(*(appender(n) for n in range(5)), starter())
    everything = []
    async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
        everything.extend(batch.events)
    assert len(everything) == total

    def wanted(kind, arg, e: types_pb2.EventRecord) -> bool:
        if kind == "all":
            return True
        if kind == "stream":
            return e.stream_id == arg
        if kind == "type":
            return e.event_type == arg
        return json.loads(e.data)["k"] == arg

    for kind, arg, sub in subscribers:
        expected = [e.position for e in everything if wanted(kind, arg, e)]
        await sub.count(len(expected))
        got = [e.position for e in sub.events]
        assert got == expected, (kind, arg)
        await sub.close()


async def test_bad_subscription_requests(api):
    for request, field in [
        (pb.SubscribeRequest(type=BY_STREAM, selector=""), "selector"),
        (pb.SubscribeRequest(type=9, selector="x"), "type"),
        (pb.SubscribeRequest(type=BY_PAYLOAD), "pattern"),
        (pb.SubscribeRequest(selector="$all", max_batch=5000), "max_batch"),
        (pb.SubscribeRequest(selector="$all", start_from=pb.StartFrom(revision=-3)), "start_from.revision"),
        (pb.SubscribeRequest(subscription_name="nope"), None),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in api.subscriptions.Subscribe(request):
                pass
        if field is None:
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
        else:
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
            assert info.value.details().startswith(field), info.value.details()


async def test_a_client_cancelling_its_subscriptions_is_no_news_in_the_log(node, api, caplog):
    await seed(api)
    await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="workers", selector="$all"))
    subs = [subscribe(api) for _ in range(10)] + [subscribe(api, BY_TYPE, "light_switched:v1") for _ in range(5)]
    subs += [Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="workers"))) for _ in range(5)]
    for sub in subs:
        await sub.wait_for(lambda c: "caught_up" in c.messages or len(c.events) > 0)
    caplog.clear()
    for sub in subs:
        await sub.close()
        assert sub.error is None
    # A graceful stop waits for every call to finish unwinding: whatever the cancellations
    # logged is in by then.
    await node.stop()
    noisy = [
        r for r in caplog.records
        if r.name.startswith("gater") and r.levelno > logging.DEBUG and r.getMessage() not in STOP_LINES
    ]
    assert noisy == []


STOP_LINES = {"node stopped", "shutting down"}
