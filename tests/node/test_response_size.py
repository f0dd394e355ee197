"""Every response fits gRPC's default 4 MiB receive limit, with the node's default limits and a
client with default settings: big events, JSON bodies whose Struct form is bigger than their
bytes, snapshots; the largest event the node accepts is readable everywhere, and a bigger one
is refused at append."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import snapshots_pb2, streams_pb2, types_pb2
from gater.config import NodeConfig
from gater.node import NodeServer
from tests.conftest import Stubs, stubs_for
from tests.helpers import details
from tests.store.pg_fixtures import fresh_database

DEFAULT_RECEIVE = 4 * 1024 * 1024


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def default_node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NodeServer]:
    """A node with the default limits (the shared fixture's are small), on each backend."""
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if request.param == "postgres":
            dsn = await stack.enter_async_context(fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True))
        server = NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", postgres_dsn=dsn, grace_s=0.5))
        await server.start()
        stack.push_async_callback(server.stop)
        yield server


@pytest.fixture
async def client(default_node: NodeServer) -> AsyncIterator[Stubs]:
    """A channel with gRPC's default settings: 4 MiB receive limit."""
    async with grpc.aio.insecure_channel(default_node.address) as channel:
        yield stubs_for(default_node.address, channel)


async def read_all(api: Stubs, stream_id: str, **kw) -> list[types_pb2.EventRecord]:
    out = []
    async for response in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id=stream_id, **kw)):
        assert response.ByteSize() <= DEFAULT_RECEIVE
        out.extend(response.events)
    return out


async def append(api: Stubs, stream_id: str, *events: types_pb2.NewEvent) -> streams_pb2.AppendEventsResponse:
    return await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events))


def numbers(size: int) -> bytes:
    """A JSON object of about `size` bytes whose Struct form is about 5.5 times bigger."""
    count = (size - 10) // 2
    return b'{"n":[' + b",".join([b"1"] * count) + b"]}"


async def test_the_largest_event_is_readable_and_a_bigger_one_is_refused(client, default_node):
    limit = default_node.config.limits.max_event_bytes
    too_big = types_pb2.NewEvent(event_type="t", data=b"x" * (limit + 1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(client, "big", types_pb2.NewEvent(event_type="t", data=b"{}"), too_big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details().startswith("events[1]:") and "max_event_bytes" in info.value.details()
    assert [d.field for d in details(info.value)] == ["events[1]"]
    # Just under the 16 MiB request limit: refused too, not stored unreadable.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await append(client, "big", types_pb2.NewEvent(event_type="t", data=b"x" * (16 * 1024 * 1024 - 200)))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_event_bytes" in info.value.details()
    assert await read_all(client, "$all") == []

    # The largest body the limit lets through: found by trying, a few bytes at a time.
    size = limit
    while True:
        try:
            await append(client, "big", types_pb2.NewEvent(event_type="t", data=b"x" * size))
            break
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            size -= 16
    assert size >= limit - 256  # the framing allowance is small
    await append(client, "big", types_pb2.NewEvent(event_type="t", data=b"{}"))
    for stream_id in ("big", "$big", "$all"):
        for json_ in (False, True):
            records = await read_all(client, stream_id, json=json_)
            assert [len(r.data) for r in records] == [size, 2 if not json_ else 0]
            backward = await read_all(client, stream_id, json=json_, direction=streams_pb2.READ_DIRECTION_BACKWARD)
            assert [r.version for r in backward] == [1, 0]


async def test_batches_are_cut_by_bytes_and_json_that_would_not_fit_goes_as_bytes(client):
    huge_json = numbers(800_000)  # its Struct form alone is over 4 MiB
    large_json = numbers(150_000)  # 27 fit a message as bytes, 5 as Structs
    raw = b"r" * (1024 * 1024 - 300)  # 4 do not fit one message
    await append(client, "mixed", types_pb2.NewEvent(event_type="t", data=huge_json))
    for _ in range(2):
        await append(client, "mixed", *[types_pb2.NewEvent(event_type="t", data=large_json) for _ in range(3)])
    for _ in range(5):
        await append(client, "mixed", *[types_pb2.NewEvent(event_type="t", data=raw, content_type="x") for _ in range(4)])
    kinds = ["huge"] + ["large"] * 6 + ["raw"] * 20
    forward, backward = streams_pb2.READ_DIRECTION_FORWARD, streams_pb2.READ_DIRECTION_BACKWARD
    for stream_id in ("mixed", "$all"):
        for direction in (forward, backward):
            step = 1 if direction == forward else -1
            plain = await read_all(client, stream_id, direction=direction)
            assert [r.version for r in plain] == list(range(27))[::step]
    # JSON conversion is slow for these bodies: one read each way.
    for stream_id, direction in (("mixed", forward), ("$all", backward)):
        step = 1 if direction == forward else -1
        as_json = await read_all(client, stream_id, json=True, direction=direction)
        assert [r.version for r in as_json] == list(range(27))[::step]
        for record, kind in zip(as_json, kinds[::step], strict=True):
            if kind == "large":
                assert record.data == b"" and len(record.data_json["n"]) == (150_000 - 10) // 2
            else:
                assert record.data == (huge_json if kind == "huge" else raw)


async def test_snapshots_are_limited_and_read_within_the_receive_limit(client, default_node):
    limit = default_node.config.limits.max_event_bytes
    big = snapshots_pb2.RecordSnapshotRequest(
        snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=1, data=b"x" * (limit + 1))
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.snapshots.RecordSnapshot(big)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details().startswith("snapshot:") and "max_event_bytes" in info.value.details()
    huge_json = numbers(800_000)
    await client.snapshots.RecordSnapshot(
        snapshots_pb2.RecordSnapshotRequest(
            snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="s", source_version=2, data=huge_json)
        )
    )
    read = await client.snapshots.ReadSnapshot(snapshots_pb2.ReadSnapshotRequest(source_uuid="a", stream_uuid="s", json=True))
    assert read.snapshot.data == huge_json and not read.snapshot.HasField("data_json")
    assert json.loads(read.snapshot.data)["n"][0] == 1

