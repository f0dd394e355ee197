"""The storage conformance suite over PostgreSQL, and what only PostgreSQL does: many nodes
on one database, migrations racing, immutable events, outages and recovery.

Each test gets a new database, so tests never see each other's data: a copy of a migrated
template (pg_fixtures.migrated_database), or, for the tests that migrate, an empty one
(pg_database).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gater.config import Limits
from gater.errors import StorageUnavailableError, StoreNotFoundError
from gater.store.base import EXPECT_ANY, EventStore, NewEvent, StorageBackend
from gater.store.postgres import PostgresBackend

from .conformance import (
    WAIT_S,
    BackendFactory,
    DatabaseRefused,
    RawSql,
    StoreConformance,
    events,
    read_everything,
)
from .pg_fixtures import SocketProxy, migrated_database, pg_database, postgres_dsn, with_host

__all__ = ["TestPostgresConformance", "TestPostgresNodes"]

pytestmark = pytest.mark.postgres

# Fixtures used by name below; imported so pytest finds them in this module.
_FIXTURES = (migrated_database, pg_database, postgres_dsn)


def make_backend(dsn: str, limits: Limits | None = None, **kwargs: object) -> PostgresBackend:
    kwargs.setdefault("command_timeout_s", 10.0)
    return PostgresBackend(dsn, limits=limits or Limits(), **kwargs)  # type: ignore[arg-type]


class TestPostgresConformance(StoreConformance):
    shared_storage = True

    @pytest.fixture
    def new_backend(self, migrated_database: str, limits: Limits) -> BackendFactory:
        def make() -> StorageBackend:
            return make_backend(migrated_database, limits, node_id="conformance")

        return make

    @pytest.fixture
    def raw_sql(self, migrated_database: str) -> RawSql:
        async def run(store_id: str, statement: str) -> list[tuple[Any, ...]]:
            # One database per test: the statements need no store_id filter to stay in it.
            con = await asyncpg.connect(migrated_database)
            try:
                return [tuple(row) for row in await con.fetch(statement)]
            except (asyncpg.RestrictViolationError, asyncpg.CheckViolationError) as e:
                raise DatabaseRefused(str(e)) from e
            finally:
                await con.close()

        return run


@pytest.fixture
async def two_nodes(migrated_database: str) -> AsyncIterator[tuple[PostgresBackend, PostgresBackend]]:
    a, b = make_backend(migrated_database, node_id="node-a"), make_backend(migrated_database, node_id="node-b")
    await asyncio.gather(a.start(), b.start())
    try:
        yield a, b
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def read_stream_positions(store: EventStore, until: int) -> list[int]:
    """Follows "$all" as a subscriber would until position `until`, checking at every page
    that no position is skipped (p + 1 never visible before p)."""
    seen: list[int] = []
    while not seen or seen[-1] < until:
        page = await store.read_all(len(seen), 50)
        assert [e.position for e in page] == list(range(len(seen), len(seen) + len(page)))
        seen.extend(e.position for e in page)
        if not page:
            await store.wait_for_position(len(seen) - 1, timeout_s=1.0)
    return seen


class TestPostgresNodes:
    async def test_nodes_share_cluster_id_and_stores(self, two_nodes: tuple[PostgresBackend, PostgresBackend]) -> None:
        a, b = two_nodes
        assert a.cluster_id == b.cluster_id
        uuid.UUID(a.cluster_id)
        await a.create_store("shared")
        store_b = await b.open_store("shared")
        await store_b.append("s", events(2), EXPECT_ANY)
        assert await (await a.open_store("shared")).stream_version("s") == 1

    async def test_many_nodes_migrate_at_once(self, pg_database: str) -> None:
        nodes = [make_backend(pg_database, node_id=f"n{i}") for i in range(6)]
        await asyncio.gather(*(n.start() for n in nodes))
        try:
            assert len({n.cluster_id for n in nodes}) == 1
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))
        con = await asyncpg.connect(pg_database)
        try:
            versions = [r["version"] for r in await con.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
            clusters = await con.fetchval("SELECT count(*) FROM cluster")
        finally:
            await con.close()
        assert versions == list(range(1, len(versions) + 1)) and versions
        assert clusters == 1

    async def test_appends_from_two_nodes_are_dense_and_in_commit_order(
        self, two_nodes: tuple[PostgresBackend, PostgresBackend]
    ) -> None:
        a, b = two_nodes
        await a.create_store("shared")
        store_a, store_b = await a.open_store("shared"), await b.open_store("shared")
        tasks, appends_each = 20, 10

        async def appender(store: EventStore, n: int) -> int:
            written = 0
            for i in range(appends_each):
                count = 1 + (n + i) % 3
                await store.append(f"s-{n % 4}", events(count), EXPECT_ANY)
                written += count
            return written

        total_task = asyncio.gather(
            *(appender(store_a, n) for n in range(tasks)), *(appender(store_b, n) for n in range(tasks))
        )
        # A follower on each node reads while the writers write; it must never see a hole.
        expected_total = sum(
            1 + (n + i) % 3 for n in range(tasks) for i in range(appends_each)
        ) * 2
        followers = asyncio.gather(
            read_stream_positions(store_a, expected_total - 1), read_stream_positions(store_b, expected_total - 1)
        )
        written = await asyncio.wait_for(total_task, 120)
        assert sum(written) == expected_total
        seen_a, seen_b = await asyncio.wait_for(followers, 120)
        assert seen_a == seen_b == list(range(expected_total))
        everything = await read_everything(store_b, page=200)
        assert [e.position for e in everything] == list(range(expected_total))
        for stream in {e.stream_id for e in everything}:
            versions = [e.version for e in everything if e.stream_id == stream]
            assert versions == list(range(len(versions)))

    async def test_wait_for_position_wakes_on_commit_from_another_node(
        self, two_nodes: tuple[PostgresBackend, PostgresBackend]
    ) -> None:
        a, b = two_nodes
        await a.create_store("shared")
        store_a, store_b = await a.open_store("shared"), await b.open_store("shared")
        waiter = asyncio.create_task(store_b.wait_for_position(-1, timeout_s=WAIT_S))
        await store_a.append("s", events(2), EXPECT_ANY)
        assert await asyncio.wait_for(waiter, WAIT_S) == 1

    async def test_store_removed_on_another_node(self, two_nodes: tuple[PostgresBackend, PostgresBackend]) -> None:
        a, b = two_nodes
        await a.create_store("shared")
        store_b = await b.open_store("shared")
        await store_b.append("s", events(1), EXPECT_ANY)
        await a.remove_store("shared")
        with pytest.raises(StoreNotFoundError):
            await store_b.append("s", events(1), EXPECT_ANY)
        with pytest.raises(StoreNotFoundError):
            await store_b.read_all(None, 10)
        with pytest.raises(StoreNotFoundError):
            await store_b.status()

    async def test_positions_hold_under_a_stricter_default_isolation(self, pg_database: str) -> None:
        """The append transaction sets READ COMMITTED itself; a database defaulting to
        SERIALIZABLE must not break the lock-then-read pattern."""
        admin = await asyncpg.connect(pg_database)
        try:
            name = await admin.fetchval("SELECT current_database()")
            await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_isolation = \'serializable\'')
        finally:
            await admin.close()
        a, b = make_backend(pg_database, node_id="a"), make_backend(pg_database, node_id="b")
        await asyncio.gather(a.start(), b.start())
        try:
            await a.create_store("s")
            stores = [await a.open_store("s"), await b.open_store("s")]
            await asyncio.wait_for(
                asyncio.gather(*(stores[n % 2].append(f"x{n % 3}", events(2), EXPECT_ANY) for n in range(40))), 60
            )
            assert [e.position for e in await read_everything(stores[0], page=100)] == list(range(80))
        finally:
            await asyncio.gather(a.stop(), b.stop())

    async def test_events_are_immutable(self, pg_database: str) -> None:
        async with make_backend(pg_database) as backend:
            await backend.create_store("s")
            await (await backend.open_store("s")).append("x", events(2), EXPECT_ANY)
            con = await asyncpg.connect(pg_database)
            try:
                for statement in (
                    "UPDATE events SET event_type = 'changed'",
                    "DELETE FROM events",
                    "TRUNCATE events CASCADE",
                ):
                    with pytest.raises(asyncpg.RestrictViolationError):
                        await con.execute(statement)
                assert await con.fetchval("SELECT count(*) FROM events") == 2
            finally:
                await con.close()
            await backend.remove_store("s")  # the one sanctioned delete still works
            with pytest.raises(StoreNotFoundError):
                await backend.open_store("s")

    async def test_removing_a_store_removes_its_event_rows(self, pg_database: str) -> None:
        """Events and tags have no foreign key to stores (0006): the removal's trigger deletes
        them, for this node's removal and for a bare DELETE of the stores row by an older node
        (which sets gater.removing_store as this one does); another store's rows stay."""
        async with make_backend(pg_database) as backend:
            for store_id in ("gone", "kept", "old"):
                await backend.create_store(store_id)
                tagged = [NewEvent(str(uuid.uuid4()), "t:v1", b"{}", tags=("t:1",)) for _ in range(3)]
                await (await backend.open_store(store_id)).append("x", tagged, EXPECT_ANY)
            await backend.remove_store("gone")
            con = await asyncpg.connect(pg_database)
            try:
                async with con.transaction():  # as an older node removes a store
                    await con.execute("SELECT set_config('gater.removing_store', 'old', true)")
                    await con.execute("DELETE FROM stores WHERE store_id = 'old'")
                for table in ("events", "event_tags"):
                    counts = dict(await con.fetch(f"SELECT store_id, count(*) FROM {table} GROUP BY store_id"))
                    assert counts == {"kept": 3}, table
                fks = await con.fetchval(
                    "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid IN ('events'::regclass, 'event_tags'::regclass)"
                )
                assert fks == 0
            finally:
                await con.close()

    async def test_cannot_connect_at_start_is_unavailable(self) -> None:
        backend = make_backend(
            with_host("postgresql:///nowhere", f"/tmp/no-such-dir-{uuid.uuid4().hex[:8]}", 5432),
            connect_timeout_s=2.0,
        )
        with pytest.raises(StorageUnavailableError, match="PostgreSQL unavailable"):
            await asyncio.wait_for(backend.start(), WAIT_S)
        await backend.stop()

    async def test_calls_after_stop_are_unavailable(self, pg_database: str) -> None:
        backend = make_backend(pg_database)
        await backend.start()
        await backend.create_store("s")
        store = await backend.open_store("s")
        await backend.stop()
        with pytest.raises(StorageUnavailableError):
            await asyncio.wait_for(store.append("x", events(1), EXPECT_ANY), WAIT_S)
        with pytest.raises(StorageUnavailableError):
            await store.read_all(None, 10)
        with pytest.raises(StorageUnavailableError):
            await backend.list_stores()

    async def test_outage_is_unavailable_then_recovers(self, pg_database: str) -> None:
        """PostgreSQL goes away (every connection cut, new ones refused) and comes back: calls
        in between fail fast with UNAVAILABLE, calls after work on reconnected pools, and a
        waiter on another node is woken by a commit made after the outage."""
        proxy = SocketProxy(pg_database)
        await proxy.restore()
        through_proxy = make_backend(proxy.dsn, node_id="proxied", command_timeout_s=5.0, connect_timeout_s=2.0)
        direct = make_backend(pg_database, node_id="direct")
        try:
            await through_proxy.start()
            await direct.start()
            await through_proxy.create_store("s")
            store = await through_proxy.open_store("s")
            await store.append("x", events(1), EXPECT_ANY)

            await proxy.cut()
            batch = events(2)
            with pytest.raises(StorageUnavailableError, match="PostgreSQL unavailable"):
                await asyncio.wait_for(store.append("x", batch, EXPECT_ANY), WAIT_S)
            with pytest.raises(StorageUnavailableError):
                await asyncio.wait_for(store.read_all(None, 10), WAIT_S)
            with pytest.raises(StorageUnavailableError):
                await asyncio.wait_for(store.wait_for_position(10, timeout_s=1.0), WAIT_S)
            with pytest.raises(StorageUnavailableError):
                await asyncio.wait_for(through_proxy.list_stores(), WAIT_S)

            await proxy.restore()
            # The retried append is idempotent: written once whether or not the first try
            # reached the database before the cut.
            result = await asyncio.wait_for(store.append("x", batch, EXPECT_ANY), WAIT_S)
            assert (result.first_version, result.version) == (1, 2)
            assert [e.position for e in await store.read_all(None, 10)] == [0, 1, 2]

            # The proxied node learns of a commit made on another node (its listener
            # reconnected, or the poller caught it).
            waiter = asyncio.create_task(store.wait_for_position(2, timeout_s=WAIT_S))
            await (await direct.open_store("s")).append("x", events(1), EXPECT_ANY)
            assert await asyncio.wait_for(waiter, WAIT_S) == 3
        finally:
            await through_proxy.stop()
            await direct.stop()
            await proxy.close()

    async def test_check_is_unavailable_while_the_database_is_down(self, pg_database: str) -> None:
        """Node health polls check(): with every connection cut and new ones refused it raises
        StorageUnavailableError (within its timeout: the call is bounded by WAIT_S only as a
        guard), and answers again once the database is back."""
        proxy = SocketProxy(pg_database)
        await proxy.restore()
        backend = make_backend(proxy.dsn, node_id="checked", command_timeout_s=5.0, connect_timeout_s=2.0)
        try:
            await backend.start()
            await backend.check(timeout_s=WAIT_S)
            await proxy.cut()
            for _ in range(3):
                with pytest.raises(StorageUnavailableError, match="PostgreSQL unavailable"):
                    await asyncio.wait_for(backend.check(timeout_s=1.0), WAIT_S)
            await proxy.restore()
            async with asyncio.timeout(WAIT_S):
                while True:  # each try is a real check; the pool reconnects by itself
                    try:
                        await backend.check(timeout_s=1.0)
                        break
                    except StorageUnavailableError:
                        continue
        finally:
            await backend.stop()
            await proxy.close()

    async def test_waiters_are_told_when_another_node_removes_the_store(
        self, two_nodes: tuple[PostgresBackend, PostgresBackend]
    ) -> None:
        a, b = two_nodes
        await a.create_store("shared")
        store_b = await b.open_store("shared")
        await store_b.append("s", events(1), EXPECT_ANY)
        waiter = asyncio.create_task(store_b.wait_for_position(10, timeout_s=WAIT_S))
        for _ in range(2):
            await store_b.append("s", events(1), EXPECT_ANY)
            assert not waiter.done()
        await a.remove_store("shared")  # node b learns it from its poller
        with pytest.raises(StoreNotFoundError):
            await asyncio.wait_for(waiter, WAIT_S)

    async def test_pool_recovers_when_the_server_drops_connections(self, pg_database: str) -> None:
        async with make_backend(pg_database, node_id="victim") as backend:
            await backend.create_store("s")
            store = await backend.open_store("s")
            await store.append("x", events(1), EXPECT_ANY)
            con = await asyncpg.connect(pg_database)
            try:
                killed = await con.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            finally:
                await con.close()
            assert killed >= 1
            assert [e.position for e in await store.read_all(None, 10)] == [0]
            batch = events(1)
            for attempt in range(3):  # a client retries UNAVAILABLE; the append is idempotent
                try:
                    result = await store.append("x", batch, EXPECT_ANY)
                    break
                except StorageUnavailableError:
                    if attempt == 2:
                        raise
            assert result.position == 1
