"""Streams over real gRPC: expected versions, idempotency, reads in every direction, $all."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from tests.helpers import details, new_event, read


async def append(api, stream_id, events, **expected):
    return await api.streams.AppendEvents(
        streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events, **expected)
    )


async def test_first_event_is_version_zero_and_missing_stream_is_minus_one(api):
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"))).version == -1
    reply = await append(api, "s", [new_event(), new_event()])
    assert (reply.first_version, reply.version, reply.first_position, reply.position) == (0, 1, 0, 1)
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"))).version == 1
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version == 1


@pytest.mark.parametrize(
    ("expected", "ok_when_missing", "ok_when_present"),
    [
        ({}, True, True),
        ({"expected_state": types_pb2.EXPECTED_STATE_ANY}, True, True),
        ({"expected_state": types_pb2.EXPECTED_STATE_NO_STREAM}, True, False),
        ({"expected_version": -1}, True, False),
        ({"expected_state": types_pb2.EXPECTED_STATE_STREAM_EXISTS}, False, True),
        ({"expected_version": 0}, False, True),
        ({"expected_version": 3}, False, False),
    ],
)
async def test_expected_version_modes(api, expected, ok_when_missing, ok_when_present):
    for stream_id, ok, current in (("missing", ok_when_missing, -1), ("present", ok_when_present, 0)):
        if current == 0:
            await append(api, stream_id, [new_event()])
        if ok:
            reply = await append(api, stream_id, [new_event()], **expected)
            assert reply.version == current + 1
            continue
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await append(api, stream_id, [new_event()], **expected)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        (detail,) = details(info.value)
        assert isinstance(detail, types_pb2.WrongExpectedVersion)
        assert detail.current_version == current
        assert detail.stream_id == stream_id
        assert len(await read(api.streams, stream_id)) == current + 1


async def test_reappending_the_same_ids_is_a_no_op_with_the_original_result(api):
    events = [new_event(data={"n": i}) for i in range(3)]
    first = await append(api, "orders", events, expected_version=-1)
    await append(api, "orders", [new_event()])
    again = await append(api, "orders", events, expected_version=-1)
    assert again.duplicate and not first.duplicate
    assert (again.first_version, again.version, again.position) == (first.first_version, first.version, first.position)
    assert [e.event_id for e in await read(api.streams, "orders")][:3] == [e.event_id for e in events]
    assert len(await read(api.streams, "orders")) == 4


async def test_an_id_reused_elsewhere_is_already_exists_and_writes_nothing(api):
    taken = new_event()
    await append(api, "a", [taken])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(api, "b", [new_event(), taken])
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "events[1].event_id" in info.value.details()
    assert await read(api.streams, "b") == []


async def test_server_assigns_time_ordered_ids_when_absent(api):
    await append(api, "s", [types_pb2.NewEvent(event_type="t", data=b"{}") for _ in range(3)])
    await append(api, "s", [types_pb2.NewEvent(event_type="t", data=b"{}")])
    ids = [uuid.UUID(r.event_id) for r in await read(api.streams, "s")]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids)  # UUIDv7: later ids sort later


async def test_reads_forward_backward_clipped_and_missing(api):
    # read_batch is 7 in tests, so 20 events cross several pages.
    await append(api, "s", [new_event(data={"n": i}) for i in range(20)])
    forward = await read(api.streams, "s")
    assert [e.version for e in forward] == list(range(20))
    assert [e.version for e in await read(api.streams, "s", from_version=5, count=9)] == list(range(5, 14))
    backward = await read(api.streams, "s", direction=streams_pb2.READ_DIRECTION_BACKWARD)
    assert [e.version for e in backward] == list(range(19, -1, -1))
    assert [e.version for e in await read(api.streams, "s", from_version=3, direction=1)] == [3, 2, 1, 0]
    # clipped: past the end
    assert await read(api.streams, "s", from_version=100) == []
    assert [e.version for e in await read(api.streams, "s", from_version=100, count=2, direction=1)] == [19, 18]
    assert [e.version for e in await read(api.streams, "s", from_version=18, count=10)] == [18, 19]
    assert await read(api.streams, "nothing-here") == []


async def test_all_is_in_global_order_across_streams(api):
    for i in range(10):
        await append(api, f"s-{i % 3}", [new_event(data={"i": i})])
    everything = await read(api.streams, "$all")
    assert [e.position for e in everything] == list(range(10))
    assert [e.stream_id for e in everything] == [f"s-{i % 3}" for i in range(10)]
    assert [e.position for e in await read(api.streams, "$all", from_version=8, direction=1)] == [8, 7, 6, 5, 4, 3, 2, 1, 0]


async def test_concurrent_appends_get_dense_positions(api):
    async def one(i):
        return await append(api, f"c-{i % 4}", [new_event(), new_event()])

    replies = await asyncio.gather(*(one(i) for i in range(40)))
    positions = sorted(p for r in replies for p in (r.first_position, r.position))
    assert positions == list(range(80))
    for i in range(4):
        assert [e.version for e in await read(api.streams, f"c-{i}")] == list(range(20))


async def test_json_bodies_round_trip_without_base64(api):
    event = types_pb2.NewEvent(event_type="temperature_measured:v1")
    event.data_json.update({"celsius": 21, "sensor": {"id": "a"}})
    await append(api, "g", [event])
    (raw,) = await read(api.streams, "g")
    assert raw.data == b'{"celsius":21,"sensor":{"id":"a"}}'
    assert raw.content_type == "application/json"
    (as_json,) = await read(api.streams, "g", json=True)
    assert as_json.data == b"" and as_json.data_json["sensor"]["id"] == "a"
    assert as_json.created.seconds > 0 and as_json.created_epoch // 1_000_000 == as_json.created.seconds


async def test_list_streams_pages(api):
    for name in ["b", "a", "d", "c", "e"]:
        await append(api, name, [new_event()])
    seen, token = [], ""
    while True:
        page = await api.streams.ListStreams(streams_pb2.ListStreamsRequest(page_size=2, page_token=token))
        seen += [s.stream_id for s in page.streams]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["a", "b", "c", "d", "e"]


async def test_an_event_without_metadata_has_no_metadata_content_type(api):
    bare = types_pb2.NewEvent(event_type="t", data=b"{}")
    with_metadata = types_pb2.NewEvent(event_type="t", data=b"{}", metadata=b'{"by":"me"}')
    with_json_metadata = types_pb2.NewEvent(event_type="t", data=b"{}")
    with_json_metadata.metadata_json.update({"by": "me"})
    typed = types_pb2.NewEvent(event_type="t", data=b"x", metadata=b"y", metadata_content_type="text/plain")
    await append(api, "m", [bare, with_metadata, with_json_metadata, typed])
    for json_ in (False, True):
        records = await read(api.streams, "m", json=json_)
        assert [r.metadata_content_type for r in records] == ["", "application/json", "application/json", "text/plain"]
        assert [r.content_type for r in records] == ["application/json"] * 3 + ["application/json"]


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [33, 40, 500, 5000, 60_000])
async def test_stored_json_too_deep_to_convert_is_read_as_bytes(api, depth):
    # Raw bytes labelled JSON are stored as they come; a read with json=true must never fail
    # on them (a RecursionError, or a Struct no client can parse): they travel as bytes.
    bodies = [b'{"n":1}', deep(depth), b'{"nan":NaN}', b'[1,2]', b"not json", deep(32)]
    await append(api, "d", [types_pb2.NewEvent(event_type="t", data=b, metadata=b) for b in bodies])
    for stream_id in ("d", "$all"):
        records = await read(api.streams, stream_id, json=True)
        assert [r.data for r in records] == [b"", *bodies[1:5], b""]
        assert [r.metadata for r in records] == [b"", *bodies[1:5], b""]
        assert records[0].data_json["n"] == 1
        assert records[5].data_json["a"]["a"]["a"] is not None
        backward = await read(api.streams, stream_id, json=True, direction=streams_pb2.READ_DIRECTION_BACKWARD)
        assert len(backward) == len(bodies)

