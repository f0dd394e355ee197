"""Export and import on the SQLite backend.

Owns: `SqliteExportView` — one read-only connection of its own holding one read transaction
for the whole export (WAL mode: a reader's snapshot stays fixed while the writer goes on
committing), so the head it read first and every page after it are one consistent view — and
`import_job`, the import batch as a writer job: it runs in the store's writer thread, inside
the writer's transaction, so nothing else writes between reading the head and inserting (its
events, then its stream states). It inserts with the positions' trigger dropped and creates it
again before the transaction ends (0007_import_without_trigger.sql says why); plan_import has
checked what the trigger would. The store's head is the largest position held, so an import
with gaps leaves it at the source's: the source never scavenges its last event.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gater.errors import DuplicateEventIdError, ImportMismatchError

from .._records import now_epoch_us
from .._transfer import (
    ExportView,
    ImportedEvent,
    StreamState,
    check_stream_states,
    held_range,
    plan_import,
    prepare_import,
)
from ..base import Snapshot
from ._db import connect
from ._sql import query, rows

__all__ = ["SqliteExportView", "import_job"]

_ROWS_PER_INSERT = 256  # x 7 columns, as the writer's appends


class SqliteExportView(ExportView):
    """Opened by `open()`, closed by `close()`; its calls run one at a time in worker threads."""

    def __init__(self, path: Path, synchronous: str, translate: Callable[[BaseException, str], Exception]) -> None:
        self._path = path
        self._synchronous = synchronous
        self._translate = translate
        self._conn: sqlite3.Connection | None = None
        self.head = -1

    async def _run(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def work() -> Any:
            try:
                assert self._conn is not None
                return fn(self._conn)
            except (sqlite3.Error, OSError) as e:
                raise self._translate(e, what) from e

        return await asyncio.to_thread(work)

    async def open(self) -> None:
        def begin() -> int:
            try:
                self._conn = connect(self._path, self._synchronous, readonly=True)
                # The first read fixes the transaction's snapshot: the head and every page after.
                self._conn.execute("BEGIN")
                return int(self._conn.execute(query("last_position")).fetchone()[0])
            except (sqlite3.Error, OSError) as e:
                raise self._translate(e, "export") from e

        self.head = await asyncio.to_thread(begin)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)  # ends the read transaction

    async def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        args = (start, self.head, limit)
        return await self._run("export events", lambda conn: conn.execute(query("export_records"), args).fetchall())

    async def count(self, last: int) -> int:
        return await self._run("export events", lambda conn: conn.execute(query("export_count"), (last,)).fetchone()[0])

    async def streams(self) -> list[StreamState]:
        found = await self._run("export streams", lambda conn: conn.execute(query("export_streams")).fetchall())
        return [StreamState(*row) for row in found]

    async def snapshots(self) -> list[Snapshot]:
        found = await self._run("export snapshots", lambda conn: conn.execute(query("export_snapshots")).fetchall())
        return [Snapshot(*row) for row in found]

    async def subscriptions(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        found = await self._run("export subscriptions", lambda conn: conn.execute(query("subscription_list")).fetchall())
        return [(name, json.loads(definition), json.loads(state)) for name, definition, state in found]


def import_job(
    events: Sequence[ImportedEvent], snapshots: Sequence[Snapshot], streams: Sequence[StreamState] = (),
    starts_file: bool = False,
) -> Callable[[sqlite3.Connection], tuple[int, int]]:
    """The writer job of one import batch: (last position after it, events written). What
    needs no store is worked out here, on the caller's thread (`prepare_import`): the writer's
    time is the import's."""
    prepared = prepare_import(events)

    def run(conn: sqlite3.Connection) -> tuple[int, int]:
        head = conn.execute(query("last_position")).fetchone()[0]
        held = held_range(events, head)
        stored = dict(conn.execute(query("import_held"), held).fetchall()) if held else {}
        ids = json.dumps(sorted({*prepared.streams_after(head), *(s.stream_id for s in streams)}))
        versions = {row[0]: row[1] for row in conn.execute(query("append_stream_versions"), (ids,))}  # (state aside)
        plan = plan_import(
            events, head=head, stored=stored, stream_versions=versions, starts_file=starts_file, prepared=prepared
        )
        check_stream_states(streams, versions | plan.stream_versions, head)
        # The source's gaps are kept, and the trigger that takes each insert to the next
        # position is not run per row: plan_import checked the positions (0007).
        (trigger,) = conn.execute(query("import_dense_trigger")).fetchone()
        conn.execute("DROP TRIGGER events_dense")
        try:
            for i in range(0, len(plan.rows), _ROWS_PER_INSERT):
                chunk = plan.rows[i : i + _ROWS_PER_INSERT]
                conn.execute(
                    rows("append_insert_events", len(chunk), "(?, ?, ?, ?, ?, ?, ?)"),
                    list(itertools.chain.from_iterable(chunk)),
                )
        except sqlite3.IntegrityError:
            raise _duplicate_id(conn, plan.rows, head) from None  # (the job's savepoint undoes it all)
        conn.execute(trigger)
        for i in range(0, len(plan.tag_rows), _ROWS_PER_INSERT):
            chunk = plan.tag_rows[i : i + _ROWS_PER_INSERT]
            conn.execute(rows("append_insert_tags", len(chunk), "(?, ?)"), list(itertools.chain.from_iterable(chunk)))
        # A stream written has its last event in the batch written (positions increase).
        created = {stream_id: last[2] for stream_id, last in prepared.lasts.items()}
        versions_written = list(plan.stream_versions.items())
        for i in range(0, len(versions_written), _ROWS_PER_INSERT):
            chunk = versions_written[i : i + _ROWS_PER_INSERT]
            conn.execute(
                rows("append_streams", len(chunk), "(?, ?, ?)"),
                [v for stream_id, version in chunk for v in (stream_id, version, created[stream_id])],
            )
        _write_states(conn, streams)
        conn.executemany(
            query("snapshot_record"),
            [
                (s.source_uuid, s.stream_uuid, s.source_version, s.source_type, s.data, s.metadata, s.created_epoch)
                for s in snapshots
            ],
        )
        return max(head, plan.last_position), len(plan.rows)

    return run


def _duplicate_id(conn: sqlite3.Connection, planned: Sequence[tuple[Any, ...]], head: int) -> Exception:
    """What an insert of `planned` rows that the unique index refused meets: an event id the
    store holds at another position (plan_import has checked positions and versions)."""
    positions: dict[str, int] = {}
    for row in planned:
        if row[3] in positions:  # twice in the batch itself
            return DuplicateEventIdError("records", row[3])
        positions[row[3]] = row[0]
    # Held elsewhere: at a position other than the batch's (its earlier chunks are in already).
    for event_id, _, _, at in conn.execute(query("append_find_ids"), (json.dumps(list(positions)),)):
        if positions[event_id] != at:
            return DuplicateEventIdError("records", event_id)
    return ImportMismatchError(planned[0][0], head, "the store refused the batch's events (a unique index)")


def _write_states(conn: sqlite3.Connection, states: Sequence[StreamState]) -> None:
    """Each stream's version, deletion state and metadata become the given ones."""
    now = now_epoch_us()
    conn.executemany(query("import_streams"), [(s.stream_id, s.version, now, s.deleted) for s in states if s.version >= 0])
    conn.executemany(
        query("stream_meta_write"),
        [
            (s.stream_id, s.meta_version, s.truncate_before, s.max_count, s.max_age_us, s.custom)
            for s in states
            if s.meta_version >= 0
        ],
    )
