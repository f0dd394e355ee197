"""The SQLite backend: one database file per store under the data directory.

Owns: `SqliteBackend` (the store registry, a lock on the data directory, the cluster id)
and `SqliteStore` (one writer thread that group-commits, a small pool of reader threads).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Threads and why:
- Each store has ONE writer thread with its own connection. Appends and snapshot writes are
  queued to it; it drains everything queued, runs it in one transaction (each job inside its
  own SAVEPOINT, so one failing append does not fail the others) and commits once: one fsync
  for many appends (group commit). Being the only writer, it assigns global positions, which
  are therefore dense and in commit order.
- Reads run on a shared pool of reader threads (WAL lets them read while the writer writes),
  never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import Limits
from ..errors import (
    DuplicateEventIdError,
    GaterError,
    SnapshotNotFoundError,
    StorageUnavailableError,
    StoreAlreadyExistsError,
    StoreNotFoundError,
    SubscriptionNotFoundError,
    WrongExpectedVersionError,
)
from ._records import created_tail, encode_record, now_epoch_us
from .base import (
    ALL_STREAM,
    EXPECT_ANY,
    EXPECT_STREAM_EXISTS,
    AppendResult,
    EventStore,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StorageBackend,
    StoreConfig,
    StoreInfo,
    StoreStatus,
    describe_expected,
)

__all__ = ["SqliteBackend", "SqliteStore"]

log = logging.getLogger(__name__)

_SUFFIX = ".sqlite"
_MAX_JOBS_PER_COMMIT = 2000
_MAX_EVENTS_PER_COMMIT = 50_000
_READER_THREADS = 4


def _migrations() -> list[str]:
    folder = resources.files("gater.store") / "sql" / "sqlite"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(folder / name).read_text(encoding="utf-8") for name in names]


def _translate(e: sqlite3.Error, what: str) -> GaterError:
    """The one place where sqlite3's errors become gater's."""
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return StorageUnavailableError(f"SQLite busy while trying to {what}; retry")
    if isinstance(e, sqlite3.OperationalError | sqlite3.DatabaseError):
        return StorageUnavailableError(f"SQLite failed to {what}: {e}")
    return GaterError(f"SQLite failed to {what}")


def _connect(path: Path, synchronous: str, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    # The writer keeps index pages of recent events hot; readers mostly stream fresh pages.
    conn.execute(f"PRAGMA cache_size={-8192 if readonly else -32768}")  # KiB: 8 MiB / 32 MiB
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


# ---------------------------------------------------------------------------------------------
# Writer jobs. Each runs in the writer thread inside a SAVEPOINT and returns its result or
# raises a GaterError that becomes that job's answer alone.


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection, _WriterState], Any]
    future: asyncio.Future[Any]
    events: int = 1


@dataclass(slots=True)
class _WriterState:
    last_position: int
    pending_position: int = field(init=False)

    def __post_init__(self) -> None:
        self.pending_position = self.last_position


def _stream_version(conn: sqlite3.Connection, stream_id: str) -> int:
    row = conn.execute("SELECT version FROM streams WHERE stream_id = ?", (stream_id,)).fetchone()
    return -1 if row is None else row[0]


def _expected_holds(expected: int, current: int) -> bool:
    if expected == EXPECT_ANY:
        return True
    if expected == EXPECT_STREAM_EXISTS:
        return current >= 0
    return current == expected  # exact, or EXPECT_NO_STREAM (-1)


def _find_repeat(
    conn: sqlite3.Connection, stream_id: str, events: Sequence[NewEvent]
) -> AppendResult | None:
    """When every id is already in this stream as one consecutive run in the same order,
    the append is a repeat: return the original result. When some id is used elsewhere (or
    only some are present), raise DuplicateEventIdError naming the first such event."""
    found: dict[str, tuple[str, int, int]] = {}
    ids = [e.event_id for e in events]
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for event_id, sid, version, position in conn.execute(
            f"SELECT event_id, stream_id, version, position FROM events WHERE event_id IN ({marks})",
            chunk,
        ):
            found[event_id] = (sid, version, position)
    if not found:
        return None
    first = found.get(ids[0])
    if first is not None and first[0] == stream_id and len(found) == len(ids):
        start_version = first[1]
        if all(found[eid][0] == stream_id and found[eid][1] == start_version + i for i, eid in enumerate(ids)):
            last = found[ids[-1]]
            return AppendResult(start_version, last[1], first[2], last[2], duplicate=True)
    for i, eid in enumerate(ids):
        if eid in found:
            raise DuplicateEventIdError(f"events[{i}].event_id", eid)
    return None  # pragma: no cover - found is non-empty, so the loop raised


_ROWS_PER_INSERT = 256  # x 7 columns, well under SQLite's 32766 parameters per statement


@functools.cache
def _insert_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO events (position, stream_id, version, event_id, event_type, created_epoch, record)"
        f" VALUES {values}"
    )


def _insert_events(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Inserts rows many per statement. Why not executemany: it steps once per row, and each
    step gives up and takes back the GIL; with the event loop busy in the other thread, every
    take-back can wait a whole switch interval. One statement per 256 rows hands over once."""
    for i in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[i : i + _ROWS_PER_INSERT]
        conn.execute(_insert_sql(len(chunk)), [value for row in chunk for value in row])


