"""Export and import on the PostgreSQL backend.

Owns: `PostgresExportView` — one pooled connection holding one REPEATABLE READ, READ ONLY
transaction for the whole export: its first statement fixes the snapshot, so the head it reads
and every page, snapshot and subscription after it are one consistent view while other nodes
go on appending — and `import_batch`, one import batch in one transaction under the store's
advisory lock (the lock every append takes: see _writer.py for why that keeps positions
in commit order), ending with the same head update and notification as an append, then the
batch's stream states. The head becomes the batch's last position: the source's own head once
the last batch is in, gaps or not.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from gater.errors import StoreNotFoundError

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
from ._db import Database
from ._sql import query
from ._writer import finish

__all__ = ["PostgresExportView", "import_batch"]

_EVENT_COLUMNS = ("store_id", "position", "stream_id", "version", "event_id", "event_type", "created_epoch", "record")
"""The columns an import writes, in the order of store_id then an ImportPlan row."""


class PostgresExportView(ExportView):
    def __init__(self, con: asyncpg.Connection, store_id: str) -> None:
        self._con = con
        self._store_id = store_id
        self.head = -1

    async def open(self) -> None:
        """Reads the head: the transaction's first statement, which fixes its snapshot."""
        row = await self._con.fetchrow(query("append_head"), self._store_id)
        if row is None:
            raise StoreNotFoundError(self._store_id)
        self.head = row["last_position"]

    async def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        found = await self._con.fetch(query("export_records"), self._store_id, start, self.head, limit)
        return [(r[0], r[1]) for r in found]

    async def count(self, last: int) -> int:
        return await self._con.fetchval(query("export_count"), self._store_id, last)

    async def streams(self) -> list[StreamState]:
        found = await self._con.fetch(query("export_streams"), self._store_id)
        return [StreamState(*r) for r in found]

    async def snapshots(self) -> list[Snapshot]:
        found = await self._con.fetch(query("export_snapshots"), self._store_id)
        return [Snapshot(*r) for r in found]

    async def subscriptions(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        found = await self._con.fetch(query("subscription_list"), self._store_id)
        return [(r["name"], json.loads(r["definition"]), json.loads(r["state"])) for r in found]


async def import_batch(
    db: Database, store_id: str, events: Sequence[ImportedEvent], snapshots: Sequence[Snapshot],
    states: Sequence[StreamState] = (), starts_file: bool = False,
) -> tuple[int, int]:
    """(last position after the batch, events written). What needs no store is worked out
    before the store's lock is taken (`prepare_import`): imports hold it back to back."""
    prepared = prepare_import(events)
    async with db.transaction(store_id) as con:
        await con.execute(query("store_lock"), store_id)
        row = await con.fetchrow(query("append_head"), store_id)
        if row is None:
            raise StoreNotFoundError(store_id)
        head = row["last_position"]
        held = held_range(events, head)
        stored = {}
        if held is not None:
            stored = {r["position"]: r["record"] for r in await con.fetch(query("import_held"), store_id, *held)}
        streams = sorted({*prepared.streams_after(head), *(s.stream_id for s in states)})
        rows = await con.fetch(query("append_stream_versions"), store_id, streams) if streams else []
        versions = {row["stream_id"]: row["version"] for row in rows}  # (its lifecycle state aside)
        plan = plan_import(
            events, head=head, stored=stored, stream_versions=versions, starts_file=starts_file, prepared=prepared
        )
        check_stream_states(states, versions | plan.stream_versions, head)
        if plan.rows:
            # Binary COPY: about 21 µs an event against 29 for an INSERT of unnest()ed arrays
            # (in-process, 5,000-event batches; docs/BENCHMARKS.md).
            await con.copy_records_to_table(
                "events", records=[(store_id, *row) for row in plan.rows], columns=_EVENT_COLUMNS
            )
            if plan.tag_rows:
                tags, positions = zip(*plan.tag_rows, strict=True)
                await con.execute(query("append_insert_tags"), store_id, list(tags), list(positions))
            await finish(con, store_id, plan)
        if states:
            await _write_states(con, store_id, states)
        if snapshots:
            await con.executemany(
                query("snapshot_record"),
                [
                    (store_id, s.source_uuid, s.stream_uuid, s.source_version, s.source_type, s.data, s.metadata,
                     s.created_epoch)
                    for s in snapshots
                ],
            )
    return max(head, plan.last_position), len(plan.rows)


async def _write_states(con: asyncpg.Connection, store_id: str, states: Sequence[StreamState]) -> None:
    """Each stream's version, deletion state and metadata become the given ones."""
    with_events = [s for s in states if s.version >= 0]
    if with_events:
        await con.execute(
            query("import_streams"), store_id, [s.stream_id for s in with_events], [s.version for s in with_events],
            [s.deleted for s in with_events],
        )
    metadata = [
        (store_id, s.stream_id, s.meta_version, s.truncate_before, s.max_count, s.max_age_us, s.custom)
        for s in states
        if s.meta_version >= 0
    ]
    if metadata:
        await con.executemany(query("stream_meta_write"), metadata)
