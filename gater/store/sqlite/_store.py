"""One store of the SQLite backend: its calls, and what it holds while it is in use.

Owns: `SqliteStore` — reads (on the backend's shared reader threads, with this store's own
connections), writes (through its `Writer` thread), waiting for positions, status, and the
lifecycle of what it holds. Migrations, SQL and errors live in `_db`, `_sql` and `_errors`; the
query reads in `_queries`.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

What a store holds, and when
----------------------------
Nothing while it is not in use: no thread, no open file. The first write starts its writer
thread (which opens the writer connection), the first read opens a read-only connection; both
stay while calls keep coming. The backend's janitor calls `release()` once the store has been
idle for `idle_close_s` (or to keep at most `max_open_stores` open): the writer is stopped after
it answered everything it took and idle connections are closed. The next call opens them again.

Why a reopen cannot lose or double a commit: a new writer is made only when there is no
current one, and `release()` retires a writer only when it has no job pending — every job it
took was committed (or failed) and answered on the event loop, which is also where the last
position lives. So the old thread only has its connection left to close, and the new one reads
the last position from the file, where the old one's commits already are. Everything that
decides this (`_writer`, `pending`, `_closed`) is touched on the event loop only.

A store removed or closed (`close()`) refuses every call with StoreNotFoundError, and wakes
whoever waits in `wait_for_position` with it, so no caller spins on a store that is gone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gater.config import Limits
from gater.errors import SnapshotNotFoundError, StoreNotFoundError, SubscriptionNotFoundError

from .._append import AppendRequest, streams_request, streams_results
from .._lifecycle import keep_visible
from .._pages import page_size, read_size
from .._records import now_epoch_us
from .._transfer import ExportView, ImportedEvent, StreamState
from ..base import (
    ALL_STREAM,
    AppendCondition,
    AppendResult,
    EventStore,
    Lease,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreConfig,
    StoreStatus,
    StreamAppend,
)
from ._db import Readers, open_files, run_once
from ._errors import translate
from ._queries import QueryReads
from ._sql import query
from ._transfer import SqliteExportView, import_job
from ._writer import Append, Job, Settled, Writer

if TYPE_CHECKING:
    from gater.metrics import CommitObserver

__all__ = ["SqliteStore"]

T = TypeVar("T")

_MAX_POSITION = 1 << 62


class SqliteStore(QueryReads, EventStore):
    """One store in one SQLite file. Made by SqliteBackend; `close()` ends it for good."""

    def __init__(
        self,
        store_id: str,
        path: Path,
        *,
        data_dir: Path,
        synchronous: str,
        limits: Limits,
        reader_threads: ThreadPoolExecutor,
        created_epoch: int,
        last_position: int,
        admit: Callable[[SqliteStore], Awaitable[None]],
        commits: CommitObserver | None = None,
    ) -> None:
        self.store_id = store_id
        self.path = path
        self.created_epoch = created_epoch
        self._data_dir = data_dir
        self._synchronous = synchronous
        self._limits = limits
        self._reader_threads = reader_threads
        self._admit = admit
        self._commits = commits
        self._loop = asyncio.get_running_loop()
        self._readers = Readers(path, synchronous, store_id)
        self._writer: Writer | None = None
        self._retiring: set[Writer] = set()
        """Writers stopped by release() whose threads may not have ended yet."""
        self._last_position = last_position
        """What the event loop has seen committed."""
        self._rules: bool | None = None  # any stream metadata? (None: not asked yet; _rules_exist)
        self._utf8_text: bool | None = None  # None: not asked yet (_utf8)
        self._commit_event = asyncio.Event()
        self._closed = False
        self._reads = 0
        """Reads submitted to the reader threads and not finished there yet (event loop side:
        counted until the thread is done, even when the caller stopped waiting)."""
        self.uses = 0
        """Counts calls that used the store's resources (the janitor compares it across a
        release, to tell whether the store was used meanwhile)."""
        self._last_used = time.monotonic()

    # -- what the store holds (event loop only) ------------------------------------------------

    def _require_open(self) -> None:
        if self._closed:
            raise StoreNotFoundError(self.store_id)

    @property
    def closed(self) -> bool:
        return self._closed

    async def _use(self) -> None:
        """Before a call opens or uses a thread or a connection: the backend admits the store
        among the open ones (closing an idle one first when too many are open). Nothing
        awaits between this and the call taking its writer job or read slot, so the janitor
        never finds the store idle in between."""
        self._require_open()
        await self._admit(self)
        self._require_open()
        self.uses += 1
        self._last_used = time.monotonic()

    def holds(self) -> bool:
        """True while the store has a writer thread or an open connection."""
        return self._threads() > 0 or self._readers.count > 0

    def _threads(self) -> int:
        return (self._writer is not None) + sum(w.alive for w in self._retiring)

    def idle_s(self, now: float) -> float | None:
        """Seconds since the store was last used, or None while a call is in progress."""
        if (self._writer is not None and self._writer.pending) or self._reads:
            return None
        return now - self._last_used

    async def release(self) -> None:
        """Stops the writer (if it has nothing pending) and closes idle connections; the store
        opens them again at its next call."""
        writer = self._writer
        if writer is not None:
            if writer.pending:
                return
            self._writer = None
            self._retiring.add(writer)
            writer.stop()
        try:
            await asyncio.to_thread(self._release_blocking, writer)
        finally:
            if writer is not None:
                self._retiring.discard(writer)

    def _release_blocking(self, writer: Writer | None) -> None:
        if writer is not None:
            writer.join()
        self._readers.close_idle()

    async def close(self) -> None:
        """For good (the store is removed, or the backend stops): refuses new calls, wakes the
        waiters with StoreNotFoundError, lets the writer finish what it took, closes every
        connection (after reads in progress) — so the files can be removed afterwards."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        writer, self._writer = self._writer, None
        writers = list(self._retiring)
        if writer is not None:
            writer.stop()
            writers.append(writer)
        if writers or self._reads or self._readers.count:
            await asyncio.to_thread(self._close_blocking, writers)
        else:
            self._readers.close()  # nothing open and no read in flight: nothing to wait for

    def _close_blocking(self, writers: list[Writer]) -> None:
        for writer in writers:
            writer.join()
        self._readers.close()

    def _wake(self) -> None:
        event, self._commit_event = self._commit_event, asyncio.Event()
        event.set()

    # -- writes -------------------------------------------------------------------------------

    def _translate(self, e: BaseException, what: str) -> Exception:
        return translate(e, what, self._data_dir)

    async def _write(self, job: Append | Job) -> Any:
        await self._use()
        writer = self._writer
        if writer is None:
            writer = self._writer = Writer(
                self.store_id,
                self.path,
                self._synchronous,
                loop=self._loop,
                translate=self._translate,
                on_commit=self._committed,
                on_exit=self._writer_ended,
                observe=self._commits.committed if self._commits is not None else None,
            )
            writer.start()
        writer.submit(job)
        return await job.future

    def _committed(self, writer: Writer, settled: Settled, last_position: int) -> None:
        """On the event loop: publish the new last position, then answer the callers."""
        writer.pending -= len(settled)
        self._last_used = time.monotonic()
        if last_position > self._last_position:
            self._last_position = last_position
            self._wake()
        _settle(settled)

    def _writer_ended(self, writer: Writer, error: Exception | None) -> None:
        """On the event loop: a writer thread ended (stopped, or it could not open the file).
        Jobs it never took are answered here."""
        if self._writer is writer:
            self._writer = None
        left = writer.leftovers()
        writer.pending -= len(left)
        failure = error if error is not None else StoreNotFoundError(self.store_id)
        _settle([(job.future, failure) for job in left])

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected: int, condition: AppendCondition | None = None
    ) -> AppendResult:
        future: asyncio.Future[AppendResult] = self._loop.create_future()
        return await self._write(Append(AppendRequest(stream_id, tuple(events), expected, condition), future))

    async def append_streams(
        self,
        appends: Sequence[StreamAppend],
        checks: Sequence[tuple[str, int]] = (),
        condition: AppendCondition | None = None,
    ) -> list[AppendResult]:
        future: asyncio.Future[AppendResult] = self._loop.create_future()
        return streams_results(await self._write(Append(streams_request(appends, checks, condition), future)))

    async def _job(self, run: Callable[[sqlite3.Connection], T], moves_head: bool = False) -> T:
        return await self._write(Job(run, self._loop.create_future(), moves_head))

    # -- export and import (sqlite/_transfer.py) ------------------------------------------------

    @contextlib.asynccontextmanager
    async def export_view(self) -> AsyncIterator[ExportView]:
        await self._use()
        view = SqliteExportView(self.path, self._synchronous, self._translate)
        try:
            await view.open()
            yield view
        finally:
            await view.close()

    async def import_events(
        self, events: Sequence[ImportedEvent], snapshots: Sequence[Snapshot] = (), streams: Sequence[StreamState] = (),
        *, starts_file: bool = False,
    ) -> tuple[int, int]:
        if streams:
            self._rules = True  # reads join the rules from now on (see _rules_exist)
        return await self._job(import_job(events, snapshots, streams, starts_file), moves_head=True)

    # -- reads --------------------------------------------------------------------------------

    async def _read(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._use()

        def work() -> T:
            try:
                return self._readers.run(fn)
            except (sqlite3.Error, OSError) as e:
                raise self._translate(e, what) from e

        self._reads += 1
        done = self._reader_threads.submit(work)
        done.add_done_callback(self._read_ended)
        return await asyncio.wrap_future(done, loop=self._loop)

    def _read_ended(self, _: concurrent.futures.Future[Any]) -> None:
        # In the reader thread (or on the loop, when cancelled before it started).
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody counts any more
            self._loop.call_soon_threadsafe(self._count_read_ended)

    def _count_read_ended(self) -> None:
        self._reads -= 1
        self._last_used = time.monotonic()

    async def _visible(self, name: str, before: tuple[Any, ...], start: int, limit: int, backward: bool,
                       key_at: int) -> list[RecordedEvent]:
        """A page of what a read finds from `start` that is in view (store/_lifecycle.py):
        hidden rows are passed over, so a page is short only at the end of what there is."""
        if not await self._rules_exist():
            plain = query(name + "_plain")
            return await self._read(
                "read events", lambda conn: [RecordedEvent(*row) for row in conn.execute(plain, (*before, start, limit))]
            )
        sql = query(name)

        def run(conn: sqlite3.Connection) -> list[RecordedEvent]:
            out: list[RecordedEvent] = []
            key = start
            while True:
                rows = conn.execute(sql, (*before, key, limit)).fetchall()
                out.extend(keep_visible(rows, now_epoch_us()))
                if len(out) >= limit or len(rows) < limit:
                    return out[:limit]
                key = rows[-1][key_at] - 1 if backward else rows[-1][key_at] + 1
                if key < 0:
                    return out

        return await self._read("read events", run)

    async def read_stream(
        self, stream_id: str, start: int | None, limit: int, backward: bool = False
    ) -> list[RecordedEvent]:
        if stream_id == ALL_STREAM:
            return await self.read_all(start, limit, backward)
        limit = read_size(limit, self._limits)
        if backward:
            return await self._visible("read_stream_backward", (stream_id,), _MAX_POSITION if start is None else start, limit, True, 2)
        return await self._visible("read_stream_forward", (stream_id,), 0 if start is None else start, limit, False, 2)

    async def read_all(self, start: int | None, limit: int, backward: bool = False) -> list[RecordedEvent]:
        limit = read_size(limit, self._limits)
        if backward:
            return await self._visible("read_all_backward", (), _MAX_POSITION if start is None else start, limit, True, 0)
        return await self._visible("read_all_forward", (), 0 if start is None else start, limit, False, 0)

    async def stream_version(self, stream_id: str) -> int:
        if stream_id == ALL_STREAM:
            return await self.last_position()

        def version(conn: sqlite3.Connection) -> int:
            row = conn.execute(query("stream_version"), (stream_id,)).fetchone()
            return -1 if row is None else row[0]

        return await self._read("read a stream version", version)

    async def last_position(self) -> int:
        self._require_open()
        return self._last_position

    async def list_streams(self, after: str, limit: int) -> list[tuple[str, int]]:
        args = (after, page_size(limit, self._limits))
        return await self._read("list streams", lambda conn: conn.execute(query("list_streams"), args).fetchall())

    def known_position(self) -> int:
        return self._last_position

    async def wait_for_position(self, after: int, timeout_s: float) -> int:
        self._require_open()
        if self._last_position > after or timeout_s <= 0:
            return self._last_position
        try:
            async with asyncio.timeout(timeout_s):
                while self._last_position <= after:
                    await self._commit_event.wait()
                    self._require_open()
        except TimeoutError:
            self._require_open()
        return self._last_position

    # -- snapshots ----------------------------------------------------------------------------

    async def record_snapshot(self, snapshot: Snapshot) -> Snapshot:
        def run(conn: sqlite3.Connection) -> Snapshot:
            created = now_epoch_us()
            conn.execute(
                query("snapshot_record"),
                (
                    snapshot.source_uuid, snapshot.stream_uuid, snapshot.source_version,
                    snapshot.source_type, snapshot.data, snapshot.metadata, created,
                ),
            )
            return Snapshot(
                snapshot.source_uuid, snapshot.stream_uuid, snapshot.source_version,
                snapshot.source_type, snapshot.data, snapshot.metadata, created,
            )

        return await self._job(run)

    async def read_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> Snapshot:
        if version is None:
            sql, args = query("snapshot_read_latest"), (source_uuid, stream_uuid)
        else:
            sql, args = query("snapshot_read"), (source_uuid, stream_uuid, version)
        row = await self._read("read a snapshot", lambda conn: conn.execute(sql, args).fetchone())
        if row is None:
            raise SnapshotNotFoundError(source_uuid, stream_uuid, version)
        return Snapshot(*row)

    async def delete_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> int:
        if version is None:
            sql, args = query("snapshot_delete_all"), (source_uuid, stream_uuid)
        else:
            sql, args = query("snapshot_delete"), (source_uuid, stream_uuid, version)
        return await self._job(lambda conn: conn.execute(sql, args).rowcount)

    async def list_snapshots(
        self,
        source_uuid: str | None,
        stream_uuid: str | None,
        after: tuple[str, str, int] | None,
        limit: int,
    ) -> list[Snapshot]:
        after_key = after if after is not None else ("", "", -1)
        args = (*after_key, source_uuid or None, stream_uuid or None, page_size(limit, self._limits))
        rows = await self._read("list snapshots", lambda conn: conn.execute(query("snapshot_list"), args).fetchall())
        return [Snapshot(src, stream, version, stype, created_epoch=created) for src, stream, version, stype, created in rows]

    # -- persistent subscriptions -------------------------------------------------------------

    async def save_subscription(self, name: str, definition: dict[str, Any], state: dict[str, Any]) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = now_epoch_us()
            if conn.execute(query("subscription_update"), (json.dumps(definition), now, name)).rowcount:
                return False
            conn.execute(
                query("subscription_insert"),
                (name, json.dumps(definition), json.dumps(state), state.get("checkpoint", -1), now, now),
            )
            return True

        return await self._job(run)

    async def load_subscriptions(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        rows = await self._read(
            "load subscriptions", lambda conn: conn.execute(query("subscription_list")).fetchall()
        )
        return {name: (json.loads(definition), json.loads(state)) for name, definition, state in rows}

    async def save_subscription_state(self, name: str, state: dict[str, Any], fence: int | None = None) -> None:
        # One process serves a SQLite store: every lease is granted, so any fence is current.
        def run(conn: sqlite3.Connection) -> None:
            args = (json.dumps(state), state["checkpoint"], now_epoch_us(), name, state["checkpoint"])
            if not conn.execute(query("subscription_state"), args).rowcount and fence is not None:
                if conn.execute(query("subscription_exists"), (name,)).fetchone() is None:
                    raise SubscriptionNotFoundError(name)

        await self._job(run)

    async def remove_subscription(self, name: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            if not conn.execute(query("subscription_remove"), (name,)).rowcount:
                raise SubscriptionNotFoundError(name)

        await self._job(run)

    async def acquire_lease(self, name: str, node_id: str, address: str, ttl_s: float) -> Lease:
        """Always granted (one process serves the store), once the subscription exists."""
        found = await self._read(
            "read a subscription", lambda conn: conn.execute(query("subscription_exists"), (name,)).fetchone()
        )
        if found is None:
            raise SubscriptionNotFoundError(name)
        return Lease(held=True, fence=0, owner_node=node_id, owner_address=address)

    async def release_lease(self, name: str, node_id: str, fence: int) -> None:
        """Nothing to give up: another caller is granted the lease anyway."""
        self._require_open()

    # -- the store ----------------------------------------------------------------------------

    async def status(self) -> StoreStatus:
        """Counts and sizes, and what the store held when the call came. The counts are read
        on a connection of their own, closed after: asking does not keep a store open."""
        self._require_open()
        held = self.holds()
        threads = self._threads()

        def work() -> tuple[int, tuple[int, int, int], int]:
            files = open_files(self.path) if held else 0
            counts = run_once(self.path, self._synchronous, lambda conn: conn.execute(query("status_counts")).fetchone())
            size = sum(
                p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()
            )
            return files, counts, size

        try:
            files, (streams, snapshots, subscriptions), size = await asyncio.to_thread(work)
        except (sqlite3.Error, OSError) as e:
            self._require_open()  # removed meanwhile: say so rather than why the file was gone
            raise self._translate(e, "count") from e
        return StoreStatus(
            store_id=self.store_id,
            stream_count=streams,
            event_count=self._last_position + 1,
            last_position=self._last_position,
            snapshot_count=snapshots,
            subscription_count=subscriptions,
            size_bytes=size,
            open=held,
            open_files=files,
            threads=threads,
        )

    async def config(self) -> StoreConfig:
        self._require_open()
        return StoreConfig(self.store_id, "sqlite", str(self.path), self._synchronous, self.created_epoch)


def _settle(results: Settled) -> None:
    for future, result in results:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
