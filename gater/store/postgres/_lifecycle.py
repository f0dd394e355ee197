"""The lifecycle writes of the PostgreSQL backend: delete, metadata, scavenge steps, redaction.

Owns: `delete_stream`, `metadata`, `set_metadata`, `scavenge_status`, `scavenge_step`,
`redact` — each one short transaction. The rules are store/_lifecycle.py's; this module reads
what they need and writes what they decide.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Why the store's advisory lock (store_lock, the appenders' lock): a delete's expected version,
a metadata write and a scavenge step must see the streams as no append is changing them, and
a scavenge step must not delete under rules that a metadata write is lifting. A transaction
runs steps of SCAVENGE_BATCH positions for SCAVENGE_TRANSACTION_S at most, so appenders wait
that much at most; it records its progress together with its deletes (a crash repeats at most
that transaction, and a step is idempotent).
"""

from __future__ import annotations

import time

import asyncpg

from gater.errors import NotFoundError, StoreNotFoundError

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
from ._db import Database
from ._sql import query

__all__ = ["delete_stream", "metadata", "redact", "scavenge_status", "scavenge_step", "set_metadata"]


async def _locked_state(con: asyncpg.Connection, store_id: str, stream_id: str) -> asyncpg.Record:
    await con.execute(query("store_lock"), store_id)
    if await con.fetchrow(query("append_head"), store_id) is None:
        raise StoreNotFoundError(store_id)
    return await con.fetchrow(query("stream_state"), store_id, stream_id)


async def metadata(db: Database, store_id: str, stream_id: str) -> StreamMetadata:
    row = await db.fetchrow("stream_state", store_id, stream_id, store_id=store_id)
    deleted = row["deleted"] or LIVE
    if row["meta_version"] is None:
        if row["version"] is None and await db.fetchrow("store_get", store_id, store_id=store_id) is None:
            raise StoreNotFoundError(store_id)
        return StreamMetadata(deleted=deleted)
    meta = StreamMetadata.from_row(
        row["meta_version"], row["truncate_before"], row["max_count"], row["max_age_us"], row["custom"]
    )
    return StreamMetadata(meta.max_count, meta.max_age_s, meta.truncate_before, meta.custom, meta.meta_version, deleted)


async def delete_stream(db: Database, store_id: str, stream_id: str, expected: int, tombstone: bool) -> int:
    async with db.transaction(store_id) as con:
        row = await _locked_state(con, store_id, stream_id)
        plan = plan_delete(stream_id, row["version"], row["deleted"], expected, row["truncate_before"], tombstone)
        await con.execute(query("stream_delete"), store_id, stream_id, plan.deleted)
        meta_version = row["meta_version"]
        await con.execute(
            query("stream_meta_write"), store_id, stream_id, 0 if meta_version is None else meta_version + 1,
            plan.truncate_before, row["max_count"], row["max_age_us"], row["custom"] or "{}",
        )
    return plan.version


async def set_metadata(db: Database, store_id: str, stream_id: str, meta: StreamMetadata, expected: int) -> int:
    async with db.transaction(store_id) as con:
        row = await _locked_state(con, store_id, stream_id)
        current = -1 if row["meta_version"] is None else row["meta_version"]
        new_version = check_metadata_write(stream_id, row["deleted"], current, expected, meta)
        await con.execute(
            query("stream_meta_write"), store_id, stream_id, new_version, meta.truncate_before, meta.max_count,
            meta.max_age_us, meta.custom_json(),
        )
    return new_version


def _status(row: asyncpg.Record | None) -> ScavengeStatus:
    if row is None:
        return ScavengeStatus(running=False, next_position=0, removed=0)
    return ScavengeStatus(row["running"], row["next_position"], row["removed"], row["started_epoch"])


async def scavenge_status(db: Database, store_id: str) -> ScavengeStatus:
    row = await db.fetchrow("scavenge_state", store_id, store_id=store_id)
    if row is None and await db.fetchrow("store_get", store_id, store_id=store_id) is None:
        raise StoreNotFoundError(store_id)
    return _status(row)


async def scavenge_step(db: Database, store_id: str, restart: bool) -> ScavengeStatus:
    """Steps in one transaction (see the module docstring): until the scavenge is done,
    SCAVENGE_STEPS were taken or SCAVENGE_TRANSACTION_S was spent; running=False once it has
    passed the head."""
    started = time.monotonic()
    async with db.transaction(store_id) as con:
        await con.execute(query("store_lock"), store_id)
        head_row = await con.fetchrow(query("append_head"), store_id)
        if head_row is None:
            raise StoreNotFoundError(store_id)
        head = head_row["last_position"]
        status = _status(await con.fetchrow(query("scavenge_state"), store_id))
        if restart or not status.running:
            status = ScavengeStatus(True, 0, 0, now_epoch_us())
        await con.execute(query("scavenge_allow"), store_id)
        for _ in range(SCAVENGE_STEPS):
            low = status.next_position
            high = low + SCAVENGE_BATCH
            rows = await con.fetch(query("scavenge_page"), store_id, low, high)
            gone = removable([tuple(r) for r in rows], now_epoch_us(), head)
            if gone:
                await con.execute(query("scavenge_delete"), store_id, gone)
            running = high <= head
            status = ScavengeStatus(running, high if running else head + 1, status.removed + len(gone), status.started_epoch)
            if not running or time.monotonic() - started >= SCAVENGE_TRANSACTION_S:
                break
        await con.execute(
            query("scavenge_save"), store_id, status.next_position, status.started_epoch, status.running, status.removed
        )
    return status


async def redact(db: Database, store_id: str, stream_id: str, version: int) -> None:
    async with db.transaction(store_id) as con:
        record = await con.fetchval(query("event_record"), store_id, stream_id, version)
        if record is None:
            if await con.fetchrow(query("append_head"), store_id) is None:
                raise StoreNotFoundError(store_id)
            raise NotFoundError(f"no event at version {version} of stream {stream_id!r}")
        await con.execute(query("redact_allow"), store_id)
        await con.execute(query("event_redact"), store_id, stream_id, version, redacted_record(record))
