"""One test per class of bad input: the status code names the problem and nothing is written."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf import struct_pb2

from exesdb.v1 import snapshots_pb2, streams_pb2, subscriptions_pb2, types_pb2
from tests.helpers import details, new_event, read


async def assert_rejected(call, code, field):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    if field is not None:
        assert info.value.details().startswith(f"{field}:"), info.value.details()
        if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
            assert [d.field for d in details(info.value)] == [field]
    return info.value


async def assert_nothing_written(api):
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version == -1


def append(api, stream_id="s", events=None, **kw):
    return api.streams.AppendEvents(
        streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events or [new_event()], **kw)
    )


@pytest.mark.parametrize(
    ("stream_id", "why"),
    [("", "empty"), ("x" * 257, "too long"), ("é" * 129, "too long in bytes"), ("$all", "reserved"),
     ("$mine", "reserved"), ("a\nb", "control character")],
)
async def test_bad_stream_id(api, stream_id, why):
    await assert_rejected(append(api, stream_id), grpc.StatusCode.INVALID_ARGUMENT, "stream_id")
    await assert_nothing_written(api)


async def test_longest_stream_id_is_accepted(api):
    await append(api, "x" * 256)
    assert len(await read(api.streams, "x" * 256)) == 1


async def test_unknown_enum_values(api):
    request = streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()])
    request.expected_state = 7
    await assert_rejected(api.streams.AppendEvents(request), grpc.StatusCode.INVALID_ARGUMENT, "expected_state")
    await assert_nothing_written(api)
    read_request = streams_pb2.ReadEventsRequest(stream_id="s")
    read_request.direction = 9
    await assert_rejected(read(api.streams, "s", direction=9), grpc.StatusCode.INVALID_ARGUMENT, "direction")


async def test_too_many_events_is_resource_exhausted(api):
    # The test node allows 100 events per append.
    await assert_rejected(
        append(api, events=[new_event() for _ in range(101)]), grpc.StatusCode.RESOURCE_EXHAUSTED, "events"
    )
    await assert_nothing_written(api)


async def test_one_tag_repeated_past_the_limit_is_resource_exhausted(api):
    """Repeats count toward max_tags_per_event, which is checked before any tag is read: a
    message of one tag repeated ten thousand times is refused, not deduplicated at length."""
    event = new_event()
    event.tags.extend(["course:c1"] * 10_000)
    await assert_rejected(append(api, events=[event]), grpc.StatusCode.RESOURCE_EXHAUSTED, "events[0].tags")
    await assert_nothing_written(api)


async def test_no_events(api):
    call = api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s"))
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "events")


async def test_oversized_message_is_resource_exhausted(api):
    # The test node's max message size is 1 MiB.
    big = types_pb2.NewEvent(event_type="big", data=b"x" * (1024 * 1024 + 1))
    await assert_rejected(append(api, events=[big]), grpc.StatusCode.RESOURCE_EXHAUSTED, None)
    await assert_nothing_written(api)


async def test_bad_uuid(api):
    events = [new_event(), new_event(event_id="not-a-uuid")]
    await assert_rejected(append(api, events=events), grpc.StatusCode.INVALID_ARGUMENT, "events[1].event_id")
    await assert_nothing_written(api)


async def test_bad_event_type(api):
    events = [types_pb2.NewEvent(event_type="")]
    await assert_rejected(append(api, events=events), grpc.StatusCode.INVALID_ARGUMENT, "events[0].event_type")
    await assert_nothing_written(api)


async def test_expected_version_below_minus_one(api):
    await assert_rejected(append(api, expected_version=-2), grpc.StatusCode.INVALID_ARGUMENT, "expected_version")
    await assert_nothing_written(api)


async def test_negative_count_and_start(api):
    await append(api)
    await assert_rejected(read(api.streams, "s", count=-1), grpc.StatusCode.INVALID_ARGUMENT, "count")
    await assert_rejected(read(api.streams, "s", from_version=-5), grpc.StatusCode.INVALID_ARGUMENT, "from_version")


async def test_bad_store_names(api):
    await assert_rejected(append(api, store="Has Spaces"), grpc.StatusCode.INVALID_ARGUMENT, "store")
    await assert_rejected(append(api, store="nope"), grpc.StatusCode.NOT_FOUND, None)
    await assert_nothing_written(api)


async def test_bad_page_token_and_size(api):
    call = api.streams.ListStreams(streams_pb2.ListStreamsRequest(page_token="%%%"))
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    call = api.streams.ListStreams(streams_pb2.ListStreamsRequest(page_size=5000))
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "page_size")


async def test_bad_snapshot_fields(api):
    call = api.snapshots.RecordSnapshot(
        snapshots_pb2.RecordSnapshotRequest(snapshot=types_pb2.SnapshotRecord(stream_uuid="s", source_version=1))
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "snapshot.source_uuid")
    call = api.snapshots.RecordSnapshot(
        snapshots_pb2.RecordSnapshotRequest(
            snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=-1)
        )
    )
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "snapshot.source_version")
    listed = await api.snapshots.ListSnapshots(snapshots_pb2.ListSnapshotsRequest())
    assert list(listed.snapshots) == []


def nested(depth, leaf=1):
    """A JSON value with `depth` objects inside each other."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_json_bodies_nested_past_the_depth_limit_are_refused(api, node):
    limit = node.config.limits.max_json_depth
    deepest = types_pb2.NewEvent(event_type="t")
    deepest.data_json.update(nested(limit))
    await append(api, "deep", events=[deepest])
    for field in ("data_json", "metadata_json"):
        event = types_pb2.NewEvent(event_type="t")
        getattr(event, field).update(nested(limit + 1))
        error = await assert_rejected(
            append(api, "too-deep", events=[new_event(), event]), grpc.StatusCode.INVALID_ARGUMENT, f"events[1].{field}"
        )
        assert f"{limit} levels" in error.details() and "max_json_depth" in error.details()
    snapshot = types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=1)
    snapshot.data_json.update(nested(limit + 1))
    call = api.snapshots.RecordSnapshot(snapshots_pb2.RecordSnapshotRequest(snapshot=snapshot))
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "snapshot.data_json")
    assert await read(api.streams, "too-deep") == []


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_json_bodies_holding_nan_or_infinity_are_refused(api, number):
    event = types_pb2.NewEvent(event_type="t")
    event.data_json.update({"ok": 1, "list": [1, {"x": number}]})
    error = await assert_rejected(
        append(api, events=[event]), grpc.StatusCode.INVALID_ARGUMENT, "events[0].data_json"
    )
    assert "NaN" in error.details()
    metadata = types_pb2.NewEvent(event_type="t")
    metadata.metadata_json.update({"x": number})
    await assert_rejected(append(api, events=[metadata]), grpc.StatusCode.INVALID_ARGUMENT, "events[0].metadata_json")
    snapshot = types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=1)
    snapshot.data_json.update({"x": number})
    call = api.snapshots.RecordSnapshot(snapshots_pb2.RecordSnapshotRequest(snapshot=snapshot))
    await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "snapshot.data_json")
    await assert_nothing_written(api)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_subscription_patterns_holding_nan_or_infinity_are_refused(api, number):
    """Not INTERNAL (found by the fuzz suite): protobuf refuses to turn such a Struct into JSON."""
    pattern = struct_pb2.Struct()
    pattern.update({"data": {"x": number}})
    save = subscriptions_pb2.SaveSubscriptionRequest(
        name="nan", type=subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN, pattern=pattern
    )
    error = await assert_rejected(api.subscriptions.SaveSubscription(save), grpc.StatusCode.INVALID_ARGUMENT, "pattern")
    assert "NaN" in error.details()
    listed = await api.subscriptions.ListSubscriptions(subscriptions_pb2.ListSubscriptionsRequest())
    assert list(listed.subscriptions) == []
    subscribe = subscriptions_pb2.SubscribeRequest(type=subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN, pattern=pattern)
    await assert_rejected(_first(api.subscriptions.Subscribe(subscribe)), grpc.StatusCode.INVALID_ARGUMENT, "pattern")