def _append_job(stream_id: str, events: Sequence[NewEvent], expected: int) -> Callable[..., AppendResult]:
    def run(conn: sqlite3.Connection, state: _WriterState) -> AppendResult:
        current = _stream_version(conn, stream_id)
        if not _expected_holds(expected, current):
            repeat = _find_repeat(conn, stream_id, events)
            if repeat is not None:
                return repeat
            raise WrongExpectedVersionError(stream_id, describe_expected(expected), current)
        created = now_epoch_us()
        tail = created_tail(created)
        first_position = state.pending_position + 1
        rows = []
        position = state.pending_position
        version = current
        for event in events:
            position += 1
            version += 1
            rows.append(
                (
                    position,
                    stream_id,
                    version,
                    event.event_id,
                    event.event_type,
                    created,
                    encode_record(stream_id, version, position, event, tail),
                )
            )
        try:
            _insert_events(conn, rows)
        except sqlite3.IntegrityError as e:
            if "event_id" not in str(e):
                raise
            # An id is taken: either this is a repeat of an append already written (then its
            # original result is the answer) or a genuine conflict.
            conn.execute("ROLLBACK TO job")
            repeat = _find_repeat(conn, stream_id, events)
            if repeat is not None:
                return repeat
            seen: set[str] = set()
            for i, event in enumerate(events):  # the same id twice within this append
                if event.event_id in seen:
                    raise DuplicateEventIdError(f"events[{i}].event_id", event.event_id) from e
                seen.add(event.event_id)
            raise
        conn.execute(
            "INSERT INTO streams (stream_id, version, created_epoch) VALUES (?, ?, ?)"
            " ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            (stream_id, version, created),
        )
        state.pending_position = position
        return AppendResult(current + 1, version, first_position, position)

    return run


def _record_snapshot_job(snapshot: Snapshot) -> Callable[..., Snapshot]:
    def run(conn: sqlite3.Connection, state: _WriterState) -> Snapshot:
        created = now_epoch_us()
        conn.execute(
            "INSERT OR REPLACE INTO snapshots (source_uuid, stream_uuid, source_version,"
            " source_type, data, metadata, created_epoch) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                snapshot.source_uuid,
                snapshot.stream_uuid,
                snapshot.source_version,
                snapshot.source_type,
                snapshot.data,
                snapshot.metadata,
                created,
            ),
        )
        return Snapshot(
            snapshot.source_uuid,
            snapshot.stream_uuid,
            snapshot.source_version,
            snapshot.source_type,
            snapshot.data,
            snapshot.metadata,
            created,
        )

    return run


