"""The lifecycle writes of the SQLite backend: delete, metadata, scavenge steps, redaction.

Owns: the functions the store's writer thread runs as jobs (each inside the writer's
transaction, in a SAVEPOINT of its own, between batches of appends): `delete_stream`,
`set_metadata`, `scavenge_step`, `redact`, and the read `metadata`. The rules are
store/_lifecycle.py's; this module reads what they need and writes what they decide.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Why the scavenger never stalls appends: a step examines SCAVENGE_BATCH positions, and one job
of the writer runs steps for SCAVENGE_TRANSACTION_S at most, so an append waits for that much
at most; each step records its progress in the same transaction as its deletes, so a crash
loses nothing and repeats at most that job (a step is idempotent: what it deleted is gone,
what it kept is examined again).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from gater.errors import NotFoundError

from .._lifecycle import (
    LIVE,
    SCAVENGE_BATCH,
    SCAVENGE_STEPS,
    SCAVENGE_TRANSACTION_S,
    ScavengeStatus,
    StreamMetadata,
    check_metadata_write,
    plan_delete,
    redacted_record,
    removable,
)
from .._records import now_epoch_us
from ._sql import query

__all__ = ["LifecycleJobs", "delete_stream", "metadata", "redact", "scavenge_status", "scavenge_step", "scavenge_steps", "set_metadata"]


def _state(conn: sqlite3.Connection, stream_id: str) -> tuple:
    return conn.execute(query("stream_state"), (stream_id,)).fetchone()


def metadata(conn: sqlite3.Connection, stream_id: str) -> StreamMetadata:
    version, deleted, meta_version, truncate_before, max_count, max_age_us, custom = _state(conn, stream_id)
    if meta_version is None:
        return StreamMetadata(deleted=deleted or LIVE)
    meta = StreamMetadata.from_row(meta_version, truncate_before, max_count, max_age_us, custom)
    return StreamMetadata(
        meta.max_count, meta.max_age_s, meta.truncate_before, meta.custom, meta.meta_version, deleted or LIVE
    )


def delete_stream(conn: sqlite3.Connection, stream_id: str, expected: int, tombstone: bool) -> int:
    """Soft-deletes or tombstones; returns the stream's last version."""
    version, deleted, meta_version, truncate_before, max_count, max_age_us, custom = _state(conn, stream_id)
    plan = plan_delete(stream_id, version, deleted, expected, truncate_before, tombstone)
    conn.execute(query("stream_delete"), (plan.deleted, stream_id))
    conn.execute(
        query("stream_meta_write"),
        (stream_id, 0 if meta_version is None else meta_version + 1, plan.truncate_before, max_count,
         max_age_us, custom or "{}"),
    )
    return plan.version


def set_metadata(conn: sqlite3.Connection, stream_id: str, meta: StreamMetadata, expected: int) -> int:
    """Writes a stream's metadata if its meta version is `expected`; returns the new one."""
    _, deleted, meta_version, *_ = _state(conn, stream_id)
    new_version = check_metadata_write(
        stream_id, deleted, -1 if meta_version is None else meta_version, expected, meta
    )
    conn.execute(
        query("stream_meta_write"),
        (stream_id, new_version, meta.truncate_before, meta.max_count, meta.max_age_us, meta.custom_json()),
    )
    return new_version


def scavenge_status(conn: sqlite3.Connection) -> ScavengeStatus:
    row = conn.execute(query("scavenge_state")).fetchone()
    if row is None:
        return ScavengeStatus(running=False, next_position=0, removed=0)
    next_position, started, running, removed = row
    return ScavengeStatus(bool(running), next_position, removed, started)


