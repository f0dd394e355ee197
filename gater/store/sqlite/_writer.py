"""Group commit: the one writer thread of an open SQLite store.

Owns: `Writer` — a thread with its own connection that drains a queue of jobs and commits
everything it took in one transaction — and the jobs it runs (`Append`, `Job`).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Why one thread, and why positions stay dense and in commit order
----------------------------------------------------------------
A store has at most one writer at a time (SqliteStore makes a new one only after the previous
one has answered every job it took), and within the process it is the only connection that
writes, so the last position it read when it opened the connection stays true until it
writes the next batch. Each commit: BEGIN IMMEDIATE, read the versions of the batch's streams
(and, when needed, where its event ids already are), let the shared planner
(`store/_append.plan_batch`) decide every append in queue order, insert the planned rows, then
run the other jobs (snapshots, subscriptions) each in its own SAVEPOINT, and COMMIT: one fsync
for many appends. A batch that fails as a whole (a full disk at COMMIT) is rolled back and its
positions are planned again by the next batch: no holes.

Why many rows per INSERT
------------------------
executemany steps once per row, and each step gives up and takes back the GIL; with the event
loop busy in the other thread, every take-back can wait a whole switch interval. One statement
per 256 rows hands over once.

Checkpoints (copying the write-ahead log into the database file) are not the writer's: it asks
its `Checkpointer` thread for one every few thousand rows and goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gater.errors import GaterError

from .._append import (
    AppendRequest,
    BatchPlan,
    ExistingEvent,
    canonical_ids,
    conflict_queries,
    plan_batch,
    request_streams,
)
from .._records import now_epoch_us
from ._checkpoint import BACKSTOP_PAGES, CHANGES_PER_CHECKPOINT, Checkpointer
from ._db import connect
from ._sql import query, rows

__all__ = ["Append", "Job", "Settled", "Writer"]

log = logging.getLogger(__name__)

MAX_JOBS_PER_COMMIT = 2000
MAX_EVENTS_PER_COMMIT = 50_000
_ROWS_PER_INSERT = 256  # x 7 columns, well under SQLite's 32766 parameters per statement
_STOP = object()

Settled = list[tuple[asyncio.Future[Any], Any]]
"""(future, result or exception) for every job of a commit."""


@dataclass(slots=True)
class Append:
    request: AppendRequest
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Job:
    """Any other write: `run(conn)` inside a SAVEPOINT; its result or GaterError answers it."""

    run: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    moves_head: bool = False
    """The job inserts events (an import): the writer reads the last position again after it."""


class Writer:
    """The writer thread of one store, from its first write until it is stopped.

    Loop side (the event loop's thread only): `start`, `submit`, `stop`, `pending`. The thread answers
    through `on_commit(writer, settled, last_position)` and, when it ends, `on_exit(writer,
    error)`, both called on the loop.
    """

    def __init__(
        self,
        store_id: str,
        path: Path,
        synchronous: str,
        *,
        loop: asyncio.AbstractEventLoop,
        translate: Callable[[BaseException, str], Exception],
        on_commit: Callable[[Writer, Settled, int], None],
        on_exit: Callable[[Writer, Exception | None], None],
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        self.store_id = store_id
        self._path = path
        self._synchronous = synchronous
        self._loop = loop
        self._translate = translate
        self._on_commit = on_commit
        self._on_exit = on_exit
        self._observe = observe
        """`observe(events, record_bytes)` after each commit that wrote events (metrics)."""
        self._appended = (0, 0)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending = 0
        """Jobs submitted and not answered yet (loop side)."""
        self._thread = threading.Thread(target=self._run, name=f"sqlite-writer-{store_id}", daemon=True)
        self._checkpointer = Checkpointer(store_id, path, synchronous)
        self._changes_checkpointed = 0

    # -- loop side ----------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the thread; it opens its connection and then takes jobs."""
        self._thread.start()

    def submit(self, job: Append | Job) -> None:
        self.pending += 1
        self._queue.put(job)

    def stop(self) -> None:
        """The thread ends after answering every job submitted before."""
        self._queue.put(_STOP)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        """Blocks until the thread has ended (call it from a worker thread)."""
        self._thread.join()

    def leftovers(self) -> list[Append | Job]:
        """Jobs still queued once the thread has ended (submitted after it failed)."""
        left = []
        with contextlib.suppress(queue.Empty):
            while True:
                job = self._queue.get_nowait()
                if job is not _STOP:
                    left.append(job)
        return left

    # -- the thread ---------------------------------------------------------------------------

    def _call_loop(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(fn, *args)

    def _run(self) -> None:
        try:
            conn = connect(self._path, self._synchronous, readonly=False)
            try:
                position = conn.execute(query("last_position")).fetchone()[0]
                conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # the checkpointer's backstop
            except BaseException:
                conn.close()
                raise
        except (sqlite3.Error, OSError) as e:
            # Cannot write at all: answer what is queued up to now; the loop answers the rest.
            error = self._translate(e, "open the store for writing")
            log.warning("store writer could not open", extra={"store": self.store_id, "error": str(error)})
            self._call_loop(self._on_exit, self, error)
            return
        self._checkpointer.start()
        self._changes_checkpointed = conn.total_changes
        try:
            self._loop_jobs(conn, position)
        finally:
            self._checkpointer.stop()
            conn.close()
            self._call_loop(self._on_exit, self, None)

    def _loop_jobs(self, conn: sqlite3.Connection, position: int) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs: list[Any] = [first]
            events = _events(first)
            stop = False
            while len(jobs) < MAX_JOBS_PER_COMMIT and events < MAX_EVENTS_PER_COMMIT:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
                events += _events(job)
            position = self._commit(conn, jobs, position)
            if stop:
                return

    def _commit(self, conn: sqlite3.Connection, jobs: list[Any], position: int) -> int:
        """Commits one batch; returns the last position after it."""
        appends = [j for j in jobs if isinstance(j, Append)]
        others = [j for j in jobs if isinstance(j, Job)]
        settled: Settled = []
        last = position
        self._appended = (0, 0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            if appends:
                last = self._append(conn, appends, position, settled)
            for job in others:
                settled.append((job.future, self._run_job(conn, job)))
            if any(job.moves_head for job in others):
                last = conn.execute(query("last_position")).fetchone()[0]
            conn.execute("COMMIT")
            if conn.total_changes - self._changes_checkpointed >= CHANGES_PER_CHECKPOINT:
                self._changes_checkpointed = conn.total_changes
                self._checkpointer.request()
            if self._observe is not None:
                self._observe(*self._appended)
        except Exception as e:  # noqa: BLE001 - every job must be answered, whatever failed
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = self._translate(e, "commit")
            if isinstance(e, sqlite3.Error):
                log.error("commit failed", extra={"store": self.store_id, "error": str(error)})
            else:
                log.exception("commit failed", extra={"store": self.store_id})
            settled = [(job.future, error) for job in jobs]
            last = position
        self._call_loop(self._on_commit, self, settled, last)
        return last

    def _run_job(self, conn: sqlite3.Connection, job: Job) -> Any:
        conn.execute("SAVEPOINT job")
        try:
            result = job.run(conn)
        except GaterError as e:
            conn.execute("ROLLBACK TO job")
            result = e
        except sqlite3.Error as e:
            conn.execute("ROLLBACK TO job")
            log.error("write failed", extra={"store": self.store_id, "error": str(e)})
            result = self._translate(e, "write")
        conn.execute("RELEASE job")
        return result

    def _append(self, conn: sqlite3.Connection, appends: list[Append], position: int, settled: Settled) -> int:
        """Plans and inserts the batch's appends; adds their answers to `settled`; returns
        the last position after them."""
        requests = [a.request for a in appends]
        streams = json.dumps(request_streams(requests))
        versions, deleted = {}, {}
        for stream_id, version, state in conn.execute(query("append_stream_versions"), (streams,)):
            versions[stream_id] = version
            if state:
                deleted[stream_id] = state
        # Conditional appends: the first stored event that fails each condition, read in
        # this immediate transaction, so nothing can be written between check and insert.
        conflicts = {}
        for i, sql, params in conflict_queries(requests, position, "sqlite"):
            hit = conn.execute(sql, params).fetchone()
            if hit is not None:
                conflicts[i] = hit[0]
        created = now_epoch_us()

        def planned(existing: dict[str, ExistingEvent]) -> BatchPlan:
            return plan_batch(
                requests, last_position=position, stream_versions=versions,
                existing=existing, created_epoch_us=created, conflicts=conflicts, deleted=deleted,
            )

        conn.execute("SAVEPOINT appends")
        try:
            # Optimistic, as on PostgreSQL: plan as if no id existed and let the unique index
            # say otherwise; only a conflict, or a failed check that may be an idempotent
            # repeat, costs the look-up of the ids.
            plan = planned({})
            inserted = False
            if plan.rows and not any(isinstance(o, Exception) for o in plan.outcomes):
                try:
                    _insert(conn, created, plan)
                    inserted = True
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO appends")
            if not inserted:
                ids = json.dumps(canonical_ids(requests))
                existing = {
                    event_id: ExistingEvent(stream_id, version, at)
                    for event_id, stream_id, version, at in conn.execute(query("append_find_ids"), (ids,))
                }
                plan = planned(existing)
                if plan.rows:
                    _insert(conn, created, plan)
        except sqlite3.Error as e:
            conn.execute("ROLLBACK TO appends")
            conn.execute("RELEASE appends")
            error = self._translate(e, "append")
            log.error("append failed", extra={"store": self.store_id, "error": str(error)})
            settled.extend((a.future, error) for a in appends)
            return position
        conn.execute("RELEASE appends")
        self._appended = (len(plan.rows), plan.record_bytes)
        settled.extend((a.future, outcome) for a, outcome in zip(appends, plan.outcomes, strict=True))
        return plan.last_position


def _events(job: Any) -> int:
    return len(job.request.events) if isinstance(job, Append) else 1


def _insert(conn: sqlite3.Connection, created: int, plan: BatchPlan) -> None:
    planned = plan.rows  # tuples in the INSERT's column order
    for i in range(0, len(planned), _ROWS_PER_INSERT):
        chunk = planned[i : i + _ROWS_PER_INSERT]
        conn.execute(
            rows("append_insert_events", len(chunk), "(?, ?, ?, ?, ?, ?, ?)"),
            list(itertools.chain.from_iterable(chunk)),
        )
    tags = plan.tag_rows
    for i in range(0, len(tags), _ROWS_PER_INSERT):
        chunk = tags[i : i + _ROWS_PER_INSERT]
        conn.execute(rows("append_insert_tags", len(chunk), "(?, ?)"), list(itertools.chain.from_iterable(chunk)))
    versions = list(plan.stream_versions.items())
    for i in range(0, len(versions), _ROWS_PER_INSERT):
        chunk = versions[i : i + _ROWS_PER_INSERT]
        conn.execute(
            rows("append_streams", len(chunk), "(?, ?, ?)"),
            [v for stream_id, version in chunk for v in (stream_id, version, created)],
        )
