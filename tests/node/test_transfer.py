"""Export and import (Stores.ExportStore / ImportEvents) between real nodes on both backends:
identical records, snapshots and subscription checkpoints; resumed exports and imports;
refusals of stores that are not a prefix of the file; what subscribers see."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import stores_pb2, streams_pb2, subscriptions_pb2, types_pb2
from gater.client import ALL, Client, NewEvent, SyncClient
from gater.client._transfer import read_entries
from gater.errors import ImportMismatchError
from gater.node import NodeServer
from tests.conftest import stubs_for
from tests.helpers import Collector
from tests.node.conftest import MakeNode

pytestmark = pytest.mark.timeout(120)

async def fill(client: Client, store: str, events: int = 120) -> None:
    """Events over several streams (tags, metadata, binary bodies), snapshots, subscriptions."""
    await client.create_store(store)
    for i in range(0, events, 10):
        batch = [
            NewEvent(
                f"thing_{(i + k) % 3}:v1", {"n": i + k, "text": "é" * (k % 4)}, metadata={"trace": i + k},
                tags=(f"course:c{(i + k) % 5}",) if k % 2 else (),
            )
            for k in range(10)
        ]
        await client.append_events(store, f"stream-{(i // 10) % 4}", batch)
    await client.append_events(store, "binary", [NewEvent("blob:v1", b"\x00\x01\xff", content_type="application/octet-stream")])
    for version in (3, 7):
        await client.record_snapshot(store, "gh-1", "stream-1", version, {"v": version}, source_type="Greenhouse")
    await client.record_snapshot(store, "gh-2", "stream-2", 1, b"\x00raw")
    await client.save_subscription(store, "by-type", event_type="thing_1:v1", start_from=40)
    await client.save_subscription(store, "everything", stream=ALL)


async def records(node: NodeServer, store: str) -> list[bytes]:
    """Every record of the store's $all, as the node sends it."""
    async with grpc.aio.insecure_channel(node.address) as channel:
        api = stubs_for(node.address, channel)
        out: list[bytes] = []
        async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(store=store, stream_id="$all")):
            out.extend(r.SerializeToString() for r in batch.events)
        return out


async def contents(client: Client, node: NodeServer, store: str) -> tuple[object, ...]:
    snapshots = []
    for s in await client.list_snapshots(store):
        full = await client.read_snapshot(store, s.source_uuid, s.stream_uuid, s.source_version)
        snapshots.append((full.source_uuid, full.stream_uuid, full.source_version, full.source_type, full.data, full.created_at))
    subscriptions = sorted(
        (s.name, s.type, s.selector, s.checkpoint) for s in await client.get_subscriptions(store)
    )
    status = await client.get_store_status(store)
    return await records(node, store), snapshots, subscriptions, (status.stream_count, status.last_position)