def scavenge_step(conn: sqlite3.Connection, restart: bool) -> ScavengeStatus:
    """Examines the next SCAVENGE_BATCH positions of the scavenge under way (a new one when
    none is, or `restart`), deletes the events (and their tags) no reader sees any more, and
    records how far it got. Returns the status after the step; running=False once it has
    passed the head."""
    status = scavenge_status(conn)
    if restart or not status.running:
        status = ScavengeStatus(True, 0, 0, now_epoch_us())
    head = conn.execute(query("last_position")).fetchone()[0]
    low = status.next_position
    high = low + SCAVENGE_BATCH
    rows = conn.execute(query("scavenge_page"), (low, high)).fetchall()
    gone = removable(rows, now_epoch_us(), head)
    if gone:
        positions = json.dumps(gone)
        conn.execute(query("lifecycle_pass_open"))
        conn.execute(query("scavenge_delete_tags"), (positions,))
        conn.execute(query("scavenge_delete_events"), (positions,))
        conn.execute(query("lifecycle_pass_close"))
    running = high <= head
    after = ScavengeStatus(running, high if running else head + 1, status.removed + len(gone), status.started_epoch)
    conn.execute(
        query("scavenge_save"), (after.next_position, after.started_epoch, int(after.running), after.removed)
    )
    return after


def scavenge_steps(conn: sqlite3.Connection, restart: bool) -> ScavengeStatus:
    """Steps of the scavenge in one job (one transaction): until it is done, SCAVENGE_STEPS
    were taken, or SCAVENGE_TRANSACTION_S was spent."""
    started = time.monotonic()
    status = scavenge_step(conn, restart)
    for _ in range(SCAVENGE_STEPS - 1):
        if not status.running or time.monotonic() - started >= SCAVENGE_TRANSACTION_S:
            break
        status = scavenge_step(conn, False)
    return status


def redact(conn: sqlite3.Connection, stream_id: str, version: int) -> None:
    """Replaces the data and metadata of one event by the redaction marker."""
    row = conn.execute(query("event_record"), (stream_id, version)).fetchone()
    if row is None:
        raise NotFoundError(f"no event at version {version} of stream {stream_id!r}")
    conn.execute(query("lifecycle_pass_open"))
    conn.execute(query("event_redact"), (redacted_record(row[0]), stream_id, version))
    conn.execute(query("lifecycle_pass_close"))


class LifecycleJobs:
    """SqliteStore's lifecycle calls (a base class of it): the writes as writer jobs, the reads
    on the reader threads, and whether reads need the rules' join at all (`_rules_exist`)."""

    _rules: bool | None

    async def _job(self, run: Callable[[sqlite3.Connection], Any]) -> Any:
        raise NotImplementedError  # SqliteStore's

    async def _read(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        raise NotImplementedError  # SqliteStore's

    async def _rules_exist(self) -> bool:
        """Whether any stream has metadata (deletes write some): until then reads skip the rules'
        join. One process serves the store: read once, then set by each lifecycle write."""
        if self._rules is None:
            found = await self._read("read stream metadata", lambda conn: conn.execute(query("stream_meta_exists")).fetchone()[0])
            if self._rules is None:  # else a lifecycle write said so meanwhile: it wins
                self._rules = bool(found)
        return self._rules

    async def delete_stream(self, stream_id: str, expected: int, tombstone: bool) -> int:
        self._rules = True
        return await self._job(lambda conn: delete_stream(conn, stream_id, expected, tombstone))

    async def stream_metadata(self, stream_id: str) -> StreamMetadata:
        return await self._read("read stream metadata", lambda conn: metadata(conn, stream_id))

    async def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata, expected: int) -> int:
        self._rules = True
        return await self._job(lambda conn: set_metadata(conn, stream_id, metadata, expected))

    async def scavenge(self, restart: bool = False, progress: Callable[[ScavengeStatus], None] | None = None) -> ScavengeStatus:
        status = await self._job(lambda conn: scavenge_steps(conn, restart))
        while status.running:  # one short job at a time: appends queued meanwhile go first
            if progress is not None:
                progress(status)
            status = await self._job(lambda conn: scavenge_steps(conn, False))
        return status

    async def scavenge_status(self) -> ScavengeStatus:
        return await self._read("read the scavenge status", scavenge_status)

    async def redact(self, stream_id: str, version: int) -> None:
        await self._job(lambda conn: redact(conn, stream_id, version))
