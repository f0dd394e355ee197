"""The lifecycle part of the storage conformance suite: delete, tombstone, metadata rules,
scavenging and redaction, on every backend.

Owns: `LifecycleConformance`, a mixin of `StoreConformance` (so every backend's subclass runs
it); its tests take the `store` and `raw_sql` fixtures. docs/lifecycle.md is what it checks.
Must not import a backend module.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from exesdb.v1 import types_pb2
from gater.errors import (
    NotFoundError,
    StreamDeletedError,
    StreamNotFoundError,
    WrongExpectedVersionError,
)
from gater.store._lifecycle import (
    REDACTED,
    SCAVENGE_BATCH,
    SOFT_DELETED,
    TOMBSTONED,
    StreamMetadata,
)
from gater.store.base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    EventStore,
    NewEvent,
    Query,
    QueryItem,
)

from .dcb_conformance import tagged

__all__ = ["LifecycleConformance", "visible_positions"]

WAIT_S = 30.0


def _events(n: int) -> list[NewEvent]:
    import uuid

    return [NewEvent(str(uuid.uuid4()), "thing_happened:v1", f'{{"i": {i}}}'.encode()) for i in range(n)]


async def visible_positions(store: EventStore, page: int = 4) -> list[tuple[str, int, int]]:
    """(stream, version, position) of every event "$all" shows, read forward in small pages."""
    found: list[tuple[str, int, int]] = []
    start = 0
    while True:
        batch = await store.read_all(start, page)
        found.extend((e.stream_id, e.version, e.position) for e in batch)
        if len(batch) < page:
            return found
        start = batch[-1].position + 1


async def stream_versions(store: EventStore, stream_id: str, backward: bool = False) -> list[int]:
    found: list[int] = []
    start = None
    while True:
        batch = await store.read_stream(stream_id, start, 3, backward)
        found.extend(e.version for e in batch)
        if len(batch) < 3:
            return found
        start = batch[-1].version + (-1 if backward else 1)
        if start < 0:
            return found


async def _until_expired(store: EventStore, stream_id: str, max_age_s: int) -> None:
    """Waits out the age limit of the stream's newest event (time is what expires it: there is
    no event to await), with a margin for the store's clock reading."""
    (newest,) = await store.read_stream(stream_id, None, 1, backward=True) or [None]
    if newest is not None:
        left_s = newest.created_epoch_us / 1e6 + max_age_s - time.time()
        await asyncio.sleep(max(0.0, left_s) + 0.05)