PAIRS = [
    ("sqlite", "sqlite"),
    pytest.param("sqlite", "postgres", marks=pytest.mark.postgres),
    pytest.param("postgres", "sqlite", marks=pytest.mark.postgres),
    pytest.param("postgres", "postgres", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize(("source", "target"), PAIRS)
async def test_round_trip_keeps_every_field(make_node: MakeNode, tmp_path: Path, source: str, target: str) -> None:
    a, b = await make_node(source), await make_node(target)
    file = tmp_path / "s.gtx"
    async with await Client.connect(a.address) as ca, await Client.connect(b.address) as cb:
        await fill(ca, "shop")
        exported = await ca.export_store("shop", file)
        assert exported.complete and exported.head == 120 and exported.events == 121
        assert (exported.snapshots, exported.subscriptions) == (3, 2)
        imported = await cb.import_store("shop", file)
        assert imported.events == 121 and imported.complete
        assert await contents(cb, b, "shop") == await contents(ca, a, "shop")
        # The imported store goes on: the next append continues positions and versions.
        result = await cb.append_events("shop", "stream-1", [NewEvent("later:v1", {})])
        assert result.position == 121


async def test_subscribers_see_what_is_imported(node: NodeServer, make_node: MakeNode, tmp_path: Path) -> None:
    source = await make_node("sqlite")
    file = tmp_path / "s.gtx"
    async with await Client.connect(source.address) as cs, await Client.connect(node.address) as cn:
        await fill(cs, "shop", events=40)
        await cs.export_store("shop", file)
        await cn.create_store("shop")
        async with grpc.aio.insecure_channel(node.address) as channel:
            api = stubs_for(node.address, channel)
            call = api.subscriptions.Subscribe(subscriptions_pb2.SubscribeRequest(store="shop", selector="$all"))
            collector = Collector(call)
            await collector.wait_for(lambda c: "caught_up" in c.messages)
            await cn.import_store("shop", file)
            await collector.wait_for(lambda c: len(c.events) == 41)
            assert [e.position for e in collector.events] == list(range(41))
            call.cancel()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_interrupted_export_resumes(make_node: MakeNode, tmp_path: Path, backend: str) -> None:
    a = await make_node(backend)
    whole, cut = tmp_path / "whole.gtx", tmp_path / "cut.gtx"
    async with await Client.connect(a.address) as client:
        await fill(client, "shop")
        await client.export_store("shop", whole)
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) * 3 // 5])  # cut inside an event entry
        # Appends after the interruption do not get into the resumed file: it ends at its header's head.
        await client.append_events("shop", "late", [NewEvent("late:v1", {})])
        resumed = await client.export_store("shop", cut, resume=True)
        assert 0 < resumed.events < 121 and resumed.complete
        assert cut.read_bytes() == data
        again = await client.export_store("shop", cut, resume=True)
        assert again.events == 0 and again.complete and cut.read_bytes() == data


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_interrupted_import_resumes(make_node: MakeNode, tmp_path: Path, backend: str) -> None:
    a, b = await make_node("sqlite"), await make_node(backend)
    whole, cut = tmp_path / "whole.gtx", tmp_path / "cut.gtx"
    async with await Client.connect(a.address) as ca, await Client.connect(b.address) as cb:
        await fill(ca, "shop")
        await ca.export_store("shop", whole)
        data = whole.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        first = await cb.import_store("shop", cut, batch_size=7)  # many batches, two in flight
        assert not first.complete and 0 < first.events < 121
        held = (await cb.get_store_status("shop")).last_position
        assert held == first.events - 1
        rest = await cb.import_store("shop", whole, batch_size=10)
        assert rest.events == 121 - first.events and rest.complete
        assert await contents(cb, b, "shop") == await contents(ca, a, "shop")
        # Once more: nothing is left to write, and nothing changes.
        again = await cb.import_store("shop", whole)
        assert again.events == 0
        assert await contents(cb, b, "shop") == await contents(ca, a, "shop")


async def test_a_store_that_is_not_a_prefix_is_refused(node: NodeServer, make_node: MakeNode, tmp_path: Path) -> None:
    source = await make_node("sqlite")
    file = tmp_path / "s.gtx"
    async with await Client.connect(source.address) as cs, await Client.connect(node.address) as cn:
        await fill(cs, "shop", events=30)
        await cs.export_store("shop", file)
        await cn.create_store("other")
        await cn.append_events("other", "stream-0", [NewEvent("mine:v1", {}) for _ in range(5)])
        with pytest.raises(ImportMismatchError) as info:
            await cn.import_store("other", file)
        assert info.value.code == "FAILED_PRECONDITION" and info.value.position == 4
        assert "not a prefix" in info.value.message
        # More events than the file holds: refused before anything is sent.
        await cn.create_store("bigger")
        for _ in range(4):
            await cn.append_events("bigger", "s", [NewEvent("x:v1", {}) for _ in range(10)])
        with pytest.raises(ImportMismatchError, match="more events than the file"):
            await cn.import_store("bigger", file)
        assert (await cn.get_store_status("other")).last_position == 4


async def test_bad_import_batches_name_what_is_wrong(api) -> None:
    await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="t"))
    record = types_pb2.EventRecord(
        stream_id="s", version=0, position=0, event_id=str(uuid.uuid4()), event_type="x:v1", created_epoch=1_700_000_000_000_000
    )
    cases = [
        ([b"\xff\xff"], grpc.StatusCode.INVALID_ARGUMENT, "records[0]"),
        ([record.SerializeToString(), b"\x12\x01"], grpc.StatusCode.INVALID_ARGUMENT, "records[1]"),
        ([types_pb2.EventRecord(**{**_fields(record), "event_id": "nope"}).SerializeToString()],
         grpc.StatusCode.INVALID_ARGUMENT, "records[0].event_id"),
        ([types_pb2.EventRecord(**{**_fields(record), "position": 3}).SerializeToString()],
         grpc.StatusCode.FAILED_PRECONDITION, "must be the file's first"),  # past 0 into an empty store
        ([record.SerializeToString(), record.SerializeToString()],
         grpc.StatusCode.FAILED_PRECONDITION, "positions must be strictly increasing"),
        ([types_pb2.EventRecord(**{**_fields(record), "version": 2}).SerializeToString(),
          types_pb2.EventRecord(**{**_fields(record), "position": 1, "version": 1}).SerializeToString()],
         grpc.StatusCode.FAILED_PRECONDITION, "does not follow"),
        ([record.SerializeToString()], grpc.StatusCode.INVALID_ARGUMENT, "streams[0].deleted"),
    ]  # fmt: skip
    bad_state = stores_pb2.TransferStream(stream_id="s", version=0, deleted=7, meta_version=0, custom_json="{}")
    for batch, code, text in cases:
        streams = [bad_state] if text.startswith("streams") else []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await api.stores.ImportEvents(stores_pb2.ImportEventsRequest(store_id="t", records=batch, streams=streams))
        assert info.value.code() == code and text in info.value.details()
    written = await api.stores.ImportEvents(stores_pb2.ImportEventsRequest(store_id="t", records=[record.SerializeToString()]))
    assert (written.last_position, written.imported) == (0, 1)
    repeat = await api.stores.ImportEvents(stores_pb2.ImportEventsRequest(store_id="t", records=[record.SerializeToString()]))
    assert (repeat.last_position, repeat.imported) == (0, 0)
    later = types_pb2.EventRecord(**{**_fields(record), "position": 1, "version": 1, "event_id": str(uuid.uuid4())})
    with pytest.raises(grpc.aio.AioRpcError) as info:  # no overlap with what the store holds
        await api.stores.ImportEvents(stores_pb2.ImportEventsRequest(store_id="t", records=[later.SerializeToString()]))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "start at or before its head" in info.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.stores.ImportEvents(stores_pb2.ImportEventsRequest(store_id="missing", records=[record.SerializeToString()]))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _fields(record: types_pb2.EventRecord) -> dict[str, object]:
    return {f.name: v for f, v in record.ListFields()}


