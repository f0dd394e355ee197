"""Snapshots (latest vs exact, delete, list filters) and stores (create, remove, unknown)."""

from __future__ import annotations

import grpc
import pytest

from exesdb.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    snapshots_pb2,
    stores_pb2,
    streams_pb2,
    types_pb2,
)
from gater.config import NodeConfig
from gater.node import NodeServer
from tests.helpers import new_event, read


def snap(source, stream, version, data=b'{"v":1}'):
    return snapshots_pb2.RecordSnapshotRequest(
        snapshot=types_pb2.SnapshotRecord(
            source_uuid=source, stream_uuid=stream, source_version=version, source_type="Greenhouse", data=data
        )
    )


async def test_snapshot_latest_vs_exact(api):
    for version in (3, 10, 7):
        await api.snapshots.RecordSnapshot(snap("gh-1", "greenhouse-1", version, data=b'{"v":%d}' % version))
    latest = await api.snapshots.ReadSnapshot(snapshots_pb2.ReadSnapshotRequest(source_uuid="gh-1", stream_uuid="greenhouse-1"))
    assert latest.snapshot.source_version == 10 and latest.snapshot.data == b'{"v":10}'
    exact = await api.snapshots.ReadSnapshot(
        snapshots_pb2.ReadSnapshotRequest(source_uuid="gh-1", stream_uuid="greenhouse-1", version=7, json=True)
    )
    assert exact.snapshot.source_version == 7 and exact.snapshot.data_json["v"] == 7
    assert exact.snapshot.source_type == "Greenhouse" and exact.snapshot.created_epoch > 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.snapshots.ReadSnapshot(
            snapshots_pb2.ReadSnapshotRequest(source_uuid="gh-1", stream_uuid="greenhouse-1", version=4)
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_recording_the_same_key_replaces(api):
    await api.snapshots.RecordSnapshot(snap("a", "s", 1, b"old"))
    await api.snapshots.RecordSnapshot(snap("a", "s", 1, b"new"))
    read_back = await api.snapshots.ReadSnapshot(snapshots_pb2.ReadSnapshotRequest(source_uuid="a", stream_uuid="s"))
    assert read_back.snapshot.data == b"new"


async def test_delete_and_list_snapshots(api):
    for source, stream, version in [("a", "s1", 1), ("a", "s1", 2), ("a", "s2", 1), ("b", "s1", 5)]:
        await api.snapshots.RecordSnapshot(snap(source, stream, version))

    async def keys(**kw):
        reply = await api.snapshots.ListSnapshots(snapshots_pb2.ListSnapshotsRequest(**kw))
        return [(s.source_uuid, s.stream_uuid, s.source_version) for s in reply.snapshots]

    assert await keys() == [("a", "s1", 1), ("a", "s1", 2), ("a", "s2", 1), ("b", "s1", 5)]
    assert await keys(source_uuid="a") == [("a", "s1", 1), ("a", "s1", 2), ("a", "s2", 1)]
    assert await keys(stream_uuid="s1") == [("a", "s1", 1), ("a", "s1", 2), ("b", "s1", 5)]
    assert await keys(source_uuid="a", stream_uuid="s1") == [("a", "s1", 1), ("a", "s1", 2)]
    first = await api.snapshots.ListSnapshots(snapshots_pb2.ListSnapshotsRequest(page_size=3))
    rest = await api.snapshots.ListSnapshots(snapshots_pb2.ListSnapshotsRequest(page_size=3, page_token=first.next_page_token))
    assert [s.source_uuid for s in rest.snapshots] == ["b"] and rest.next_page_token == ""
    one = await api.snapshots.DeleteSnapshot(snapshots_pb2.DeleteSnapshotRequest(source_uuid="a", stream_uuid="s1", version=2))
    assert one.deleted == 1
    every = await api.snapshots.DeleteSnapshot(snapshots_pb2.DeleteSnapshotRequest(source_uuid="a", stream_uuid="s2"))
    assert every.deleted == 1
    assert await keys() == [("a", "s1", 1), ("b", "s1", 5)]


async def test_stores_create_use_remove(api, node):
    created = await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="reg_gh"))
    assert created.store.store_id == "reg_gh" and created.store.created_at.seconds > 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="reg_gh"))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = await api.stores.ListStores(stores_pb2.ListStoresRequest())
    assert [s.store_id for s in listed.stores] == ["default", "reg_gh"]

    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(store="reg_gh", stream_id="s", events=[new_event()]))
    assert await read(api.streams, "s") == []  # stores are isolated
    assert len(await read(api.streams, "s", store="reg_gh")) == 1
    status = await api.stores.GetStoreStatus(stores_pb2.GetStoreStatusRequest(store_id="reg_gh"))
    assert (status.stream_count, status.event_count, status.last_position) == (1, 1, 0)
    assert status.size_bytes > 0
    config = await api.stores.GetStoreConfig(stores_pb2.GetStoreConfigRequest(store_id="reg_gh"))
    expected_durability = {"sqlite": "FULL", "postgres": "synchronous_commit=on"}
    assert config.backend == node.backend.name and config.max_events_per_append == 100
    assert config.durability.startswith(expected_durability[config.backend])
    # No server-side path to any caller: the file relative to the data directory, or the
    # database's name.
    if config.backend == "sqlite":
        assert config.location == "stores/reg_gh.sqlite"
    else:
        assert config.location == node.config.postgres_dsn.split("?")[0].rsplit("/", 1)[1]  # the database

    await api.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="reg_gh"))
    for call in (
        api.streams.AppendEvents(streams_pb2.AppendEventsRequest(store="reg_gh", stream_id="s", events=[new_event()])),
        api.stores.GetStoreStatus(stores_pb2.GetStoreStatusRequest(store_id="reg_gh")),
        api.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="reg_gh")),
        read(api.streams, "s", store="reg_gh"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "reg_gh" in info.value.details()


async def test_cluster_status_of_a_node(api, node):
    status = await api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
    assert status.role == cluster_pb2.ROLE_NODE
    assert status.backend == node.backend.name and status.cluster_id == node.backend.cluster_id
    assert [m.address for m in status.members] == [node.address]


async def test_cluster_status_shows_the_advertised_address(tmp_path):
    config = NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", advertise="node-1.internal:50052", grace_s=0.5)
    async with NodeServer(config) as node, grpc.aio.insecure_channel(node.address) as channel:
        status = await cluster_pb2_grpc.ClusterStub(channel).GetStatus(cluster_pb2.GetStatusRequest())
        assert status.address == "node-1.internal:50052"
        assert [m.address for m in status.members] == ["node-1.internal:50052"]