class LifecycleConformance:
    """Mixed into StoreConformance."""

    # -- soft delete --------------------------------------------------------------------------

    async def test_soft_delete_reads_as_missing_and_an_append_continues_the_versions(self, store: EventStore) -> None:
        await store.append("a", _events(3), EXPECT_ANY)
        await store.append("b", _events(2), EXPECT_ANY)
        assert await store.delete_stream("a", 2, tombstone=False) == 2
        assert await store.read_stream("a", None, 10) == []
        assert await store.read_stream("a", None, 10, backward=True) == []
        assert await store.stream_version("a") == -1
        assert [s for s, _ in await store.list_streams("", 10)] == ["b"]
        assert [(s, v) for s, v, _ in await visible_positions(store)] == [("b", 0), ("b", 1)]
        assert (await store.stream_metadata("a")).deleted == SOFT_DELETED
        # As KurrentDB: NO_STREAM holds (it reads as missing) and the versions go on.
        result = await store.append("a", _events(2), EXPECT_NO_STREAM)
        assert (result.first_version, result.version, result.position) == (3, 4, 6)
        assert await stream_versions(store, "a") == [3, 4]
        assert await stream_versions(store, "a", backward=True) == [4, 3]
        assert await store.stream_version("a") == 4
        assert [s for s, _ in await store.list_streams("", 10)] == ["a", "b"]
        assert (await store.stream_metadata("a")).deleted == 0

    async def test_soft_deleted_stream_takes_its_last_version_but_not_stream_exists(self, store: EventStore) -> None:
        await store.append("a", _events(2), EXPECT_ANY)
        await store.delete_stream("a", EXPECT_ANY, tombstone=False)
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.append("a", _events(1), EXPECT_STREAM_EXISTS)
        assert caught.value.current_version == -1
        result = await store.append("a", _events(1), 1)
        assert result.version == 2

    async def test_delete_checks_expected_version_and_existence(self, store: EventStore) -> None:
        await store.append("a", _events(2), EXPECT_ANY)
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.delete_stream("a", 0, tombstone=False)
        assert caught.value.current_version == 1
        with pytest.raises(StreamNotFoundError):
            await store.delete_stream("never", EXPECT_ANY, tombstone=False)
        with pytest.raises(StreamNotFoundError):
            await store.delete_stream("never", EXPECT_ANY, tombstone=True)
        await store.delete_stream("a", EXPECT_STREAM_EXISTS, tombstone=False)
        with pytest.raises(StreamNotFoundError):
            await store.delete_stream("a", EXPECT_ANY, tombstone=False)  # it reads as missing
        assert len(await stream_versions(store, "a")) == 0

    # -- tombstone ----------------------------------------------------------------------------

    async def test_tombstoned_stream_is_never_written_again(self, store: EventStore) -> None:
        await store.append("a", _events(2), EXPECT_ANY)
        await store.append("b", _events(1), EXPECT_ANY)
        assert await store.delete_stream("a", 1, tombstone=True) == 1
        for expected in (EXPECT_ANY, EXPECT_NO_STREAM, 1):
            with pytest.raises(StreamDeletedError) as caught:
                await store.append("a", _events(1), expected)
            assert caught.value.stream_id == "a"
        with pytest.raises(StreamDeletedError):
            await store.delete_stream("a", EXPECT_ANY, tombstone=True)
        with pytest.raises(StreamDeletedError):
            await store.delete_stream("a", EXPECT_ANY, tombstone=False)
        with pytest.raises(StreamDeletedError):
            await store.set_stream_metadata("a", StreamMetadata(max_count=5), EXPECT_ANY)
        assert await store.read_stream("a", None, 10) == []
        assert await store.stream_version("a") == -1
        assert [s for s, _, _ in await visible_positions(store)] == ["b"]
        assert (await store.stream_metadata("a")).deleted == TOMBSTONED
        # Other streams of a batch are not held back by the refused one.
        assert (await store.append("b", _events(1), EXPECT_ANY)).version == 1

    async def test_a_soft_deleted_stream_can_be_tombstoned(self, store: EventStore) -> None:
        await store.append("a", _events(1), EXPECT_ANY)
        await store.delete_stream("a", EXPECT_ANY, tombstone=False)
        await store.delete_stream("a", EXPECT_NO_STREAM, tombstone=True)
        with pytest.raises(StreamDeletedError):
            await store.append("a", _events(1), EXPECT_NO_STREAM)

    # -- metadata -----------------------------------------------------------------------------

    async def test_metadata_is_versioned_with_its_own_expected_version(self, store: EventStore) -> None:
        empty = await store.stream_metadata("a")
        assert (empty.meta_version, empty.max_count, dict(empty.custom)) == (-1, None, {})
        meta = StreamMetadata(max_count=3, max_age_s=60, truncate_before=1, custom={"owner": "ops", "n": [1, 2]})
        assert await store.set_stream_metadata("a", meta, EXPECT_NO_STREAM) == 0
        read = await store.stream_metadata("a")
        assert (read.max_count, read.max_age_s, read.truncate_before, read.meta_version) == (3, 60, 1, 0)
        assert dict(read.custom) == {"owner": "ops", "n": [1, 2]}
        with pytest.raises(WrongExpectedVersionError) as caught:
            await store.set_stream_metadata("a", StreamMetadata(), EXPECT_NO_STREAM)
        assert caught.value.current_version == 0
        with pytest.raises(WrongExpectedVersionError):
            await store.set_stream_metadata("a", StreamMetadata(), 5)
        assert await store.set_stream_metadata("a", StreamMetadata(custom={"x": 1}), 0) == 1
        assert await store.set_stream_metadata("a", StreamMetadata(), EXPECT_ANY) == 2
        cleared = await store.stream_metadata("a")
        assert (cleared.max_count, cleared.truncate_before, dict(cleared.custom)) == (None, None, {})

    async def test_max_count_hides_older_events_from_every_read(self, store: EventStore) -> None:
        await store.append("a", [tagged("t", "k:1") for _ in range(5)], EXPECT_ANY)
        await store.append("b", [tagged("t", "k:1")], EXPECT_ANY)
        await store.set_stream_metadata("a", StreamMetadata(max_count=2), EXPECT_ANY)
        assert await stream_versions(store, "a") == [3, 4]
        assert await stream_versions(store, "a", backward=True) == [4, 3]
        assert [p for _, _, p in await visible_positions(store)] == [3, 4, 5]
        page, _ = await store.read_query(Query((QueryItem((), ("k:1",)),)), None, 2)
        assert [e.position for e in page] == [3, 4]  # a full page despite the hidden ones
        await store.append("a", _events(1), EXPECT_ANY)  # the window moves with the stream
        assert await stream_versions(store, "a") == [4, 5]
        assert await store.stream_version("a") == 5  # the version is the stream's, not a count

    async def test_truncate_before_hides_older_versions(self, store: EventStore) -> None:
        await store.append("a", _events(4), EXPECT_ANY)
        await store.set_stream_metadata("a", StreamMetadata(truncate_before=3), EXPECT_ANY)
        assert await stream_versions(store, "a") == [3]
        assert [v for _, v, _ in await visible_positions(store)] == [3]
        backward = await store.read_all(None, 2, backward=True)
        assert [e.version for e in backward] == [3]
        await store.set_stream_metadata("a", StreamMetadata(), EXPECT_ANY)  # lifted: back in view
        assert await stream_versions(store, "a") == [0, 1, 2, 3]

    async def test_max_age_hides_expired_events(self, store: EventStore) -> None:
        await store.append("a", _events(2), EXPECT_ANY)
        await store.set_stream_metadata("a", StreamMetadata(max_age_s=1), EXPECT_ANY)
        await _until_expired(store, "a", max_age_s=1)
        assert await store.read_stream("a", None, 10) == []
        assert await store.read_all(None, 10) == []
        await store.set_stream_metadata("a", StreamMetadata(max_age_s=3600), EXPECT_ANY)
        assert await stream_versions(store, "a") == [0, 1]  # hidden, not removed
        fresh = await store.append("b", _events(1), EXPECT_ANY)
        await store.set_stream_metadata("b", StreamMetadata(max_age_s=3600), EXPECT_ANY)
        assert [e.position for e in await store.read_all(None, 10)] == [0, 1, fresh.position]

    # -- scavenging ---------------------------------------------------------------------------

    async def _stored_positions(self, store: EventStore, raw_sql) -> list[int]:  # noqa: ANN001
        rows = await raw_sql(store.store_id, "SELECT position FROM events ORDER BY position")
        return [r[0] for r in rows]

    async def test_scavenge_removes_hidden_events_and_keeps_positions(self, store: EventStore, raw_sql) -> None:  # noqa: ANN001
        await store.append("gone", _events(3), EXPECT_ANY)  # 0..2
        await store.append("kept", _events(2), EXPECT_ANY)  # 3..4
        await store.append("capped", _events(4), EXPECT_ANY)  # 5..8
        await store.append("dead", _events(2), EXPECT_ANY)  # 9..10
        await store.append("kept", _events(1), EXPECT_ANY)  # 11
        await store.delete_stream("gone", EXPECT_ANY, tombstone=False)
        await store.delete_stream("dead", EXPECT_ANY, tombstone=True)
        await store.set_stream_metadata("capped", StreamMetadata(max_count=1), EXPECT_ANY)
        before = await visible_positions(store)
        status = await store.scavenge()
        assert not status.running and status.removed == 8
        assert await self._stored_positions(store, raw_sql) == [3, 4, 8, 11]
        assert await visible_positions(store) == before == [("kept", 0, 3), ("kept", 1, 4), ("capped", 3, 8), ("kept", 2, 11)]
        assert (await store.scavenge_status()).removed == 8
        # The log goes on at the next position; a soft-deleted stream comes back after it.
        result = await store.append("gone", _events(1), EXPECT_NO_STREAM)
        assert (result.version, result.position) == (3, 12)
        assert (await store.scavenge()).removed == 0

    async def test_scavenge_removes_expired_events(self, store: EventStore, raw_sql) -> None:  # noqa: ANN001
        await store.append("old", _events(3), EXPECT_ANY)  # 0..2
        await store.set_stream_metadata("old", StreamMetadata(max_age_s=1), EXPECT_ANY)
        await _until_expired(store, "old", max_age_s=1)
        await store.append("new", _events(1), EXPECT_ANY)  # 3: the head
        assert (await store.scavenge()).removed == 3
        assert await self._stored_positions(store, raw_sql) == [3]
        assert [p for _, _, p in await visible_positions(store)] == [3]

    async def test_scavenge_keeps_the_head_event(self, store: EventStore, raw_sql) -> None:  # noqa: ANN001
        await store.append("a", _events(2), EXPECT_ANY)
        await store.delete_stream("a", EXPECT_ANY, tombstone=False)
        await store.scavenge()
        assert await self._stored_positions(store, raw_sql) == [1]
        assert await store.read_all(None, 10) == []
        assert (await store.append("b", _events(1), EXPECT_ANY)).position == 2

    async def test_appends_continue_during_a_scavenge(self, store: EventStore, raw_sql) -> None:  # noqa: ANN001
        n = 2 * SCAVENGE_BATCH + 10
        await store.append("old", _events(n), EXPECT_ANY)
        await store.delete_stream("old", EXPECT_ANY, tombstone=True)

        async def appender() -> list[int]:
            return [(await store.append("live", _events(1), EXPECT_ANY)).position for _ in range(30)]

        status, positions = await asyncio.gather(store.scavenge(), appender())
        assert positions == list(range(n, n + 30))
        assert not status.running
        await store.scavenge()  # a second pass takes what the first left at its head
        stored = await self._stored_positions(store, raw_sql)
        assert stored == list(range(n, n + 30))
        assert [p for _, _, p in await visible_positions(store)] == stored

    async def test_events_are_still_immutable_outside_the_lifecycle_jobs(self, store: EventStore, raw_sql) -> None:  # noqa: ANN001
        from .conformance import DatabaseRefused

        await store.append("a", _events(2), EXPECT_ANY)
        with pytest.raises(DatabaseRefused):
            await raw_sql(store.store_id, "DELETE FROM events WHERE position = 0")
        with pytest.raises(DatabaseRefused):
            await raw_sql(store.store_id, "UPDATE events SET event_type = 'x' WHERE position = 0")

    # -- redaction ----------------------------------------------------------------------------

    async def test_redaction_replaces_data_and_metadata_only(self, store: EventStore) -> None:
        await store.append("a", [NewEvent("11111111-1111-4111-8111-111111111111", "person:v1", b'{"name": "x"}',
                                          b'{"ip": "1.2.3.4"}', tags=("person:1",))], EXPECT_ANY)
        await store.append("a", _events(1), EXPECT_ANY)
        (before,) = await store.read_stream("a", 0, 1)
        await store.redact("a", 0)
        (after,) = await store.read_stream("a", 0, 1)
        old = types_pb2.EventRecord.FromString(before.encoded)
        new = types_pb2.EventRecord.FromString(after.encoded)
        assert (new.data, new.metadata) == (REDACTED, REDACTED)
        assert json.loads(new.data) == {"$redacted": True}
        for name in ("stream_id", "version", "position", "event_id", "event_type", "created_epoch", "tags"):
            assert getattr(new, name) == getattr(old, name), name
        assert (after.position, after.event_id, after.created_epoch_us) == (before.position, before.event_id, before.created_epoch_us)
        assert [e.position for e in await store.read_all(None, 10)] == [0, 1]
        with pytest.raises(NotFoundError):
            await store.redact("a", 7)