async def test_export_and_import_through_a_gateway(gateway, make_node: MakeNode, tmp_path: Path) -> None:
    """Both RPCs pass through a gateway as they are (a server stream, unary batches)."""
    source = await make_node("sqlite")
    first, second = tmp_path / "a.gtx", tmp_path / "b.gtx"
    async with await Client.connect(source.address) as cs, await Client.connect(gateway.address) as cg:
        await fill(cs, "shop", events=50)
        await cs.export_store("shop", first)
        imported = await cg.import_store("shop", first)
        assert imported.events == 51 and imported.complete
        exported = await cg.export_store("shop", second)
        assert exported.events == 51 and exported.complete
    entries = [[e for e, _ in read_entries(io.BytesIO(f.read_bytes())) if e[:1] == b"\x12"] for f in (first, second)]
    assert entries[0] == entries[1] and len(entries[0]) == 51


async def test_the_sync_client_exports_and_imports(node: NodeServer, tmp_path: Path) -> None:
    file = tmp_path / "s.gtx"

    def work() -> tuple[int, int]:
        with SyncClient.connect(node.address) as c:
            c.create_store("a")
            c.append_events("a", "s", [NewEvent("x:v1", {"n": n}) for n in range(5)])
            exported = c.export_store("a", file)
            imported = c.import_store("b", file)
            return exported.events, imported.events

    assert await asyncio.to_thread(work) == (5, 5)


async def test_a_wrong_or_damaged_file_is_refused_with_what_to_fix(node: NodeServer, tmp_path: Path) -> None:
    """A file that is no transfer file is refused before the store is made (none is left
    behind); one damaged half-way says where, as INVALID_ARGUMENT on `file`, having imported
    only what came before the damage."""
    from gater.errors import InvalidArgumentError

    good = tmp_path / "good.gtx"
    async with await Client.connect(node.address) as client:
        await fill(client, "shop", events=40)
        await client.export_store("shop", good)
        text = tmp_path / "notes.txt"
        text.write_text("these are notes, not events\n" * 20)
        with pytest.raises(InvalidArgumentError, match="is not a transfer file"):
            await client.import_store("never-made", text)
        assert "never-made" not in [s.store_id for s in await client.list_stores()]
        raw = good.read_bytes()
        entries = list(read_entries(io.BytesIO(raw)))
        cut = entries[20][1]  # the 20th event's entry ends here: garble the length of the next
        damaged = tmp_path / "damaged.gtx"
        damaged.write_bytes(raw[:cut] + b"\x05\x12\x03\xff\xff\xff" + raw[cut + 6 :])
        with pytest.raises(InvalidArgumentError, match=f"is damaged: the entry after byte {cut:,}"):
            await client.import_store("copy", damaged, batch_size=5)
        assert (await client.get_store_status("copy")).last_position < 20


async def test_an_import_batch_is_converted_a_slice_at_a_time_leaving_the_event_loop_its_turns():
    """What the node does beside converting a batch (feeding the COPY of the batch before it,
    on PostgreSQL) goes on between slices; the records come out whole and in order."""
    from gater.node._transfer import _CONVERT_SLICE, _convert_records

    log: list[object] = []

    def convert(raw: bytes, i: int) -> int:
        log.append(i)
        return i

    async def beside() -> None:
        log.append("beside")

    records = [b""] * (2 * _CONVERT_SLICE + 7)
    other = asyncio.ensure_future(beside())
    assert await _convert_records(records, convert) == list(range(len(records)))
    await other
    assert log.index("beside") == _CONVERT_SLICE  # after the first slice, not after them all