def _delete_snapshot_job(source_uuid: str, stream_uuid: str, version: int | None) -> Callable[..., int]:
    def run(conn: sqlite3.Connection, state: _WriterState) -> int:
        if version is None:
            cur = conn.execute(
                "DELETE FROM snapshots WHERE source_uuid = ? AND stream_uuid = ?", (source_uuid, stream_uuid)
            )
        else:
            cur = conn.execute(
                "DELETE FROM snapshots WHERE source_uuid = ? AND stream_uuid = ? AND source_version = ?",
                (source_uuid, stream_uuid, version),
            )
        return cur.rowcount

    return run


def _save_subscription_job(name: str, definition: dict[str, Any], state: dict[str, Any]) -> Callable[..., bool]:
    def run(conn: sqlite3.Connection, _: _WriterState) -> bool:
        now = now_epoch_us()
        updated = conn.execute(
            "UPDATE subscriptions SET definition = ?, updated_epoch = ? WHERE name = ?",
            (json.dumps(definition), now, name),
        ).rowcount
        if updated:
            return False
        conn.execute(
            "INSERT INTO subscriptions (name, definition, state, checkpoint, created_epoch, updated_epoch)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (name, json.dumps(definition), json.dumps(state), state.get("checkpoint", -1), now, now),
        )
        return True

    return run


def _subscription_state_job(name: str, state: dict[str, Any]) -> Callable[..., None]:
    def run(conn: sqlite3.Connection, _: _WriterState) -> None:
        conn.execute(
            "UPDATE subscriptions SET state = ?, checkpoint = ?, updated_epoch = ?"
            " WHERE name = ? AND checkpoint <= ?",
            (json.dumps(state), state["checkpoint"], now_epoch_us(), name, state["checkpoint"]),
        )

    return run


def _remove_subscription_job(name: str) -> Callable[..., None]:
    def run(conn: sqlite3.Connection, _: _WriterState) -> None:
        if not conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,)).rowcount:
            raise SubscriptionNotFoundError(name)

    return run


_STOP = object()


