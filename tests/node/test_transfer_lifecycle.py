"""Export and import of a store with a stream lifecycle (issue 15), between real nodes on both
backends: soft-deleted, tombstoned, truncated (max_count) and metadata-only streams, a redacted
event, hidden events not yet scavenged, and the position gaps of a partial scavenge. The target
must read, hide, answer metadata and take appends exactly as the source does, with its head."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from exesdb.v1 import stores_pb2
from gater.client import ALL, Client, NewEvent, StreamMetadata
from gater.client._transfer import read_entries
from gater.errors import StreamDeletedError
from gater.node import NodeServer
from tests.node.conftest import MakeNode
from tests.node.test_transfer import records

pytestmark = pytest.mark.timeout(120)

STREAMS = ("soft", "meta", "tomb", "red", "late", "tail", "only-meta")


async def lifecycle_store(c: Client, store: str) -> None:
    """soft 0-4, meta 5-10, tomb 11-13, red 14-15, keep 16; hide soft (delete), meta v0-3
    (max_count 2), tomb (tombstone); redact red v0; scavenge (gaps 0-8, 11-13); then hide more
    that stays on disk: meta v4-5 (two appends), late (soft-deleted); tail is the head."""
    await c.create_store(store)
    for stream, count in (("soft", 5), ("meta", 6), ("tomb", 3), ("red", 2), ("keep", 1)):
        await c.append_events(store, stream, [NewEvent(f"{stream}:v1", {"i": i}) for i in range(count)])
    await c.set_stream_metadata(store, "meta", StreamMetadata(max_count=2, custom={"owner": "ops"}))
    await c.delete_stream(store, "soft")
    await c.delete_stream(store, "tomb", tombstone=True)
    await c.redact_event(store, "red", 0)
    await c.set_stream_metadata(store, "only-meta", StreamMetadata(truncate_before=3))
    scavenged = await c.scavenge(store)
    assert scavenged.removed == 12
    await c.append_events(store, "meta", [NewEvent("meta:v1", {"i": i}) for i in (6, 7)])
    await c.append_events(store, "late", [NewEvent("late:v1", {})])
    await c.delete_stream(store, "late")
    await c.append_events(store, "tail", [NewEvent("tail:v1", {})])


async def view(c: Client, node: NodeServer, store: str, whole: bool = True) -> tuple[object, ...]:
    """What readers see: $all, each stream's events, version and metadata, and the head. Not
    `whole`: events by stream, version and position only (appends made on each side apart
    have ids and times of their own)."""
    streams = []
    for stream in (*STREAMS, "keep"):
        events = [
            (e.version, e.position, e.event_id if whole else "", e.data) async for batch in c.read_events(store, stream) for e in batch
        ]
        streams.append((stream, events, await c.get_version(store, stream), await c.get_stream_metadata(store, stream)))
    every = await records(node, store)
    if not whole:
        every = [(e.stream_id, e.version, e.position) async for batch in c.read_events(store, ALL) for e in batch]
    status = await c.get_store_status(store)
    return every, streams, (status.last_position, status.stream_count)


async def appends(c: Client, store: str) -> list[object]:
    """What writers meet: soft-deleted streams continue their versions, a tombstone refuses."""
    out: list[object] = []
    for stream in ("soft", "late", "meta", "only-meta"):
        result = await c.append_events(store, stream, [NewEvent("again:v1", {})])
        out.append((stream, result.version, result.position))
    with pytest.raises(StreamDeletedError):
        await c.append_events(store, "tomb", [NewEvent("again:v1", {})])
    return out


@pytest.mark.parametrize(
    ("source", "target"),
    [pytest.param("sqlite", "postgres", marks=pytest.mark.postgres), pytest.param("postgres", "sqlite", marks=pytest.mark.postgres)],
)
async def test_the_target_hides_what_the_source_hid(make_node: MakeNode, tmp_path: Path, source: str, target: str) -> None:
    a, b = await make_node(source), await make_node(target)
    file = tmp_path / "life.gtx"
    async with await Client.connect(a.address) as ca, await Client.connect(b.address) as cb:
        await lifecycle_store(ca, "life")
        exported = await ca.export_store("life", file)
        assert exported.complete and exported.head == 20
        with file.open("rb") as f:
            entries = [stores_pb2.TransferEntry.FromString(e) for e, _ in read_entries(f)]
        positions = [e.event.position for e in entries if e.WhichOneof("entry") == "event"]
        assert positions == [9, 10, *range(14, 21)]  # hidden but not scavenged: exported as stored
        assert entries[-1].end.events == 9 and entries[-1].end.streams == 5  # soft, meta, tomb, late, only-meta
        states = {e.stream.stream_id: e.stream for e in entries if e.WhichOneof("entry") == "stream"}
        assert states["soft"].deleted == 1 and states["soft"].version == 4  # every event of it scavenged
        assert states["tomb"].deleted == 2 and states["only-meta"].version == -1

        imported = await cb.import_store("life", file, batch_size=3)  # batches across the gaps
        assert imported.complete and imported.events == 9
        assert await view(cb, b, "life") == await view(ca, a, "life")
        assert (await cb.get_store_status("life")).last_position == 20
        assert (await cb.get_store_status("life")).stream_count == 7  # soft counts (no events left); only-meta not
        # Importing again writes nothing and changes nothing.
        assert (await cb.import_store("life", file)).events == 0
        assert await view(cb, b, "life") == await view(ca, a, "life")
        assert await appends(cb, "life") == await appends(ca, "life") == [
            ("soft", 5, 21), ("late", 1, 22), ("meta", 8, 23), ("only-meta", 0, 24),
        ]
        # A scavenge of the target removes what the source hid and had not removed yet, as the
        # source's own does: meta v4-6 (max_count 2 after the appends) and late v0.
        assert (await cb.scavenge("life")).removed == (await ca.scavenge("life")).removed == 4
        assert await view(cb, b, "life", whole=False) == await view(ca, a, "life", whole=False)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_interrupted_export_of_a_scavenged_store_resumes(make_node: MakeNode, tmp_path: Path, backend: str) -> None:
    a = await make_node(backend)
    whole, cut = tmp_path / "whole.gtx", tmp_path / "cut.gtx"
    async with await Client.connect(a.address) as c:
        await lifecycle_store(c, "life")
        await c.export_store("life", whole)
        data = whole.read_bytes()
        entries = list(read_entries(io.BytesIO(data)))
        cut.write_bytes(data[: entries[4][1] + 3])  # after the fourth event (position 15), inside the fifth
        progress: list[int] = []
        resumed = await c.export_store(
            "life", cut, resume=True, on_start=lambda head, done: progress.extend((head + 1, done)),
            on_progress=progress.append,
        )
        assert resumed.events == 5 and resumed.complete and cut.read_bytes() == data
        assert progress[0] == 21 and sum(progress[1:]) == 21  # positions, gaps included


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_interrupted_import_of_a_scavenged_store_resumes(make_node: MakeNode, tmp_path: Path, backend: str) -> None:
    a, b = await make_node("sqlite"), await make_node(backend)
    whole, cut = tmp_path / "whole.gtx", tmp_path / "cut.gtx"
    async with await Client.connect(a.address) as ca, await Client.connect(b.address) as cb:
        await lifecycle_store(ca, "life")
        await ca.export_store("life", whole)
        data = whole.read_bytes()
        entries = list(read_entries(io.BytesIO(data)))
        cut.write_bytes(data[: entries[3][1]])  # events 9, 10 and 14: the target's head is past a gap
        first = await cb.import_store("life", cut, batch_size=2)
        assert first.events == 3 and not first.complete
        assert (await cb.get_store_status("life")).last_position == 14
        # Progress counts positions, gaps included, so it ends at the file's head.
        progress: list[int] = []
        rest = await cb.import_store(
            "life", whole, batch_size=2, on_start=lambda head, done: progress.extend((head + 1, done)),
            on_progress=progress.append,
        )
        assert rest.events == 6 and rest.complete
        assert progress[0] == 21 and sum(progress[1:]) == 21
        assert await view(cb, b, "life") == await view(ca, a, "life")
