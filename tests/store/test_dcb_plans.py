"""DCB queries are answered from the indexes, never by scanning the events: the query plans
of real statements (store/_query.positions_sql inside read_query.sql), on a real SQLite file
and a real PostgreSQL database holding enough events that a scan would be tempting."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest

from gater.config import Limits
from gater.store._query import positions_sql
from gater.store.base import EXPECT_ANY, EventStore, NewEvent, Query, QueryItem
from gater.store.postgres import PostgresBackend
from gater.store.postgres._sql import query as pg_query
from gater.store.sqlite import SqliteBackend
from gater.store.sqlite._sql import query as sqlite_query

from .pg_fixtures import pg_database, postgres_dsn

__all__: list[str] = []

_FIXTURES = (pg_database, postgres_dsn)

QUERIES = [
    Query(),
    Query((QueryItem(("type-3",), ()),)),
    Query((QueryItem((), ("course:c7",)),)),
    Query((QueryItem(("type-1", "type-2"), ("course:c7", "student:s3")), QueryItem((), ("student:s9",)))),
]


async def fill(store: EventStore, batches: int) -> None:
    """100 events per batch, of 10 types, each tagged with one of 100 courses and 50 students."""
    n = 0
    for b in range(batches):
        events = []
        for _ in range(100):
            tags = (f"course:c{n % 100}", f"student:s{n % 50}")
            events.append(NewEvent(str(uuid.uuid4()), f"type-{n % 10}", b"{}", tags=tags))
            n += 1
        await store.append(f"stream-{b}", events, EXPECT_ANY)


async def test_sqlite_query_plans_use_only_indexes(tmp_path: Path) -> None:
    async with SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=Limits()) as backend:
        await backend.create_store("main")
        await fill(await backend.open_store("main"), 20)
    conn = sqlite3.connect(tmp_path / "data" / "stores" / "main.sqlite")
    try:
        for query in QUERIES:
            for backward in (False, True):
                positions, params = positions_sql(query, dialect="sqlite", low=10, high=1500, limit=50, backward=backward)
                sql = sqlite_query("read_query").format(positions=positions, order="DESC" if backward else "ASC")
                plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                # A SEARCH is an index range or look-up; a SCAN of a table is a full scan.
                # (SCAN aN walks an arm's own result: at most `limit` rows.)
                scans = [step for step in plan if step.startswith("SCAN") and not step.startswith("SCAN a")]
                assert not scans, (query, plan)
                assert rows(conn.execute(sql, params)) == expected(query, 10, 1500, 50, backward)
    finally:
        conn.close()


def rows(cursor: sqlite3.Cursor | list[asyncpg.Record]) -> list[int]:
    return [row[0] for row in cursor]


def expected(query: Query, low: int, high: int, limit: int, backward: bool) -> list[int]:
    from gater.store._query import matches

    found = [
        n for n in range(low, high + 1)
        if matches(query, f"type-{n % 10}", (f"course:c{n % 100}", f"student:s{n % 50}"))
    ]
    return (found[::-1] if backward else found)[:limit]


@pytest.mark.postgres
async def test_postgres_query_plans_use_only_indexes(pg_database: str) -> None:
    async with PostgresBackend(pg_database, limits=Limits(), node_id="plans") as backend:
        await backend.create_store("main")
        await backend.create_store("other")
        await fill(await backend.open_store("main"), 100)
        await fill(await backend.open_store("other"), 20)
    con = await asyncpg.connect(pg_database)
    try:
        await con.execute("ANALYZE")
        for query in QUERIES:
            for backward in (False, True):
                positions, params = positions_sql(
                    query, dialect="postgres", low=10, high=9000, limit=50, backward=backward, store_id="main"
                )
                sql = pg_query("read_query").format(positions=positions, order="DESC" if backward else "ASC")
                plan = "\n".join(r[0] for r in await con.fetch("EXPLAIN " + sql, *params))
                # The events and tags are never scanned. (The streams' rules, joined to each
                # row read — store/_lifecycle.py — come from tables this small database
                # holds a few rows of, which the planner rightly reads whole.)
                assert "Seq Scan on events" not in plan and "Seq Scan on event_tags" not in plan, plan
                assert rows(await con.fetch(sql, *params)) == expected(query, 10, 9000, 50, backward)
    finally:
        await con.close()
