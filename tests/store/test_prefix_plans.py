"""Reads by stream prefix are answered from the (category, position) index of migration 0004
(or, for a prefix without "-", the stream-id index), never by scanning the events: the plans
of real statements on a real SQLite file and a real PostgreSQL database."""

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

CASES = [
    ("order-", Query(), "events_category_position"),
    ("order-7", Query(), None),  # the category range or the stream-id range: the planner picks
    ("order-", Query((QueryItem(("type-3",), ()),)), None),
    ("order-", Query((QueryItem((), ("course:c7",)),)), None),
    ("ord", Query(), None),
]


async def fill(store: EventStore, batches: int) -> None:
    """100 events per batch in 10 categories of 10 streams, of 10 types, one course tag each."""
    n = 0
    for b in range(batches):
        events = []
        for _ in range(100):
            events.append(NewEvent(str(uuid.uuid4()), f"type-{n % 10}", b"{}", tags=(f"course:c{n % 100}",)))
            n += 1
        category = ["order", "customer", "invoice", "cart", "ship", "pay", "user", "item", "note", "log"][b % 10]
        await store.append(f"{category}-{b // 10 % 10}", events, EXPECT_ANY)


def expected(prefix: str, query: Query, low: int, high: int, limit: int, backward: bool) -> list[int]:
    from gater.store._query import matches

    found = [
        n for n in range(low, high + 1)
        if (category := ["order", "customer", "invoice", "cart", "ship", "pay", "user", "item", "note", "log"][n // 100 % 10])
        and f"{category}-{n // 1000 % 10}".startswith(prefix)
        and matches(query, f"type-{n % 10}", (f"course:c{n % 100}",))
    ]
    return (found[::-1] if backward else found)[:limit]


async def test_sqlite_prefix_plans_use_only_indexes(tmp_path: Path) -> None:
    async with SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=Limits()) as backend:
        await backend.create_store("main")
        await fill(await backend.open_store("main"), 100)
    conn = sqlite3.connect(tmp_path / "data" / "stores" / "main.sqlite")
    try:
        conn.execute("ANALYZE")
        for prefix, query, index in CASES:
            for backward in (False, True):
                positions, params = positions_sql(
                    query, dialect="sqlite", low=10, high=9000, limit=50, backward=backward, prefix=prefix
                )
                sql = sqlite_query("read_query").format(positions=positions, order="DESC" if backward else "ASC")
                plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                scans = [step for step in plan if step.startswith("SCAN") and not step.startswith("SCAN a")]
                assert not scans, (prefix, query, plan)
                if index:
                    assert any(index in step for step in plan), (prefix, plan)
                assert [r[0] for r in conn.execute(sql, params)] == expected(prefix, query, 10, 9000, 50, backward)
    finally:
        conn.close()


@pytest.mark.postgres
async def test_postgres_prefix_plans_use_only_indexes(pg_database: str) -> None:
    async with PostgresBackend(pg_database, limits=Limits(), node_id="plans") as backend:
        await backend.create_store("main")
        await backend.create_store("other")
        await fill(await backend.open_store("main"), 100)
        await fill(await backend.open_store("other"), 20)
    con = await asyncpg.connect(pg_database)
    try:
        await con.execute("ANALYZE")
        for prefix, query, index in CASES:
            for backward in (False, True):
                positions, params = positions_sql(
                    query, dialect="postgres", low=10, high=9000, limit=50, backward=backward, store_id="main",
                    prefix=prefix,
                )
                sql = pg_query("read_query").format(positions=positions, order="DESC" if backward else "ASC")
                plan = "\n".join(r[0] for r in await con.fetch("EXPLAIN " + sql, *params))
                # The lifecycle's stream_meta/streams joins are tiny tables a planner may scan.
                assert "Seq Scan on events" not in plan and "Seq Scan on event_tags" not in plan, plan
                if index:
                    assert index in plan, plan
                assert [r[0] for r in await con.fetch(sql, *params)] == expected(prefix, query, 10, 9000, 50, backward)
    finally:
        await con.close()
