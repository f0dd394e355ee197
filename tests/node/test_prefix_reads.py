"""Reads of "$all" by stream prefix and from a time over real gRPC, on each backend (the `api`
fixture): what they select, the head every message carries, and bad input named."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from exesdb.v1 import streams_pb2, types_pb2

__all__: list[str] = []

BACKWARD = streams_pb2.READ_DIRECTION_BACKWARD


def event(event_type: str, *tags: str) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type=event_type, data=b"{}", tags=tags)


async def read(stub: Any, **kw: Any) -> tuple[list[types_pb2.EventRecord], list[int]]:
    """The events of a read and the head of every message."""
    events, heads = [], []
    async for message in stub.ReadEvents(streams_pb2.ReadEventsRequest(**kw)):
        events.extend(message.events)
        heads.append(message.head if message.HasField("head") else None)
    return events, heads


async def orders(stub: Any) -> list[types_pb2.EventRecord]:
    """order-1, orders, order-2, customer-1, order-1: one append each; every event read back."""
    for stream_id in ("order-1", "orders", "order-2", "customer-1", "order-1"):
        await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=[event("placed", "k:1")]))
    return (await read(stub, stream_id="$all"))[0]


async def test_a_prefix_read_over_grpc(api: Any) -> None:
    await orders(api.streams)
    events, heads = await read(api.streams, stream_prefix="order-*")
    assert [(e.position, e.stream_id) for e in events] == [(0, "order-1"), (2, "order-2"), (4, "order-1")]
    assert set(heads) == {4}
    events, _ = await read(api.streams, stream_prefix="order-", direction=BACKWARD, count=2)
    assert [e.position for e in events] == [4, 2]
    events, _ = await read(api.streams, stream_id="$all", stream_prefix="order-", from_version=1)
    assert [e.position for e in events] == [2, 4]
    events, _ = await read(api.streams, stream_prefix="ord")
    assert [e.position for e in events] == [0, 1, 2, 4]
    q = types_pb2.Query(items=[types_pb2.QueryItem(types=["placed"], tags=["k:1"])])
    events, _ = await read(api.streams, stream_prefix="customer-", query=q)
    assert [e.position for e in events] == [3]
    assert await read(api.streams, stream_prefix="nobody-") == ([], [4])  # one message, with the head


async def test_a_read_from_a_time_over_grpc(api: Any) -> None:
    written = await orders(api.streams)
    at = written[2].created  # a Timestamp, as every record carries it
    created = [e.created_epoch for e in written]
    t = created[2]
    forward = [e.position for e in written if e.created_epoch >= t]
    events, heads = await read(api.streams, from_time=at)
    assert [e.position for e in events] == forward and set(heads) == {4}
    backward = [e.position for e in written if e.created_epoch <= t][::-1]
    events, _ = await read(api.streams, from_time=at, direction=BACKWARD)
    assert [e.position for e in events] == backward
    # With a prefix; and with from_version, the later start forward, the earlier backward.
    events, _ = await read(api.streams, from_time=at, stream_prefix="order-")
    assert [e.position for e in events] == [p for p in forward if p in (0, 2, 4)]
    events, _ = await read(api.streams, from_time=at, from_version=4)
    assert [e.position for e in events] == [4]
    events, _ = await read(api.streams, from_time=at, from_version=0, direction=BACKWARD)
    assert [e.position for e in events] == [0]
    # Before every event; after every event.
    early = timestamp_pb2.Timestamp(seconds=0)
    assert [e.position for e in (await read(api.streams, from_time=early))[0]] == [0, 1, 2, 3, 4]
    assert await read(api.streams, from_time=early, direction=BACKWARD) == ([], [4])
    late = timestamp_pb2.Timestamp(seconds=253_402_300_799)
    assert await read(api.streams, from_time=late) == ([], [4])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"stream_prefix": "*"}, "stream_prefix"),
        ({"stream_prefix": "a*b"}, "stream_prefix"),
        ({"stream_prefix": "x" * 2000}, "stream_prefix"),
        ({"stream_prefix": "a\nb"}, "stream_prefix"),
        ({"stream_prefix": "order-", "stream_id": "order-1"}, "stream_id"),
        ({"from_time": timestamp_pb2.Timestamp(seconds=1, nanos=-1)}, "from_time.nanos"),
        ({"from_time": timestamp_pb2.Timestamp(seconds=10**12)}, "from_time.seconds"),
        ({"from_time": timestamp_pb2.Timestamp(seconds=1), "stream_id": "s"}, "stream_id"),
    ],
)
async def test_bad_filters_are_invalid_argument_naming_the_field(api: Any, fields: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read(api.streams, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field), caught.value.details()


async def test_a_gateway_forwards_prefix_and_time_reads(api: Any, gateway: Any) -> None:
    written = await orders(api.streams)
    events, heads = await read(gateway.api.streams, stream_prefix="order-", from_time=written[1].created)
    assert [e.position for e in events] == [p for p in (2, 4) if written[p].created_epoch >= written[1].created_epoch]
    assert set(heads) == {4}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read(gateway.api.streams, stream_prefix="*")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