class SqliteStore(EventStore):
    """One store in one SQLite file. Created by SqliteBackend; `close()` ends its threads."""

    def __init__(self, store_id: str, path: Path, synchronous: str, readers: ThreadPoolExecutor) -> None:
        self.store_id = store_id
        self.path = path
        self._synchronous = synchronous
        self._readers = readers
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._writer_conn = _connect(path, synchronous, readonly=False)
        self._migrate(self._writer_conn)
        row = self._writer_conn.execute("SELECT coalesce(max(position), -1) FROM events").fetchone()
        self._last_position: int = row[0]  # what the event loop has seen committed
        self._written_position: int = row[0]  # the writer thread's own (ahead of the loop's)
        self._commit_event = asyncio.Event()
        self.created_epoch = int(
            self._writer_conn.execute("SELECT value FROM meta WHERE key = 'created_epoch'").fetchone()[0]
        )
        self._writer = threading.Thread(target=self._write_loop, name=f"sqlite-writer-{store_id}", daemon=True)
        self._writer.start()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        have = conn.execute("PRAGMA user_version").fetchone()[0]
        migrations = _migrations()
        for number, script in enumerate(migrations[have:], start=have + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(script):
                    conn.execute(statement)
                if number == 1:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('store_id', ?), ('created_epoch', ?)",
                        (self.store_id, str(now_epoch_us())),
                    )
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("migrated store", extra={"store": self.store_id, "schema_version": number})

    # -- the writer thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs: list[_Job] = [first]
            events = first.events
            stop = False
            while len(jobs) < _MAX_JOBS_PER_COMMIT and events < _MAX_EVENTS_PER_COMMIT:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
                events += job.events
            self._commit(conn, jobs)
            if stop:
                break
        # Anything queued after the stop is answered, never left hanging.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                self._loop.call_soon_threadsafe(_settle, [(job.future, StoreNotFoundError(self.store_id))])
        conn.close()

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        state = _WriterState(self._written_position)
        results: list[tuple[asyncio.Future[Any], Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                before = state.pending_position
                try:
                    result = job.run(conn, state)
                except GaterError as e:
                    conn.execute("ROLLBACK TO job")
                    state.pending_position = before
                    result = e
                except sqlite3.Error as e:
                    conn.execute("ROLLBACK TO job")
                    state.pending_position = before
                    log.error("write failed", extra={"store": self.store_id, "error": str(e)})
                    result = _translate(e, "write")
                conn.execute("RELEASE job")
                results.append((job.future, result))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            log.error("commit failed", extra={"store": self.store_id, "error": str(e)})
            error = _translate(e, "commit")
            results = [(job.future, error) for job in jobs]
            state.pending_position = self._written_position
        self._written_position = state.pending_position
        self._loop.call_soon_threadsafe(self._committed, results, state.pending_position)

    def _committed(self, results: list[tuple[asyncio.Future[Any], Any]], last_position: int) -> None:
        """On the event loop: publish the new last position, then answer the callers."""
        if last_position > self._last_position:
            self._last_position = last_position
            event, self._commit_event = self._commit_event, asyncio.Event()
            event.set()
        _settle(results)

    async def _write(self, run: Callable[..., Any], events: int = 1) -> Any:
        if self._closed:
            raise StoreNotFoundError(self.store_id)
        future = self._loop.create_future()
        self._queue.put(_Job(run, future, events))
        return await future

    # -- reads --------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self._synchronous, readonly=True)
            self._local.conn = conn
            with self._conns_lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StoreNotFoundError(self.store_id)

        def work() -> Any:
            try:
                return fn(self._reader())
            except sqlite3.Error as e:
                raise _translate(e, what) from e

        return await self._loop.run_in_executor(self._readers, work)

    # -- EventStore ---------------------------------------------------------------------------

    async def append(self, stream_id: str, events: Sequence[NewEvent], expected: int) -> AppendResult:
        return await self._write(_append_job(stream_id, events, expected), len(events))

    async def read_stream(
        self, stream_id: str, start: int | None, limit: int, backward: bool = False
    ) -> list[RecordedEvent]:
        if stream_id == ALL_STREAM:
            return await self.read_all(start, limit, backward)
        return await self._page("version", "stream_id = ? AND ", (stream_id,), start, limit, backward)

    async def read_all(self, start: int | None, limit: int, backward: bool = False) -> list[RecordedEvent]:
        return await self._page("position", "", (), start, limit, backward)

    async def _page(
        self, key: str, where: str, args: tuple[Any, ...], start: int | None, limit: int, backward: bool
    ) -> list[RecordedEvent]:
        """One page ordered by `key` (version within a stream, or global position) from
        `start` on, either way; `where` narrows it to one stream."""
        if backward:
            op, order, first = "<=", "DESC", (1 << 62) if start is None else start
        else:
            op, order, first = ">=", "", 0 if start is None else start
        sql = (
            "SELECT position, stream_id, version, event_id, event_type, record FROM events"
            f" WHERE {where}{key} {op} ? ORDER BY {key} {order} LIMIT ?"
        )
        params = (*args, first, limit)

        def query(conn: sqlite3.Connection) -> list[RecordedEvent]:
            return [RecordedEvent(*row) for row in conn.execute(sql, params)]

        return await self._read("read events", query)

    async def stream_version(self, stream_id: str) -> int:
        if stream_id == ALL_STREAM:
            return self._last_position
        return await self._read("read a stream version", lambda conn: _stream_version(conn, stream_id))

    async def last_position(self) -> int:
        return self._last_position

    async def list_streams(self, after: str, limit: int) -> list[tuple[str, int]]:
        def query(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            return conn.execute(
                "SELECT stream_id, version FROM streams WHERE stream_id > ? ORDER BY stream_id LIMIT ?",
                (after, limit),
            ).fetchall()

        return await self._read("list streams", query)

    async def record_snapshot(self, snapshot: Snapshot) -> Snapshot:
        return await self._write(_record_snapshot_job(snapshot))

    async def read_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> Snapshot:
        cols = "source_uuid, stream_uuid, source_version, source_type, data, metadata, created_epoch"
        if version is None:
            sql = (
                f"SELECT {cols} FROM snapshots WHERE source_uuid = ? AND stream_uuid = ?"
                " ORDER BY source_version DESC LIMIT 1"
            )
            args: tuple[Any, ...] = (source_uuid, stream_uuid)
        else:
            sql = f"SELECT {cols} FROM snapshots WHERE source_uuid = ? AND stream_uuid = ? AND source_version = ?"
            args = (source_uuid, stream_uuid, version)
        row = await self._read("read a snapshot", lambda conn: conn.execute(sql, args).fetchone())
        if row is None:
            raise SnapshotNotFoundError(source_uuid, stream_uuid, version)
        return Snapshot(*row)

    async def delete_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> int:
        return await self._write(_delete_snapshot_job(source_uuid, stream_uuid, version))

    async def list_snapshots(
        self,
        source_uuid: str | None,
        stream_uuid: str | None,
        after: tuple[str, str, int] | None,
        limit: int,
    ) -> list[Snapshot]:
        where = []
        args: list[Any] = []
        if source_uuid:
            where.append("source_uuid = ?")
            args.append(source_uuid)
        if stream_uuid:
            where.append("stream_uuid = ?")
            args.append(stream_uuid)
        if after is not None:
            where.append("(source_uuid, stream_uuid, source_version) > (?, ?, ?)")
            args.extend(after)
        sql = (
            "SELECT source_uuid, stream_uuid, source_version, source_type, created_epoch FROM snapshots"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY source_uuid, stream_uuid, source_version LIMIT ?"
        )
        args.append(limit)
        rows = await self._read("list snapshots", lambda conn: conn.execute(sql, args).fetchall())
        return [Snapshot(src, stream, version, stype, created_epoch=created) for src, stream, version, stype, created in rows]

    async def status(self) -> StoreStatus:
        def query(conn: sqlite3.Connection) -> tuple[int, int]:
            streams = conn.execute("SELECT count(*) FROM streams").fetchone()[0]
            snapshots = conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
            subscriptions = conn.execute("SELECT count(*) FROM subscriptions").fetchone()[0]
            return streams, snapshots, subscriptions

        streams, snapshots, subscriptions = await self._read("count", query)
        size = sum(
            p.stat().st_size
            for p in (self.path, self.path.with_name(self.path.name + "-wal"))
            if p.exists()
        )
        return StoreStatus(
            store_id=self.store_id,
            stream_count=streams,
            event_count=self._last_position + 1,
            last_position=self._last_position,
            snapshot_count=snapshots,
            subscription_count=subscriptions,
            size_bytes=size,
        )

    async def config(self) -> StoreConfig:
        return StoreConfig(self.store_id, "sqlite", str(self.path), self._synchronous, self.created_epoch)

    async def save_subscription(self, name: str, definition: dict[str, Any], state: dict[str, Any]) -> bool:
        return await self._write(_save_subscription_job(name, definition, state))

    async def load_subscriptions(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        rows = await self._read(
            "load subscriptions",
            lambda conn: conn.execute("SELECT name, definition, state FROM subscriptions ORDER BY name").fetchall(),
        )
        return {name: (json.loads(definition), json.loads(state)) for name, definition, state in rows}

    async def save_subscription_state(self, name: str, state: dict[str, Any], fence: int | None = None) -> None:
        await self._write(_subscription_state_job(name, state))

    async def remove_subscription(self, name: str) -> None:
        await self._write(_remove_subscription_job(name))

    async def wait_for_position(self, after: int, timeout_s: float) -> int:
        if self._last_position > after or self._closed:
            return self._last_position
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._last_position <= after and not self._closed:
                    await self._commit_event.wait()
        return self._last_position

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Ends the writer after it finished what is queued; closes reader connections."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._writer.join)
        with self._conns_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        event, self._commit_event = self._commit_event, asyncio.Event()
        event.set()


def _settle(results: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in results:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script; trigger bodies (BEGIN ... END;) stay whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements


class SqliteBackend(StorageBackend):
    """Stores as SQLite files in `data_dir/stores/`; one process at a time (a lock file)."""

    name = "sqlite"

    def __init__(self, data_dir: Path, *, synchronous: str = "FULL", limits: Limits | None = None) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.data_dir = Path(data_dir)
        self.synchronous = synchronous.upper()
        self.limits = limits or Limits()
        self._stores: dict[str, SqliteStore] = {}
        self._lock: asyncio.Lock | None = None
        self._lock_file: int | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._cluster_id = ""
        self._started = False

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def _dir(self) -> Path:
        return self.data_dir / "stores"

    def _path(self, store_id: str) -> Path:
        return self._dir / f"{store_id}{_SUFFIX}"

    async def start(self) -> None:
        if self._started:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageUnavailableError(
                f"data directory {self.data_dir} is in use by another gater process; "
                "stop it or pass another --data-dir"
            ) from None
        self._lock_file = fd
        cluster_file = self.data_dir / "cluster_id"
        if not cluster_file.exists():
            tmp = cluster_file.with_suffix(".tmp")
            tmp.write_text(str(uuid.uuid4()) + "\n")
            os.replace(tmp, cluster_file)
        self._cluster_id = cluster_file.read_text().strip()
        self._lock = asyncio.Lock()
        self._readers = ThreadPoolExecutor(_READER_THREADS, thread_name_prefix="sqlite-reader")
        self._started = True
        log.info("sqlite backend started", extra={"data_dir": str(self.data_dir), "cluster_id": self._cluster_id})

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for store in list(self._stores.values()):
            await store.close()
        self._stores.clear()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    async def check(self, timeout_s: float = 2.0) -> None:
        self._require_started()

        def probe() -> None:
            # The directory is there and writable: new stores and WAL files can be made.
            if not os.access(self._dir, os.W_OK | os.X_OK):
                raise StorageUnavailableError(f"data directory {self._dir} is missing or not writable")

        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.to_thread(probe)
        except TimeoutError:
            raise StorageUnavailableError(f"data directory {self._dir} did not answer within {timeout_s:g} s") from None

    def _require_started(self) -> tuple[asyncio.Lock, ThreadPoolExecutor]:
        if not self._started or self._lock is None or self._readers is None:
            raise StorageUnavailableError("the SQLite backend is not started")
        return self._lock, self._readers

    async def create_store(self, store_id: str) -> StoreInfo:
        lock, _ = self._require_started()
        async with lock:
            if self._path(store_id).exists():
                raise StoreAlreadyExistsError(store_id)
            store = await self._open(store_id)
            return StoreInfo(store_id, store.created_epoch)

    async def _open(self, store_id: str) -> SqliteStore:
        _, readers = self._require_started()
        store = self._stores.get(store_id)
        if store is None:
            # Opening runs the migrations: brief, blocking, and once per store per process.
            try:
                store = SqliteStore(store_id, self._path(store_id), self.synchronous, readers)
            except sqlite3.Error as e:
                raise _translate(e, f"open store {store_id!r}") from e
            self._stores[store_id] = store
        return store

    async def remove_store(self, store_id: str) -> None:
        lock, _ = self._require_started()
        async with lock:
            path = self._path(store_id)
            if not path.exists():
                raise StoreNotFoundError(store_id)
            store = self._stores.pop(store_id, None)
            if store is not None:
                await store.close()
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                p.unlink(missing_ok=True)
            log.info("removed store", extra={"store": store_id})

    async def list_stores(self) -> list[StoreInfo]:
        self._require_started()
        infos = []
        for path in sorted(self._dir.glob(f"*{_SUFFIX}")):
            store = await self.open_store(path.name[: -len(_SUFFIX)])
            infos.append(StoreInfo(store.store_id, store.created_epoch))
        return infos

    async def open_store(self, store_id: str) -> SqliteStore:
        store = self._stores.get(store_id)
        if store is not None:
            return store
        lock, _ = self._require_started()
        async with lock:
            if not self._path(store_id).exists():
                raise StoreNotFoundError(store_id)
            return await self._open(store_id)

