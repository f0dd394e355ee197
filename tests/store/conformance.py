"""The storage conformance suite: what every StorageBackend must do, written against
gater/store/base.py only.

Owns: `StoreConformance`, an abstract test class. A backend's test module subclasses it as
`Test<Backend>Conformance` and overrides two fixtures: `new_backend`, a factory returning a new,
unstarted backend built with the `limits` fixture over a fresh, empty place (the same place on
every call within one test, so a test can stop a backend and start another over the same
data), and `raw_sql`, which runs a statement on a store's database around gater (for the
invariants the database itself must enforce). A subclass also says whether its storage is
shared by several processes (`shared_storage`: then leases fence; otherwise they are always
granted). Nothing else here knows which backend runs it; backend-specific tests live next to
the subclass.
Must not import a backend module.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exesdb.v1 import types_pb2
from gater.config import Limits
from gater.errors import (
    DuplicateEventIdError,
    InvalidArgumentError,
    LeaseLostError,
    SnapshotNotFoundError,
    StorageUnavailableError,
    StoreAlreadyExistsError,
    StoreNotFoundError,
    SubscriptionNotFoundError,
    WrongExpectedVersionError,
)
from gater.store._records import created_tail, encode_record
from gater.store._transfer import ImportedEvent
from gater.store.base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    AppendResult,
    EventStore,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StorageBackend,
)

from .dcb_conformance import DcbConformance
from .lifecycle_conformance import LifecycleConformance
from .prefix_conformance import PrefixConformance

__all__ = [
    "WAIT_S",
    "BackendFactory",
    "DatabaseRefused",
    "RawSql",
    "StoreConformance",
    "events",
    "imported_event",
    "new_event",
    "read_everything",
    "read_stream_all",
]

BackendFactory = Callable[[], StorageBackend]
RawSql = Callable[[str, str], Awaitable[list[tuple[Any, ...]]]]
"""raw_sql(store_id, statement) -> rows: runs one statement on the store's database directly."""


class DatabaseRefused(Exception):  # noqa: N818 - reads as what happened
    """Raised by a `raw_sql` fixture when the database itself refused the statement (a
    trigger or constraint), as opposed to any other failure."""

WAIT_S = 30.0
"""Upper bound on awaiting something that must happen (a guard against hangs, not a timing
assertion)."""


def new_event(event_type: str = "thing_happened:v1", data: bytes = b'{"n": 1}', **kwargs: str) -> NewEvent:
    return NewEvent(event_id=str(uuid.uuid4()), event_type=event_type, data=data, **kwargs)


def events(n: int, event_type: str = "thing_happened:v1") -> list[NewEvent]:
    return [new_event(event_type, f'{{"i": {i}}}'.encode()) for i in range(n)]


def imported_event(position: int, version: int, event_id: str | None = None, stream_id: str = "s-1") -> ImportedEvent:
    """An event as an import batch carries it (the record as a store writes it)."""
    event = NewEvent(event_id or str(uuid.uuid4()), "x:v1", b"{}")
    record = encode_record(stream_id, version, position, event, created_tail(1_000 + position))
    return ImportedEvent(position, stream_id, version, event.event_id, "x:v1", 1_000 + position, record)


async def read_everything(store: EventStore, page: int = 7) -> list[RecordedEvent]:
    """All of "$all", forward, in pages."""
    found: list[RecordedEvent] = []
    while True:
        batch = await store.read_all(len(found), page)
        if not batch:
            return found
        found.extend(batch)


async def read_stream_all(store: EventStore, stream_id: str, page: int = 5) -> list[RecordedEvent]:
    found: list[RecordedEvent] = []
    while True:
        batch = await store.read_stream(stream_id, len(found), page)
        if not batch:
            return found
        found.extend(batch)


