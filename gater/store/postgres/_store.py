"""One store of the PostgreSQL backend: reads, snapshots, status, waiting for positions.

Owns: `PostgresEventStore`. Appends go through the store's `StoreWriter` (group commit),
started on this node by its first append.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg

from gater.config import Limits
from gater.errors import (
    LeaseLostError,
    SnapshotNotFoundError,
    StoreNotFoundError,
    SubscriptionNotFoundError,
)

from ..._wire import read_response
from .._append import streams_request, streams_results
from .._lifecycle import ScavengeStatus, StreamMetadata, keep_visible
from .._pages import page_size, read_size
from .._query import TimeBisection, positions_sql, query_read
from .._records import now_epoch_us
from .._transfer import ExportView, ImportedEvent, StreamState
from ..base import (
    ALL_STREAM,
    AppendCondition,
    AppendResult,
    EncodedBatch,
    EventStore,
    Lease,
    NewEvent,
    Query,
    RecordedEvent,
    Snapshot,
    StoreConfig,
    StoreStatus,
    StreamAppend,
)
from . import _lifecycle as lifecycle
from . import _sql
from ._db import Database
from ._sql import query
from ._transfer import PostgresExportView, import_batch
from ._watch import PositionWatch
from ._writer import StoreWriter

__all__ = ["PostgresEventStore"]

_MAX_BIGINT = 2**63 - 1


class PostgresEventStore(EventStore):
    def __init__(self, store_id: str, *, db: Database, watch: PositionWatch, writer: Callable[[], StoreWriter],
                 writing: Callable[[], bool], limits: Limits, describe: Callable[[], tuple[str, str]]) -> None:
        self.store_id = store_id
        self._db = db
        self._watch = watch
        self._writer = writer
        """The store's writer on this node (started by the first append)."""
        self._writing = writing
        """Whether this node runs a writer for the store."""
        self._limits = limits
        self._describe = describe

    # -- helpers ----------------------------------------------------------------------------

    async def _head(self) -> asyncpg.Record:
        row = await self._db.fetchrow("store_get", self.store_id, store_id=self.store_id)
        if row is None:
            raise StoreNotFoundError(self.store_id)
        return row

    async def _check_exists_if(self, empty: bool) -> None:
        """An empty answer may mean the store is gone: then say so (one query, only then)."""
        if empty:
            await self._head()

    # -- events -----------------------------------------------------------------------------

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected: int, condition: AppendCondition | None = None
    ) -> AppendResult:
        return await self._writer().append(stream_id, events, expected, condition)

    async def append_streams(
        self,
        appends: Sequence[StreamAppend],
        checks: Sequence[tuple[str, int]] = (),
        condition: AppendCondition | None = None,
    ) -> list[AppendResult]:
        return streams_results(await self._writer().submit(streams_request(appends, checks, condition)))

    async def _visible(self, name: str, before: tuple[Any, ...], start: int, limit: int, backward: bool,
                       key_at: int) -> list[RecordedEvent]:
        """A page of the events a read statement finds from `start` that are still in view
        (store/_lifecycle.py): hidden rows are passed over, page after page, so the page is
        short only where there is nothing more to read."""
        out: list[RecordedEvent] = []
        key = start
        while True:
            rows = await self._db.fetch(name, self.store_id, *before, key, limit, store_id=self.store_id)
            if not out and not rows:
                await self._check_exists_if(True)
            out.extend(keep_visible(rows, now_epoch_us()))
            if len(out) >= limit or len(rows) < limit:
                return out[:limit]
            key = rows[-1][key_at] - 1 if backward else rows[-1][key_at] + 1
            if key < 0:
                return out

    async def read_stream(
        self, stream_id: str, start: int | None, limit: int, backward: bool = False
    ) -> list[RecordedEvent]:
        if stream_id == ALL_STREAM:
            return await self.read_all(start, limit, backward)
        limit = read_size(limit, self._limits)
        if backward:
            return await self._visible(
                "read_stream_backward", (stream_id,), _MAX_BIGINT if start is None else start, limit, True, 2
            )
        return await self._visible("read_stream_forward", (stream_id,), 0 if start is None else start, limit, False, 2)

    async def read_all(self, start: int | None, limit: int, backward: bool = False) -> list[RecordedEvent]:
        limit = read_size(limit, self._limits)
        if backward:
            return await self._visible("read_all_backward", (), _MAX_BIGINT if start is None else start, limit, True, 0)
        return await self._visible("read_all_forward", (), 0 if start is None else start, limit, False, 0)

    async def read_query(
        self,
        query: Query,
        start: int | None,
        limit: int,
        backward: bool = False,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[RecordedEvent], int]:
        # Positions are committed in order (see _writer.py): every event up to the head is
        # visible to the statements below.
        read = await query_read(query, start, limit, backward, head, stream_prefix, self._limits, self.last_position)
        if read.bounds is None:
            return [], read.head
        (low, high), limit = read.bounds, read.limit
        out: list[RecordedEvent] = []
        while low <= high:
            positions, params = positions_sql(
                read.query, dialect="postgres", low=low, high=high, limit=limit, backward=backward,
                store_id=self.store_id, prefix=read.prefix,
            )  # its first parameter ($1) is the store id, which read_query.sql uses too
            sql = _sql.query("read_query").format(positions=positions, order="DESC" if backward else "ASC")
            rows = await self._db.fetch_sql(sql, *params, store_id=self.store_id)
            out.extend(keep_visible(rows, now_epoch_us()))
            if len(out) >= limit or len(rows) < limit:
                break
            if backward:
                high = rows[-1][0] - 1
            else:
                low = rows[-1][0] + 1
        return out[:limit], read.head

    async def read_query_batches(
        self,
        query: Query,
        start: int | None,
        limit: int,
        batch: int,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[EncodedBatch], int]:
        # Three columns an event instead of eleven, and no join with the rules unless some
        # stream has any: less for PostgreSQL to find and send, and for asyncpg to decode.
        read = await query_read(query, start, limit, False, head, stream_prefix, self._limits, self.last_position)
        if read.bounds is None:
            return [], read.head
        batch = max(1, min(batch, read.limit))
        positions, params = positions_sql(
            read.query, dialect="postgres", low=read.bounds[0], high=read.bounds[1], limit=read.limit, backward=False,
            store_id=self.store_id, prefix=read.prefix,
        )  # its first parameter ($1) is the store id, which the statement uses too
        sql = _sql.query("read_query_batches").format(positions=positions)
        rows = await self._db.fetch_sql(sql, *params, store_id=self.store_id)
        if rows and rows[0][0]:
            # Some events may be hidden by their stream's rules: read with them applied.
            return await super().read_query_batches(query, start, limit, batch, read.head, stream_prefix)
        return [
            EncodedBatch(len(part), part[-1][1], part[-1][2], read_response([r[3] for r in part]))
            for part in (rows[i : i + batch] for i in range(0, len(rows), batch))
        ], read.head

    async def position_at(self, epoch_us: int) -> int:
        bisection = TimeBisection(epoch_us, await self.last_position())
        while (probe := bisection.probe()) is not None:
            rows = await self._db.fetch("first_event_at", self.store_id, probe, store_id=self.store_id)
            bisection.found((rows[0]["position"], rows[0]["created_epoch"]) if rows else None)
        return bisection.start

    async def stream_version(self, stream_id: str) -> int:
        if stream_id == ALL_STREAM:
            return await self.last_position()
        version = await self._db.fetchval("stream_version", self.store_id, stream_id, store_id=self.store_id)
        await self._check_exists_if(version is None)
        return -1 if version is None else version

    async def last_position(self) -> int:
        position = (await self._head())["last_position"]
        self._watch.advance(self.store_id, position)
        return position

    # -- lifecycle (one short transaction each: _lifecycle.py) ------------------------------

    async def delete_stream(self, stream_id: str, expected: int, tombstone: bool) -> int:
        return await lifecycle.delete_stream(self._db, self.store_id, stream_id, expected, tombstone)

    async def stream_metadata(self, stream_id: str) -> StreamMetadata:
        return await lifecycle.metadata(self._db, self.store_id, stream_id)

    async def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata, expected: int) -> int:
        return await lifecycle.set_metadata(self._db, self.store_id, stream_id, metadata, expected)

    async def scavenge(
        self, restart: bool = False, progress: Callable[[ScavengeStatus], None] | None = None
    ) -> ScavengeStatus:
        status = await lifecycle.scavenge_step(self._db, self.store_id, restart)
        while status.running:  # one short transaction per step: appenders get the lock between
            if progress is not None:
                progress(status)
            status = await lifecycle.scavenge_step(self._db, self.store_id, False)
        return status

    async def scavenge_status(self) -> ScavengeStatus:
        return await lifecycle.scavenge_status(self._db, self.store_id)

    async def redact(self, stream_id: str, version: int) -> None:
        await lifecycle.redact(self._db, self.store_id, stream_id, version)

    async def list_streams(self, after: str, limit: int) -> list[tuple[str, int]]:
        rows = await self._db.fetch(
            "list_streams", self.store_id, after, page_size(limit, self._limits), store_id=self.store_id
        )
        await self._check_exists_if(not rows)
        return [(r["stream_id"], r["version"]) for r in rows]

    # -- snapshots --------------------------------------------------------------------------

    async def record_snapshot(self, snapshot: Snapshot) -> Snapshot:
        created = now_epoch_us()
        async with self._db.connection(self.store_id) as con:
            await con.execute(
                query("snapshot_record"), self.store_id, snapshot.source_uuid, snapshot.stream_uuid,
                snapshot.source_version, snapshot.source_type, snapshot.data, snapshot.metadata, created,
            )
        return Snapshot(
            source_uuid=snapshot.source_uuid,
            stream_uuid=snapshot.stream_uuid,
            source_version=snapshot.source_version,
            source_type=snapshot.source_type,
            data=snapshot.data,
            metadata=snapshot.metadata,
            created_epoch=created,
        )

    async def read_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> Snapshot:
        if version is None:
            row = await self._db.fetchrow(
                "snapshot_read_latest", self.store_id, source_uuid, stream_uuid, store_id=self.store_id
            )
        else:
            row = await self._db.fetchrow(
                "snapshot_read", self.store_id, source_uuid, stream_uuid, version, store_id=self.store_id
            )
        if row is None:
            await self._head()
            raise SnapshotNotFoundError(source_uuid, stream_uuid, version)
        return Snapshot(
            source_uuid=row["source_uuid"],
            stream_uuid=row["stream_uuid"],
            source_version=row["source_version"],
            source_type=row["source_type"],
            data=row["data"],
            metadata=row["metadata"],
            created_epoch=row["created_epoch"],
        )

    async def delete_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> int:
        async with self._db.connection(self.store_id) as con:
            if version is None:
                status = await con.execute(query("snapshot_delete_all"), self.store_id, source_uuid, stream_uuid)
            else:
                status = await con.execute(
                    query("snapshot_delete"), self.store_id, source_uuid, stream_uuid, version
                )
        deleted = int(status.split()[-1])  # "DELETE <n>"
        await self._check_exists_if(deleted == 0)
        return deleted

    async def list_snapshots(
        self,
        source_uuid: str | None,
        stream_uuid: str | None,
        after: tuple[str, str, int] | None,
        limit: int,
    ) -> list[Snapshot]:
        after_source, after_stream, after_version = after if after is not None else ("", "", -1)
        rows = await self._db.fetch(
            "snapshot_list", self.store_id, source_uuid, stream_uuid,
            after_source, after_stream, after_version, page_size(limit, self._limits), store_id=self.store_id,
        )
        await self._check_exists_if(not rows)
        return [
            Snapshot(
                source_uuid=r["source_uuid"],
                stream_uuid=r["stream_uuid"],
                source_version=r["source_version"],
                source_type=r["source_type"],
                created_epoch=r["created_epoch"],
            )
            for r in rows
        ]

    # -- persistent subscriptions ---------------------------------------------------------

    async def save_subscription(self, name: str, definition: dict[str, Any], state: dict[str, Any]) -> bool:
        async with self._db.connection(self.store_id) as con:
            created = await con.fetchval(
                query("subscription_save"), self.store_id, name, json.dumps(definition), json.dumps(state),
                state.get("checkpoint", -1), now_epoch_us(),
            )
        return bool(created)

    async def load_subscriptions(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        rows = await self._db.fetch("subscription_list", self.store_id, store_id=self.store_id)
        await self._check_exists_if(not rows)
        return {r["name"]: (json.loads(r["definition"]), json.loads(r["state"])) for r in rows}

    async def save_subscription_state(self, name: str, state: dict[str, Any], fence: int | None = None) -> None:
        async with self._db.connection(self.store_id) as con:
            written = await con.fetchval(
                query("subscription_state"), self.store_id, name, json.dumps(state), state["checkpoint"],
                now_epoch_us(), fence,
            )
            if written is None:  # refused: an older checkpoint, a lost lease, or nothing there
                current = await con.fetchval(query("subscription_fence"), self.store_id, name)
                if current is None:
                    await self._head()
                    if fence is not None:
                        raise SubscriptionNotFoundError(name)
                elif fence is not None and current != fence:
                    raise LeaseLostError(f"subscription {name!r} is dispatched by another node now")

    async def remove_subscription(self, name: str) -> None:
        async with self._db.connection(self.store_id) as con:
            status = await con.execute(query("subscription_remove"), self.store_id, name)
        if status.endswith(" 0"):
            await self._head()
            raise SubscriptionNotFoundError(name)

    async def acquire_lease(self, name: str, node_id: str, address: str, ttl_s: float) -> Lease:
        async with self._db.connection(self.store_id) as con:
            row = await con.fetchrow(query("subscription_lease"), self.store_id, name, node_id, address, float(ttl_s))
        if row is None:
            await self._head()
            raise SubscriptionNotFoundError(name)
        return Lease(row["held"], row["fence"], row["owner_node"] or "", row["owner_address"] or "")

    async def release_lease(self, name: str, node_id: str, fence: int) -> None:
        async with self._db.connection(self.store_id) as con:
            status = await con.execute(query("subscription_release"), self.store_id, name, node_id, fence)
        await self._check_exists_if(status.endswith(" 0"))

    # -- export and import (postgres/_transfer.py) ------------------------------------------

    @contextlib.asynccontextmanager
    async def export_view(self) -> AsyncIterator[ExportView]:
        async with (
            self._db.connection(self.store_id) as con,
            con.transaction(isolation="repeatable_read", readonly=True),
        ):
            view = PostgresExportView(con, self.store_id)
            await view.open()
            yield view

    async def import_events(
        self, events: Sequence[ImportedEvent], snapshots: Sequence[Snapshot] = (), streams: Sequence[StreamState] = (),
        *, starts_file: bool = False,
    ) -> tuple[int, int]:
        last, written = await import_batch(self._db, self.store_id, events, snapshots, streams, starts_file)
        if written:
            self._watch.advance(self.store_id, last)
        return last, written

    # -- store ------------------------------------------------------------------------------

    async def status(self) -> StoreStatus:
        head = await self._head()
        snapshots = await self._db.fetchrow("snapshot_stats", self.store_id, store_id=self.store_id)
        return StoreStatus(
            store_id=self.store_id,
            stream_count=head["stream_count"],
            event_count=head["last_position"] + 1,  # positions are dense from 0
            last_position=head["last_position"],
            snapshot_count=snapshots["snapshot_count"],
            subscription_count=await self._db.fetchval("subscription_count", self.store_id, store_id=self.store_id),
            size_bytes=head["event_bytes"] + snapshots["snapshot_bytes"],
            open=self._writing(),  # a task; no thread and no file of its own
        )

    async def config(self) -> StoreConfig:
        head = await self._head()
        location, durability = self._describe()
        return StoreConfig(
            store_id=self.store_id,
            backend="postgres",
            location=location,
            durability=durability,
            created_epoch=head["created_epoch"],
        )

    def known_position(self) -> int:
        return self._watch.known(self.store_id)

    async def wait_for_position(self, after: int, timeout_s: float) -> int:
        last = await self.last_position()
        if last > after or timeout_s <= 0:
            return last
        future = self._watch.watch(self.store_id, after)
        # Not asyncio.wait_for: cancelled after the store's removal failed the future, it
        # returns the future's outcome, so a cancelled caller's task would end with a
        # StoreNotFoundError nobody reads ("Task exception was never retrieved"). A cancelled
        # wait ends cancelled, and the failed future is marked read.
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            return self._watch.known(self.store_id)
        finally:
            self._watch.unwatch(self.store_id, future)
            if future.done() and not future.cancelled():
                future.exception()
