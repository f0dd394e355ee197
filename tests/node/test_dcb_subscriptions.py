"""Subscriptions by DCB query (SUBSCRIPTION_TYPE_BY_QUERY) over real gRPC, on each backend:
transient ones catch up from the indexes then go live; persistent ones deliver and ack the
same selection."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.errors import InvalidArgumentError
from gater.subscriptions.matching import SubscriptionKind, make_filter
from tests.helpers import Collector

__all__: list[str] = []

BY_QUERY = pb.SUBSCRIPTION_TYPE_BY_QUERY
C1_SEATS = {"items": [{"types": ["student_subscribed"], "tags": ["course:c1"]}, {"tags": ["course:c9"]}]}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


async def append(api: Any, stream_id: str, event_type: str, *tags: str) -> None:
    event = types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type=event_type, data=b"{}", tags=tags)
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=[event]))


async def seed(api: Any) -> None:
    await append(api, "c1", "course_defined", "course:c1")  # 0
    await append(api, "s1", "student_subscribed", "course:c1", "student:s1")  # 1
    await append(api, "s2", "student_subscribed", "course:c2", "student:s2")  # 2
    await append(api, "c9", "course_defined", "course:c9")  # 3


async def test_a_query_subscription_catches_up_then_goes_live(api: Any) -> None:
    await seed(api)
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(type=BY_QUERY, pattern=struct(C1_SEATS))))
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert [e.position for e in sub.events] == [1, 3]
    assert list(sub.events[0].tags) == ["course:c1", "student:s1"]
    await seed(api)  # 4..7, live
    await sub.count(4)
    assert [e.position for e in sub.events] == [1, 3, 5, 7]
    await sub.close()


async def test_a_query_subscription_from_a_position(api: Any) -> None:
    await seed(api)
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(
        type=BY_QUERY, pattern=struct(C1_SEATS), start_from=pb.StartFrom(revision=2),
    )))
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert [e.position for e in sub.events] == [3]
    await sub.close()


async def test_a_persistent_query_subscription_delivers_the_same_selection(api: Any) -> None:
    await seed(api)
    await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(
        name="seats", type=BY_QUERY, pattern=struct(C1_SEATS),
    ))
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="seats")))
    await sub.count(2)
    assert [e.position for e in sub.events] == [1, 3]
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="seats", positions=[1, 3]))
    await append(api, "s3", "student_subscribed", "course:c1", "student:s3")
    await sub.count(3)
    assert sub.events[-1].position == 4
    await sub.close()


async def test_a_bad_query_pattern_names_the_field(api: Any) -> None:
    bad = {"items": [{"types": ["t"], "tags": ["not a tag"]}]}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(type=BY_QUERY, pattern=struct(bad)))).task
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("pattern.items[0].tags[0]")


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        ({"items": "x"}, "pattern"),
        ({"items": [], "more": 1}, "pattern"),
        ({"items": [{"kinds": ["x"]}]}, "pattern.items[0]"),
        ({"items": [{"types": "x"}]}, "pattern.items[0].types"),
    ],
)
def test_query_patterns_are_checked(pattern: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        make_filter(SubscriptionKind.BY_QUERY, "", pattern)
    assert caught.value.field == field