async def _first(call):
    async for message in call:
        return message


def token(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


MADE_UP_TOKENS = [
    "%%%", "abc", "bm90IGpzb24=", token(None), token(5), token([]), token({"a": 1}), token("\u0000"),
    token("\ud800"), token("x" * 5000), token(["a", "b"]), token(["a", "b", "x"]), token(["a", "b", 2**70]),
    token(["a", "b", -1]), token(["a", "b", 1.5]), token([1, 2, 3]), token(["\ud800", "b", 1]),
    token(["a\u0000", "b", 1]), token([["a"], "b", 1]), "é", token("é") + "é",
]  # fmt: skip


@pytest.mark.parametrize("page_token", MADE_UP_TOKENS)
async def test_made_up_page_tokens_are_invalid_argument(api, page_token):
    await append(api, "s")
    await api.snapshots.RecordSnapshot(
        snapshots_pb2.RecordSnapshotRequest(snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=1))
    )
    for call in (
        api.streams.ListStreams(streams_pb2.ListStreamsRequest(page_token=page_token)),
        api.snapshots.ListSnapshots(snapshots_pb2.ListSnapshotsRequest(page_token=page_token)),
    ):
        await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "page_token")


async def test_reads_take_the_seed_spelling_of_a_stream_and_writes_refuse_it(api):
    await append(api, "greenhouse1", events=[new_event(), new_event()])
    assert [e.version for e in await read(api.streams, "$greenhouse1")] == [0, 1]
    version = await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$greenhouse1"))
    assert version.version == 1
    assert len(await read(api.streams, "$all")) == 2
    for stream_id in ("$", "$$greenhouse1"):
        await assert_rejected(read(api.streams, stream_id), grpc.StatusCode.INVALID_ARGUMENT, "stream_id")
        call = api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id=stream_id))
        await assert_rejected(call, grpc.StatusCode.INVALID_ARGUMENT, "stream_id")
    error = await assert_rejected(append(api, "$greenhouse1"), grpc.StatusCode.INVALID_ARGUMENT, "stream_id")
    assert "reserved" in error.details()