class StoreConformance(DcbConformance, PrefixConformance, LifecycleConformance):
    """Subclass as Test<Backend>Conformance and override `new_backend` and `raw_sql`."""

    shared_storage: bool = False
    """True when several processes share the storage (leases then fence); False when one
    process serves it (every lease is granted)."""

    @pytest.fixture
    def limits(self) -> Limits:
        """Small page limits, so tests can cross them cheaply; `new_backend` builds with these."""
        return Limits(read_batch=20, max_page_size=30)

    @pytest.fixture
    def new_backend(self) -> BackendFactory:
        raise NotImplementedError("a backend's conformance subclass overrides new_backend")

    @pytest.fixture
    def raw_sql(self) -> RawSql:
        raise NotImplementedError("a backend's conformance subclass overrides raw_sql")

    @pytest.fixture
    async def backend(self, new_backend: BackendFactory) -> AsyncIterator[StorageBackend]:
        backend = new_backend()
        await backend.start()
        try:
            yield backend
        finally:
            await backend.stop()

    @pytest.fixture
    async def store(self, backend: StorageBackend) -> EventStore:
        await backend.create_store("main")
        return await backend.open_store("main")

    # -- stores -------------------------------------------------------------------------------

    async def test_create_and_list_stores(self, backend: StorageBackend) -> None:
        assert await backend.list_stores() == []
        a = await backend.create_store("alpha")
        b = await backend.create_store("beta-2")
        assert (a.store_id, b.store_id) == ("alpha", "beta-2")
        assert a.created_epoch > 0 and b.created_epoch > 0
        listed = await backend.list_stores()
        assert sorted(s.store_id for s in listed) == ["alpha", "beta-2"]
        assert {s.store_id: s.created_epoch for s in listed} == {"alpha": a.created_epoch, "beta-2": b.created_epoch}

    async def test_create_existing_store_raises(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        with pytest.raises(StoreAlreadyExistsError):
            await backend.create_store("alpha")

    async def test_open_unknown_store_raises(self, backend: StorageBackend) -> None:
        with pytest.raises(StoreNotFoundError):
            await backend.open_store("nope")

    async def test_open_store_is_cached(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        assert await backend.open_store("alpha") is await backend.open_store("alpha")

    async def test_remove_store(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        await backend.create_store("beta")
        await backend.remove_store("alpha")
        with pytest.raises(StoreNotFoundError):
            await backend.open_store("alpha")
        assert [s.store_id for s in await backend.list_stores()] == ["beta"]
        with pytest.raises(StoreNotFoundError):
            await backend.remove_store("alpha")

    async def test_remove_unknown_store_raises(self, backend: StorageBackend) -> None:
        with pytest.raises(StoreNotFoundError):
            await backend.remove_store("never")

    async def test_removed_store_is_recreated_empty(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        await store.append("s", events(3), EXPECT_ANY)
        await store.record_snapshot(Snapshot("src", "s", 2, data=b"x"))
        await backend.remove_store("alpha")
        await backend.create_store("alpha")
        again = await backend.open_store("alpha")
        assert await again.stream_version("s") == -1
        assert await again.last_position() == -1
        assert await again.read_all(None, 10) == []
        assert await again.list_snapshots(None, None, None, 10) == []
        result = await again.append("s", events(1), EXPECT_NO_STREAM)
        assert (result.version, result.position) == (0, 0)

    async def test_append_to_removed_store_raises(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        await store.append("s", events(1), EXPECT_ANY)
        await backend.remove_store("alpha")
        with pytest.raises(StoreNotFoundError):
            await store.append("s", events(1), EXPECT_ANY)

    async def test_stores_are_isolated(self, backend: StorageBackend) -> None:
        await backend.create_store("one")
        await backend.create_store("two")
        one, two = await backend.open_store("one"), await backend.open_store("two")
        await one.append("shared-name", events(3), EXPECT_NO_STREAM)
        first_in_two = await two.append("shared-name", events(2), EXPECT_NO_STREAM)
        assert (first_in_two.first_version, first_in_two.first_position) == (0, 0)
        await one.record_snapshot(Snapshot("src", "shared-name", 1, data=b"one"))
        assert await one.stream_version("shared-name") == 2
        assert await two.stream_version("shared-name") == 1
        assert await one.last_position() == 2
        assert await two.last_position() == 1
        assert len(await two.read_all(None, 100)) == 2
        assert await two.list_streams("", 10) == [("shared-name", 1)]
        with pytest.raises(SnapshotNotFoundError):
            await two.read_snapshot("src", "shared-name", None)
        # The same event id may be used once per store.
        event = new_event()
        await one.append("x", [event], EXPECT_ANY)
        assert not (await two.append("x", [event], EXPECT_ANY)).duplicate

    # -- appends: versions, positions, expected versions --------------------------------------

    async def test_first_append_starts_at_zero(self, store: EventStore) -> None:
        assert await store.stream_version("s") == -1
        assert await store.last_position() == -1
        result = await store.append("s", events(3), EXPECT_ANY)
        assert result == AppendResult(first_version=0, version=2, first_position=0, position=2, duplicate=False)
        assert await store.stream_version("s") == 2
        assert await store.last_position() == 2

    async def test_versions_per_stream_positions_per_store(self, store: EventStore) -> None:
        a1 = await store.append("a", events(2), EXPECT_ANY)
        b1 = await store.append("b", events(1), EXPECT_ANY)
        a2 = await store.append("a", events(3), EXPECT_ANY)
        assert (a1.first_version, a1.version, a1.first_position, a1.position) == (0, 1, 0, 1)
        assert (b1.first_version, b1.version, b1.first_position, b1.position) == (0, 0, 2, 2)
        assert (a2.first_version, a2.version, a2.first_position, a2.position) == (2, 4, 3, 5)

    async def test_expect_any(self, store: EventStore) -> None:
        await store.append("s", events(1), EXPECT_ANY)
        assert (await store.append("s", events(1), EXPECT_ANY)).version == 1

    async def test_expect_no_stream(self, store: EventStore) -> None:
        assert (await store.append("s", events(2), EXPECT_NO_STREAM)).version == 1
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.append("s", events(1), EXPECT_NO_STREAM)
        assert caught.value.current_version == 1
        assert caught.value.stream_id == "s"

    async def test_expect_stream_exists(self, store: EventStore) -> None:
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.append("s", events(1), EXPECT_STREAM_EXISTS)
        assert caught.value.current_version == -1
        await store.append("s", events(1), EXPECT_ANY)
        assert (await store.append("s", events(1), EXPECT_STREAM_EXISTS)).version == 1

    async def test_expect_exact_version(self, store: EventStore) -> None:
        await store.append("s", events(3), EXPECT_ANY)
        assert (await store.append("s", events(1), 2)).version == 3
        for wrong in (0, 2, 4, 100):
            with pytest.raises(WrongExpectedVersionError) as caught:
                await store.append("s", events(1), wrong)
            assert caught.value.current_version == 3
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.append("new", events(1), 0)
        assert caught.value.current_version == -1

    async def test_failed_expectation_writes_nothing(self, store: EventStore) -> None:
        await store.append("s", events(2), EXPECT_ANY)
        with pytest.raises(WrongExpectedVersionError):
            await store.append("s", events(5), 0)
        assert await store.stream_version("s") == 1
        assert await store.last_position() == 1
        assert len(await store.read_all(None, 100)) == 2

    # -- idempotency ----------------------------------------------------------------------------

    async def test_reappend_same_ids_is_a_duplicate(self, store: EventStore) -> None:
        await store.append("other", events(2), EXPECT_ANY)
        batch = events(3)
        original = await store.append("s", batch, EXPECT_NO_STREAM)
        await store.append("s", events(1), EXPECT_ANY)
        for expected in (EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS, 0, 1, 99):
            again = await store.append("s", batch, expected)
            assert again == AppendResult(
                original.first_version, original.version, original.first_position, original.position, True
            )
        assert await store.stream_version("s") == 3
        assert await store.last_position() == 5

    async def test_reappend_consecutive_part_of_a_run_is_a_duplicate(self, store: EventStore) -> None:
        batch = events(4)
        original = await store.append("s", batch, EXPECT_ANY)
        again = await store.append("s", batch[1:3], EXPECT_ANY)
        assert again.duplicate
        assert (again.first_version, again.version) == (1, 2)
        assert (again.first_position, again.position) == (original.first_position + 1, original.first_position + 2)
        assert await store.last_position() == 3

    async def test_ids_reused_in_another_stream_raise(self, store: EventStore) -> None:
        batch = events(2)
        await store.append("s", batch, EXPECT_ANY)
        with pytest.raises(DuplicateEventIdError) as caught:
            await store.append("t", batch, EXPECT_ANY)
        assert caught.value.event_id == batch[0].event_id
        assert await store.stream_version("t") == -1
        assert await store.last_position() == 1

    async def test_partial_overlap_raises(self, store: EventStore) -> None:
        batch = events(2)
        await store.append("s", batch, EXPECT_ANY)
        fresh = new_event()
        with pytest.raises(DuplicateEventIdError) as caught:
            await store.append("s", [batch[1], fresh], EXPECT_ANY)
        assert caught.value.event_id == batch[1].event_id
        with pytest.raises(DuplicateEventIdError):
            await store.append("s", [fresh, batch[0]], EXPECT_ANY)
        assert await store.last_position() == 1

    async def test_same_ids_in_another_order_raise(self, store: EventStore) -> None:
        batch = events(3)
        await store.append("s", batch, EXPECT_ANY)
        with pytest.raises(DuplicateEventIdError):
            await store.append("s", [batch[1], batch[0]], EXPECT_ANY)
        with pytest.raises(DuplicateEventIdError):
            await store.append("s", [batch[0], batch[2]], EXPECT_ANY)  # not consecutive
        assert await store.last_position() == 2

    async def test_repeated_id_within_one_append_is_refused(self, store: EventStore) -> None:
        event = new_event()
        with pytest.raises((DuplicateEventIdError, InvalidArgumentError)):
            await store.append("s", [event, event], EXPECT_ANY)
        assert await store.last_position() == -1

    async def test_concurrent_identical_appends_write_once(self, store: EventStore) -> None:
        batch = events(3)
        results = await asyncio.gather(*(store.append("s", batch, EXPECT_NO_STREAM) for _ in range(5)))
        assert sorted(r.duplicate for r in results) == [False, True, True, True, True]
        assert {(r.first_version, r.version, r.first_position, r.position) for r in results} == {(0, 2, 0, 2)}
        assert await store.last_position() == 2

    # -- reads ----------------------------------------------------------------------------------

    async def test_recorded_fields_and_encoding(self, store: EventStore) -> None:
        await store.append("first", events(2), EXPECT_ANY)
        event = NewEvent(
            event_id=str(uuid.uuid4()),
            event_type="temperature_measured:v1",
            data=b"\x00\x01binary",
            metadata=b'{"correlation_id": "c"}',
            content_type="application/octet-stream",
            metadata_content_type="application/json",
        )
        await store.append("sensor-1", [event], EXPECT_ANY)
        [recorded] = await store.read_stream("sensor-1", None, 10)
        assert (recorded.stream_id, recorded.version, recorded.position) == ("sensor-1", 0, 2)
        assert (recorded.event_id, recorded.event_type) == (event.event_id, event.event_type)
        record = types_pb2.EventRecord.FromString(recorded.encoded)
        assert record.stream_id == "sensor-1"
        assert (record.version, record.position) == (0, 2)
        assert record.event_id == event.event_id
        assert record.event_type == event.event_type
        assert record.data == event.data
        assert record.metadata == event.metadata
        assert record.content_type == "application/octet-stream"
        assert record.metadata_content_type == "application/json"
        assert record.created_epoch > 0
        assert record.created.seconds * 1_000_000 + record.created.nanos // 1000 == record.created_epoch
        [via_all] = await store.read_all(2, 1)
        assert via_all == recorded

    async def test_read_stream_forward_and_paged(self, store: EventStore) -> None:
        written = events(10)
        await store.append("s", written[:4], EXPECT_ANY)
        await store.append("other", events(2), EXPECT_ANY)
        await store.append("s", written[4:], EXPECT_ANY)
        page = await store.read_stream("s", None, 3)
        assert [e.version for e in page] == [0, 1, 2]
        page = await store.read_stream("s", 3, 4)
        assert [e.version for e in page] == [3, 4, 5, 6]
        assert [e.position for e in page] == [3, 6, 7, 8]
        everything = await read_stream_all(store, "s", page=3)
        assert [e.event_id for e in everything] == [e.event_id for e in written]
        assert [e.version for e in everything] == list(range(10))

    async def test_read_stream_backward(self, store: EventStore) -> None:
        await store.append("s", events(5), EXPECT_ANY)
        assert [e.version for e in await store.read_stream("s", None, 2, backward=True)] == [4, 3]
        assert [e.version for e in await store.read_stream("s", 2, 10, backward=True)] == [2, 1, 0]
        assert [e.version for e in await store.read_stream("s", 0, 10, backward=True)] == [0]

    async def test_read_stream_clipped(self, store: EventStore) -> None:
        await store.append("s", events(3), EXPECT_ANY)
        assert await store.read_stream("s", 3, 10) == []
        assert await store.read_stream("s", 1000, 10) == []
        assert [e.version for e in await store.read_stream("s", 1000, 10, backward=True)] == [2, 1, 0]
        assert [e.version for e in await store.read_stream("s", 1, 100)] == [1, 2]

    async def test_read_missing_stream(self, store: EventStore) -> None:
        await store.append("s", events(1), EXPECT_ANY)
        assert await store.read_stream("missing", None, 10) == []
        assert await store.read_stream("missing", None, 10, backward=True) == []
        assert await store.stream_version("missing") == -1

    async def test_read_all_in_global_order(self, store: EventStore) -> None:
        await store.append("a", events(2), EXPECT_ANY)
        await store.append("b", events(3), EXPECT_ANY)
        await store.append("a", events(1), EXPECT_ANY)
        everything = await store.read_all(None, 100)
        assert [e.position for e in everything] == list(range(6))
        assert [(e.stream_id, e.version) for e in everything] == [
            ("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2), ("a", 2),
        ]
        assert [e.position for e in await store.read_all(2, 3)] == [2, 3, 4]
        assert [e.position for e in await store.read_all(None, 2, backward=True)] == [5, 4]
        assert [e.position for e in await store.read_all(3, 10, backward=True)] == [3, 2, 1, 0]
        assert await store.read_all(6, 10) == []
        assert [e.position for e in await store.read_all(99, 2, backward=True)] == [5, 4]
        assert [e.position for e in await read_everything(store, page=4)] == list(range(6))

    async def test_read_empty_store(self, store: EventStore) -> None:
        assert await store.read_all(None, 10) == []
        assert await store.read_all(None, 10, backward=True) == []
        assert await store.list_streams("", 10) == []

    # -- list_streams ---------------------------------------------------------------------------

    async def test_list_streams_paged_in_id_order(self, store: EventStore) -> None:
        # Code point order: upper case before lower case, non-ASCII last.
        names = ["delta", "Alpha", "charlie", "bravo", "ärger", "echo", "Zulu"]
        for i, name in enumerate(names):
            await store.append(name, events(i + 1), EXPECT_ANY)
        expected = sorted((name, i) for i, name in enumerate(names))
        pages, after = [], ""
        while page := await store.list_streams(after, 3):
            pages.append(page)
            after = page[-1][0]
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [item for p in pages for item in p] == expected
        assert await store.list_streams("charlie", 2) == [("delta", 0), ("echo", 5)]
        assert await store.list_streams("ärger", 10) == []

    # -- snapshots ------------------------------------------------------------------------------

    async def test_snapshot_record_and_read(self, store: EventStore) -> None:
        given_snapshot = Snapshot("agg-1", "stream-1", 3, source_type="counter:v1", data=b'{"n": 3}', metadata=b"{}")
        recorded = await store.record_snapshot(given_snapshot)
        assert recorded.created_epoch > 0
        assert (recorded.source_uuid, recorded.stream_uuid, recorded.source_version) == ("agg-1", "stream-1", 3)
        assert (recorded.source_type, recorded.data, recorded.metadata) == ("counter:v1", b'{"n": 3}', b"{}")
        assert await store.read_snapshot("agg-1", "stream-1", 3) == recorded
        await store.record_snapshot(Snapshot("agg-1", "stream-1", 7, data=b'{"n": 7}'))
        await store.record_snapshot(Snapshot("agg-1", "stream-1", 5, data=b'{"n": 5}'))
        assert (await store.read_snapshot("agg-1", "stream-1", None)).source_version == 7
        assert (await store.read_snapshot("agg-1", "stream-1", 5)).data == b'{"n": 5}'
        with pytest.raises(SnapshotNotFoundError):
            await store.read_snapshot("agg-1", "stream-1", 4)
        with pytest.raises(SnapshotNotFoundError):
            await store.read_snapshot("agg-2", "stream-1", None)

    async def test_snapshot_same_key_replaces(self, store: EventStore) -> None:
        await store.record_snapshot(Snapshot("agg", "s", 1, source_type="v1", data=b"old"))
        await store.record_snapshot(Snapshot("agg", "s", 1, source_type="v2", data=b"new", metadata=b"m"))
        got = await store.read_snapshot("agg", "s", 1)
        assert (got.source_type, got.data, got.metadata) == ("v2", b"new", b"m")
        assert len(await store.list_snapshots(None, None, None, 10)) == 1

    async def test_snapshot_delete(self, store: EventStore) -> None:
        for version in (1, 2, 3):
            await store.record_snapshot(Snapshot("agg", "s", version, data=b"x"))
        await store.record_snapshot(Snapshot("agg", "t", 1, data=b"x"))
        assert await store.delete_snapshot("agg", "s", 2) == 1
        assert await store.delete_snapshot("agg", "s", 2) == 0
        with pytest.raises(SnapshotNotFoundError):
            await store.read_snapshot("agg", "s", 2)
        assert (await store.read_snapshot("agg", "s", None)).source_version == 3
        assert await store.delete_snapshot("agg", "s", None) == 2
        with pytest.raises(SnapshotNotFoundError):
            await store.read_snapshot("agg", "s", None)
        assert (await store.read_snapshot("agg", "t", None)).source_version == 1

    async def test_list_snapshots_filtered_and_paged(self, store: EventStore) -> None:
        keys = [(src, stream, v) for src in ("a", "b") for stream in ("s1", "s2") for v in (2, 1)]
        for src, stream, v in keys:
            await store.record_snapshot(Snapshot(src, stream, v, source_type="t", data=b"data", metadata=b"meta"))

        def key(s: Snapshot) -> tuple[str, str, int]:
            return (s.source_uuid, s.stream_uuid, s.source_version)

        everything = await store.list_snapshots(None, None, None, 100)
        assert [key(s) for s in everything] == sorted(keys)
        assert all(s.data == b"" and s.metadata == b"" for s in everything)
        assert all(s.source_type == "t" and s.created_epoch > 0 for s in everything)
        assert [key(s) for s in await store.list_snapshots("b", None, None, 100)] == sorted(k for k in keys if k[0] == "b")
        assert [key(s) for s in await store.list_snapshots(None, "s2", None, 100)] == sorted(k for k in keys if k[1] == "s2")
        assert [key(s) for s in await store.list_snapshots("a", "s2", None, 100)] == [("a", "s2", 1), ("a", "s2", 2)]
        pages, after = [], None
        while page := await store.list_snapshots(None, "s1", after, 3):
            pages.append([key(s) for s in page])
            after = key(page[-1])
        assert pages == [[("a", "s1", 1), ("a", "s1", 2), ("b", "s1", 1)], [("b", "s1", 2)]]
        assert await store.list_snapshots("c", None, None, 10) == []

    # -- status and config ----------------------------------------------------------------------

    async def test_status_counts(self, backend: StorageBackend, store: EventStore) -> None:
        empty = await store.status()
        assert (empty.store_id, empty.stream_count, empty.event_count, empty.last_position) == ("main", 0, 0, -1)
        assert empty.snapshot_count == 0
        await store.append("a", events(3), EXPECT_ANY)
        await store.append("b", events(2), EXPECT_ANY)
        await store.append("a", events(1), EXPECT_ANY)
        await store.record_snapshot(Snapshot("x", "a", 1, data=b"snap"))
        await store.record_snapshot(Snapshot("x", "a", 2, data=b"snap"))
        status = await store.status()
        assert (status.stream_count, status.event_count, status.last_position) == (2, 6, 5)
        assert status.snapshot_count == 2
        assert status.subscription_count == 0
        assert status.size_bytes > 0

    async def test_config(self, backend: StorageBackend) -> None:
        info = await backend.create_store("alpha")
        config = await (await backend.open_store("alpha")).config()
        assert (config.store_id, config.backend, config.created_epoch) == ("alpha", backend.name, info.created_epoch)
        assert config.location and config.durability

    # -- waiting for positions ------------------------------------------------------------------

    async def test_wait_for_position_already_past(self, store: EventStore) -> None:
        await store.append("s", events(3), EXPECT_ANY)
        assert await asyncio.wait_for(store.wait_for_position(1, timeout_s=WAIT_S), WAIT_S) == 2

    async def test_wait_for_position_times_out_with_last_position(self, store: EventStore) -> None:
        await store.append("s", events(2), EXPECT_ANY)
        assert await store.wait_for_position(1, timeout_s=0.05) == 1
        assert await store.wait_for_position(-1, timeout_s=0.0) == 1

    async def test_wait_for_position_wakes_on_commit(self, store: EventStore) -> None:
        await store.append("s", events(1), EXPECT_ANY)
        waiter = asyncio.create_task(store.wait_for_position(3, timeout_s=WAIT_S))
        for _ in range(3):  # positions 1..3: not yet past 3, and the waiter is waiting by now
            await store.append("s", events(1), EXPECT_ANY)
            assert not waiter.done()
        await store.append("s", events(1), EXPECT_ANY)  # position 4 wakes it
        assert await asyncio.wait_for(waiter, WAIT_S) == 4

    async def test_wait_for_position_on_empty_store(self, store: EventStore) -> None:
        waiter = asyncio.create_task(store.wait_for_position(-1, timeout_s=WAIT_S))
        await store.append("s", events(1), EXPECT_ANY)
        assert await asyncio.wait_for(waiter, WAIT_S) == 0

    # -- concurrency ----------------------------------------------------------------------------

    async def test_concurrent_exact_appends_stay_consistent(self, store: EventStore) -> None:
        """50 appenders × 20 appends to 5 streams, each with the exact expected version and a
        retry on WrongExpectedVersion: nothing lost, nothing doubled, no gaps."""
        appenders, appends_each, streams = 50, 20, [f"s-{i}" for i in range(5)]
        results: list[tuple[str, AppendResult, str]] = []

        async def appender(n: int) -> None:
            for i in range(appends_each):
                stream = streams[(n + i) % len(streams)]
                event = new_event(data=f'{{"by": {n}, "i": {i}}}'.encode())
                expected = await store.stream_version(stream)
                while True:
                    try:
                        result = await store.append(stream, [event], expected)
                        break
                    except WrongExpectedVersionError as e:
                        expected = e.current_version
                results.append((stream, result, event.event_id))

        await asyncio.wait_for(asyncio.gather(*(appender(n) for n in range(appenders))), 120)
        total = appenders * appends_each
        assert sorted(r.position for _, r, _ in results) == list(range(total))
        assert not any(r.duplicate for _, r, _ in results)
        everything = await read_everything(store, page=97)
        assert [e.position for e in everything] == list(range(total))
        assert sorted(e.event_id for e in everything) == sorted(eid for _, _, eid in results)
        for stream in streams:
            in_stream = [e for e in everything if e.stream_id == stream]
            assert [e.version for e in in_stream] == list(range(len(in_stream)))  # versions follow positions
            assert await store.stream_version(stream) == len(in_stream) - 1
            mine = sorted(r.version for s, r, _ in results if s == stream)
            assert mine == list(range(len(in_stream)))
        assert await store.last_position() == total - 1

    async def test_concurrent_multi_event_appends_are_contiguous(self, store: EventStore) -> None:
        async def appender(n: int) -> list[tuple[AppendResult, list[NewEvent]]]:
            done = []
            for i in range(10):
                batch = events(1 + (n + i) % 4)
                done.append((await store.append(f"s-{n % 3}", batch, EXPECT_ANY), batch))
            return done

        per_task = await asyncio.wait_for(asyncio.gather(*(appender(n) for n in range(30))), 120)
        by_position = {e.position: e for e in await read_everything(store, page=50)}
        total = sum(len(batch) for done in per_task for _, batch in done)
        assert sorted(by_position) == list(range(total))
        for done in per_task:
            for result, batch in done:
                assert result.position - result.first_position == len(batch) - 1
                assert result.version - result.first_version == len(batch) - 1
                got = [by_position[p] for p in range(result.first_position, result.position + 1)]
                assert [e.event_id for e in got] == [e.event_id for e in batch]
                assert [e.version for e in got] == list(range(result.first_version, result.version + 1))

    async def test_one_failing_append_does_not_fail_concurrent_ones(self, store: EventStore) -> None:
        await store.append("s", events(1), EXPECT_ANY)
        outcomes = await asyncio.gather(
            *(store.append(f"ok-{i}", events(2), EXPECT_NO_STREAM) for i in range(10)),
            store.append("s", events(1), 5),  # wrong
            *(store.append(f"ok2-{i}", events(1), EXPECT_ANY) for i in range(10)),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], WrongExpectedVersionError)
        assert await store.last_position() == 1 + 10 * 2 + 10 - 1

    # -- lifecycle ------------------------------------------------------------------------------

    async def test_data_and_cluster_id_survive_restart(self, new_backend: BackendFactory) -> None:
        first = new_backend()
        await first.start()
        try:
            cluster_id = first.cluster_id
            assert isinstance(cluster_id, str) and cluster_id
            await first.create_store("alpha")
            store = await first.open_store("alpha")
            written = await store.append("s", events(3), EXPECT_ANY)
            await store.record_snapshot(Snapshot("agg", "s", 2, data=b"snap"))
        finally:
            await first.stop()
            await first.stop()  # safe twice
        async with new_backend() as second:
            assert second.cluster_id == cluster_id
            assert [s.store_id for s in await second.list_stores()] == ["alpha"]
            store = await second.open_store("alpha")
            assert await store.stream_version("s") == 2
            assert [e.position for e in await store.read_all(None, 10)] == [0, 1, 2]
            assert (await store.read_snapshot("agg", "s", None)).data == b"snap"
            next_one = await store.append("s", events(1), EXPECT_ANY)
            assert (next_one.version, next_one.position) == (written.version + 1, written.position + 1)

    # -- a removed or closed store says so, to every caller ----------------------------------

    async def test_every_call_on_a_removed_store_raises_not_found(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        await store.append("s", events(2), EXPECT_ANY)
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        await backend.remove_store("alpha")
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "append": lambda: store.append("s", events(1), EXPECT_ANY),
            "read_stream": lambda: store.read_stream("s", None, 10),
            "read_all": lambda: store.read_all(None, 10),
            "stream_version": lambda: store.stream_version("s"),
            "stream_version($all)": lambda: store.stream_version("$all"),
            "last_position": store.last_position,
            "list_streams": lambda: store.list_streams("", 10),
            "record_snapshot": lambda: store.record_snapshot(Snapshot("a", "s", 1)),
            "read_snapshot": lambda: store.read_snapshot("a", "s", None),
            "delete_snapshot": lambda: store.delete_snapshot("a", "s", None),
            "list_snapshots": lambda: store.list_snapshots(None, None, None, 10),
            "status": store.status,
            "config": store.config,
            "save_subscription": lambda: store.save_subscription("other", {}, {"checkpoint": -1}),
            "load_subscriptions": store.load_subscriptions,
            "save_subscription_state": lambda: store.save_subscription_state("sub", {"checkpoint": 1}),
            "acquire_lease": lambda: store.acquire_lease("sub", "node-a", "a:1", 30.0),
            "release_lease": lambda: store.release_lease("sub", "node-a", 0),
            "remove_subscription": lambda: store.remove_subscription("sub"),
            "wait_for_position(past)": lambda: store.wait_for_position(0, timeout_s=0.0),
            "wait_for_position(future)": lambda: store.wait_for_position(10, timeout_s=WAIT_S),
        }
        for name, call in calls.items():
            with pytest.raises(StoreNotFoundError):
                await asyncio.wait_for(call(), WAIT_S)
                pytest.fail(f"{name} on a removed store did not raise")

    async def test_waiters_on_a_removed_store_are_told(self, backend: StorageBackend) -> None:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        await store.append("s", events(1), EXPECT_ANY)
        waiters = [asyncio.create_task(store.wait_for_position(10, timeout_s=WAIT_S)) for _ in range(3)]
        for _ in range(3):  # positions 1..3: not past 10, and the waiters are waiting by now
            await store.append("s", events(1), EXPECT_ANY)
            assert not any(w.done() for w in waiters)
        await backend.remove_store("alpha")
        for waiter in waiters:
            with pytest.raises(StoreNotFoundError):
                await asyncio.wait_for(waiter, WAIT_S)

    async def test_a_waiter_cancelled_as_its_store_is_removed_ends_cancelled(self, backend: StorageBackend) -> None:
        """Not with the store's error, which its canceller never reads (asyncio then logs "Task
        exception was never retrieved"): the fuzz suite found a persistent subscription's
        dispatcher cancelled just so, by RemoveStore, on PostgreSQL."""
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        await store.append("s", events(1), EXPECT_ANY)
        waiter = asyncio.create_task(store.wait_for_position(10, timeout_s=WAIT_S))
        for _ in range(3):  # positions 1..3: not past 10, and the waiter is waiting by now
            await store.append("s", events(1), EXPECT_ANY)
            assert not waiter.done()
        await backend.remove_store("alpha")
        told = waiter.done()  # a backend may have told it before the removal returned
        waiter.cancel()  # in the same turn as the removal's return
        with pytest.raises(StoreNotFoundError if told else asyncio.CancelledError):
            await asyncio.wait_for(waiter, WAIT_S)

    async def test_waiters_are_told_when_the_backend_stops(self, new_backend: BackendFactory) -> None:
        backend = new_backend()
        await backend.start()
        try:
            await backend.create_store("alpha")
            store = await backend.open_store("alpha")
            await store.append("s", events(1), EXPECT_ANY)
            waiter = asyncio.create_task(store.wait_for_position(10, timeout_s=WAIT_S))
            for _ in range(2):
                await store.append("s", events(1), EXPECT_ANY)
                assert not waiter.done()
        finally:
            await backend.stop()
        with pytest.raises((StoreNotFoundError, StorageUnavailableError)):
            await asyncio.wait_for(waiter, WAIT_S)
        with pytest.raises((StoreNotFoundError, StorageUnavailableError)):
            await asyncio.wait_for(store.wait_for_position(0, timeout_s=WAIT_S), WAIT_S)

    # -- page limits ------------------------------------------------------------------------

    async def test_page_limits(self, store: EventStore, limits: Limits) -> None:
        for call in (
            lambda: store.read_stream("s", None, 0),
            lambda: store.read_stream("s", None, -1, backward=True),
            lambda: store.read_all(None, 0),
            lambda: store.read_all(None, 0, backward=True),
            lambda: store.list_streams("", 0),
            lambda: store.list_snapshots(None, None, None, 0),
        ):
            with pytest.raises(InvalidArgumentError):
                await call()
        await store.append("s", events(limits.read_batch + 3), EXPECT_ANY)
        assert len(await store.read_stream("s", None, 10**6)) == limits.read_batch
        assert len(await store.read_stream("s", None, 10**6, backward=True)) == limits.read_batch
        assert len(await store.read_all(None, 10**6)) == limits.read_batch
        assert len(await store.read_all(None, 10**6, backward=True)) == limits.read_batch
        many = limits.max_page_size + 2
        await asyncio.gather(*(store.append(f"t{i:03}", events(1), EXPECT_ANY) for i in range(many)))
        assert len(await store.list_streams("", 10**6)) == limits.max_page_size
        await asyncio.gather(*(store.record_snapshot(Snapshot("a", "s", v)) for v in range(many)))
        assert len(await store.list_snapshots(None, None, None, 10**6)) == limits.max_page_size

    # -- persistent subscriptions: definitions, state, leases -------------------------------

    async def test_save_and_load_subscriptions(self, store: EventStore) -> None:
        assert await store.load_subscriptions() == {}
        definition = {"selector": "$all", "settings": {"max_in_flight": 10}}
        assert await store.save_subscription("sub", definition, {"checkpoint": 3, "parked": [1]})
        await store.save_subscription("other", {"selector": "s"}, {"checkpoint": -1})
        loaded = await store.load_subscriptions()
        assert loaded == {
            "sub": (definition, {"checkpoint": 3, "parked": [1]}),
            "other": ({"selector": "s"}, {"checkpoint": -1}),
        }
        # Saving again updates the definition and keeps the stored state.
        changed = {"selector": "$all", "settings": {"max_in_flight": 20}}
        assert not await store.save_subscription("sub", changed, {"checkpoint": -1})
        assert (await store.load_subscriptions())["sub"] == (changed, {"checkpoint": 3, "parked": [1]})
        assert (await store.status()).subscription_count == 2
        await store.remove_subscription("other")
        assert list(await store.load_subscriptions()) == ["sub"]
        with pytest.raises(SubscriptionNotFoundError):
            await store.remove_subscription("other")
        assert (await store.status()).subscription_count == 1

    async def test_subscriptions_survive_restart(self, new_backend: BackendFactory) -> None:
        async with new_backend() as first:
            await first.create_store("alpha")
            store = await first.open_store("alpha")
            await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
            await store.save_subscription_state("sub", {"checkpoint": 7, "parked": [2]})
        async with new_backend() as second:
            store = await second.open_store("alpha")
            assert await store.load_subscriptions() == {"sub": ({"selector": "$all"}, {"checkpoint": 7, "parked": [2]})}

    async def test_a_checkpoint_never_moves_back(self, store: EventStore) -> None:
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        await store.save_subscription_state("sub", {"checkpoint": 5, "parked": [3]})
        await store.save_subscription_state("sub", {"checkpoint": 2, "parked": []})  # ignored
        assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 5, "parked": [3]}
        await store.save_subscription_state("sub", {"checkpoint": 5, "parked": []})  # same: written
        assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 5, "parked": []}
        await store.save_subscription_state("sub", {"checkpoint": 9, "parked": []})
        assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 9, "parked": []}
        # Saving the definition again never resets the state.
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        assert (await store.load_subscriptions())["sub"][1]["checkpoint"] == 9

    async def test_leases(self, store: EventStore) -> None:
        with pytest.raises(SubscriptionNotFoundError):
            await store.acquire_lease("missing", "node-a", "a:1", 30.0)
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        a = await store.acquire_lease("sub", "node-a", "a:1", 30.0)
        assert (a.held, a.owner_node, a.owner_address) == (True, "node-a", "a:1")
        renewed = await store.acquire_lease("sub", "node-a", "a:1", 30.0)
        assert (renewed.held, renewed.fence) == (True, a.fence)
        await store.save_subscription_state("sub", {"checkpoint": 1}, fence=a.fence)
        b = await store.acquire_lease("sub", "node-b", "b:1", 30.0)
        if not self.shared_storage:
            # One process serves the store: there is nobody to fence off.
            assert b.held
            await store.save_subscription_state("sub", {"checkpoint": 2}, fence=b.fence)
            assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 2}
            await store.release_lease("sub", "node-b", b.fence)
            return
        assert (b.held, b.owner_node, b.owner_address, b.fence) == (False, "node-a", "a:1", a.fence)
        await store.release_lease("sub", "node-a", a.fence)
        b = await store.acquire_lease("sub", "node-b", "b:1", 30.0)
        assert (b.held, b.owner_node, b.owner_address) == (True, "node-b", "b:1")
        assert b.fence > a.fence
        with pytest.raises(LeaseLostError):  # the old owner can no longer write
            await store.save_subscription_state("sub", {"checkpoint": 5}, fence=a.fence)
        await store.save_subscription_state("sub", {"checkpoint": 5}, fence=b.fence)
        assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 5}
        with pytest.raises(SubscriptionNotFoundError):
            await store.save_subscription_state("missing", {"checkpoint": 5}, fence=b.fence)

    async def test_an_expired_lease_is_taken_over(self, store: EventStore) -> None:
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        a = await store.acquire_lease("sub", "node-a", "a:1", 0.05)
        assert a.held
        async with asyncio.timeout(WAIT_S):
            while not (b := await store.acquire_lease("sub", "node-b", "b:1", 30.0)).held:
                assert b.owner_node == "node-a"  # until it expires
        assert b.owner_node == "node-b"
        assert b.fence > a.fence if self.shared_storage else b.fence == a.fence

    # -- invariants the database enforces ----------------------------------------------------

    async def test_an_import_batch_with_an_id_the_store_holds_elsewhere_writes_nothing(self, store: EventStore) -> None:
        first = [imported_event(0, 0), imported_event(1, 1)]
        assert await store.import_events(first, starts_file=True) == (1, 2)
        again = [first[-1], imported_event(2, 2), imported_event(3, 3, first[0].event_id)]
        with pytest.raises(DuplicateEventIdError) as held:
            await store.import_events(again)
        assert held.value.event_id == first[0].event_id
        # The same past a first chunk of rows the store took before it refused (SQLite inserts
        # 256 rows a statement): the id named is still the one held before the batch.
        big = [first[-1], *(imported_event(p, p) for p in range(2, 300)), imported_event(300, 300, first[0].event_id)]
        with pytest.raises(DuplicateEventIdError) as held:
            await store.import_events(big)
        assert held.value.event_id == first[0].event_id
        second = imported_event(2, 2)
        with pytest.raises(DuplicateEventIdError) as repeated:  # twice in the batch itself
            await store.import_events([first[-1], second, imported_event(3, 3, second.event_id)])
        assert repeated.value.event_id == second.event_id
        assert [e.position for e in await read_everything(store)] == [0, 1]
        assert await store.import_events([first[-1], imported_event(2, 2)]) == (2, 1)

    async def test_the_database_refuses_to_change_events(self, store: EventStore, raw_sql: RawSql) -> None:
        await store.append("s", events(3), EXPECT_ANY)
        await store.save_subscription("sub", {"selector": "$all"}, {"checkpoint": -1})
        await store.save_subscription_state("sub", {"checkpoint": 2})
        before = await store.read_all(None, 10)
        for statement in (
            "UPDATE events SET event_type = 'changed'",
            "UPDATE events SET position = position + 10",
            "DELETE FROM events",
            "DELETE FROM events WHERE position = 2",
            "UPDATE subscriptions SET checkpoint = 0",
        ):
            with pytest.raises(DatabaseRefused):
                await raw_sql("main", statement)
        assert await raw_sql("main", "SELECT count(*) FROM events") == [(3,)]
        assert await store.read_all(None, 10) == before
        assert (await store.load_subscriptions())["sub"][1] == {"checkpoint": 2}

    # -- health -----------------------------------------------------------------------------

    async def test_check(self, new_backend: BackendFactory) -> None:
        backend = new_backend()
        with pytest.raises(StorageUnavailableError):
            await asyncio.wait_for(backend.check(timeout_s=1.0), WAIT_S)
        async with backend:
            await backend.create_store("alpha")
            await asyncio.wait_for(backend.check(timeout_s=WAIT_S), WAIT_S)
            await asyncio.wait_for(backend.check(timeout_s=WAIT_S), WAIT_S)
        with pytest.raises(StorageUnavailableError):
            await asyncio.wait_for(backend.check(timeout_s=1.0), WAIT_S)

    # -- property: a random sequence of appends agrees with a model ------------------------------

    @settings(
        max_examples=25,
        deadline=None,
        # one method, run by each backend subclass: "differing executors" is by design here
        suppress_health_check=[
            HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.differing_executors
        ],
    )
    @given(
        ops=st.lists(
            st.tuples(
                st.integers(0, 2),  # stream
                st.integers(1, 3),  # events
                st.sampled_from(["any", "no_stream", "exists", "exact", "exact_wrong", "repeat", "steal"]),
            ),
            min_size=1,
            max_size=15,
        )
    )
    async def test_appends_agree_with_a_model(
        self, backend: StorageBackend, ops: list[tuple[int, int, str]]
    ) -> None:
        store_id = f"p{uuid.uuid4().hex[:12]}"  # one fresh store per example
        await backend.create_store(store_id)
        store = await backend.open_store(store_id)
        model: dict[str, list[str]] = {}  # stream -> event ids, in version order
        log: list[str] = []  # event ids in position order
        history: list[tuple[str, list[NewEvent], AppendResult]] = []
        for n, (stream_no, count, how) in enumerate(ops):
            stream = f"s{stream_no}"
            current = len(model.get(stream, [])) - 1
            if how in ("repeat", "steal") and history:
                old_stream, batch, old_result = history[n % len(history)]
                target = old_stream if how == "repeat" else (stream if stream != old_stream else stream + "x")
                if how == "repeat":
                    assert await store.append(target, batch, EXPECT_ANY) == AppendResult(
                        old_result.first_version, old_result.version,
                        old_result.first_position, old_result.position, True,
                    )
                else:
                    with pytest.raises(DuplicateEventIdError):
                        await store.append(target, batch, EXPECT_ANY)
                continue
            expected = {
                "any": EXPECT_ANY,
                "no_stream": EXPECT_NO_STREAM,
                "exists": EXPECT_STREAM_EXISTS,
                "exact": current,
                "exact_wrong": current + 1 + stream_no,
            }.get(how, EXPECT_ANY)
            holds = {
                EXPECT_ANY: True,
                EXPECT_NO_STREAM: current == -1,
                EXPECT_STREAM_EXISTS: current >= 0,
            }.get(expected, expected == current)
            batch = events(count)
            if not holds:
                with pytest.raises(WrongExpectedVersionError) as caught:
                    await store.append(stream, batch, expected)
                assert caught.value.current_version == current
                continue
            result = await store.append(stream, batch, expected)
            assert result == AppendResult(current + 1, current + count, len(log), len(log) + count - 1)
            model.setdefault(stream, []).extend(e.event_id for e in batch)
            log.extend(e.event_id for e in batch)
            history.append((stream, batch, result))
        everything = await read_everything(store, page=4)
        assert [e.event_id for e in everything] == log
        for stream, ids in model.items():
            assert [e.event_id for e in await read_stream_all(store, stream, page=2)] == ids
            assert await store.stream_version(stream) == len(ids) - 1
        await backend.remove_store(store_id)
