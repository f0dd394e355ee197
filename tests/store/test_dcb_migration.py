"""Stores made before tags and categories existed migrate: their events stay, type queries and
prefix reads see them, new events carry tags. A store "from before" is made by undoing
migrations 0003 and 0004 by hand on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest

from gater.config import Limits
from gater.store.base import EXPECT_ANY, NewEvent, Query, QueryItem, StorageBackend
from gater.store.postgres import PostgresBackend
from gater.store.sqlite import SqliteBackend

from .pg_fixtures import pg_database, postgres_dsn

__all__: list[str] = []

_FIXTURES = (pg_database, postgres_dsn)

BY_TYPE = Query((QueryItem(("old",), ()),))
BY_TAG = Query((QueryItem((), ("k:1",)),))


async def before(backend: StorageBackend) -> None:
    await backend.create_store("main")
    store = await backend.open_store("main")
    await store.append("s-1", [NewEvent(str(uuid.uuid4()), "old", b"{}") for _ in range(3)], EXPECT_ANY)


async def after(backend: StorageBackend) -> None:
    store = await backend.open_store("main")
    assert [e.position for e in (await store.read_query(BY_TYPE, None, 10))[0]] == [0, 1, 2]
    await store.append("t", [NewEvent(str(uuid.uuid4()), "new", b"{}", tags=("k:1",))], EXPECT_ANY)
    assert [e.position for e in (await store.read_query(BY_TAG, None, 10))[0]] == [3]
    assert [e.position for e in (await store.read_query(Query(), None, 10, stream_prefix="s-"))[0]] == [0, 1, 2]


async def test_an_sqlite_store_from_before_tags_migrates(tmp_path: Path) -> None:
    def make() -> SqliteBackend:
        return SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=Limits())

    async with make() as backend:
        await before(backend)
    conn = sqlite3.connect(tmp_path / "data" / "stores" / "main.sqlite", isolation_level=None)
    # SQLite applies migrations by number: undoing 0003 means undoing 0004 and the lifecycle's 0005 too
    # (0006 and 0007, the import's gaps and trigger, are written to apply again as they are).
    for statement in (
        "DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete", "DROP TRIGGER event_tags_no_delete",
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'immutable'); END",
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'immutable'); END",
        "DROP TABLE stream_meta", "DROP TABLE scavenge", "DROP TABLE lifecycle_pass",
        "ALTER TABLE streams DROP COLUMN deleted",
        "DROP TABLE event_tags", "DROP INDEX events_type_position", "DROP INDEX events_category_position",
        "PRAGMA user_version = 2",
    ):
        conn.execute(statement)
    conn.close()
    async with make() as backend:
        await after(backend)
    conn = sqlite3.connect(tmp_path / "data" / "stores" / "main.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    conn.close()


@pytest.mark.postgres
async def test_a_postgres_database_from_before_tags_migrates(pg_database: str) -> None:
    def make() -> PostgresBackend:
        return PostgresBackend(pg_database, limits=Limits(), node_id="migration")

    async with make() as backend:
        await before(backend)
    con = await asyncpg.connect(pg_database)
    try:
        await con.execute(
            "DROP TABLE event_tags; DROP INDEX events_type_position; DROP INDEX events_category_position;"
            " DELETE FROM schema_migrations WHERE version IN (3, 4)"  # the lifecycle's 5 stays applied
        )
    finally:
        await con.close()
    async with make() as backend:
        await after(backend)
