"""The storage conformance suite over the SQLite backend (a fresh data directory per test)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gater.config import Limits
from gater.store.base import StorageBackend

from .conformance import BackendFactory, DatabaseRefused, RawSql, StoreConformance

__all__ = ["TestSqliteConformance"]


class TestSqliteConformance(StoreConformance):
    shared_storage = False

    @pytest.fixture
    def new_backend(self, tmp_path: Path, limits: Limits) -> BackendFactory:
        from gater.store.sqlite import (
            SqliteBackend,  # here, so a broken backend fails its tests only
        )

        def make() -> StorageBackend:
            return SqliteBackend(tmp_path / "data", synchronous="FULL", limits=limits)

        return make

    @pytest.fixture
    def raw_sql(self, tmp_path: Path) -> RawSql:
        def run(store_id: str, statement: str) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(tmp_path / "data" / "stores" / f"{store_id}.sqlite", isolation_level=None)
            try:
                return conn.execute(statement).fetchall()
            except sqlite3.IntegrityError as e:  # RAISE(ABORT, ...) in a trigger
                raise DatabaseRefused(str(e)) from e
            finally:
                conn.close()

        async def raw(store_id: str, statement: str) -> list[tuple[Any, ...]]:
            return await asyncio.to_thread(run, store_id, statement)

        return raw


async def test_an_import_leaves_the_positions_trigger_as_it_found_it(tmp_path: Path) -> None:
    """An import job drops the trigger that keeps positions dense and creates it again in its
    own transaction (0007): after imports that succeeded and one that failed half-way, the
    trigger's text is the migration's, and a write that skips a position is still refused."""
    import uuid

    from gater.errors import GaterError
    from gater.store.sqlite import SqliteBackend

    from .conformance import imported_event as imported

    path = tmp_path / "data" / "stores" / "main.sqlite"

    def trigger() -> str:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events_dense'").fetchone()[0]
        finally:
            conn.close()

    async with SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=Limits()) as backend:
        await backend.create_store("main")
        store = await backend.open_store("main")
        migrated = trigger()
        # Gaps, as a scavenged source leaves them: positions 3, 5 and 9.
        first = [imported(3, 0), imported(5, 1)]
        assert await store.import_events(first, starts_file=True) == (5, 2)
        assert trigger() == migrated
        # A batch that fails in the database half-way (an event id the store holds): rolled
        # back whole, trigger included.
        with pytest.raises(GaterError):
            await store.import_events([first[-1], imported(9, 2), imported(10, 3, first[0].event_id)])
        assert trigger() == migrated
        assert await store.last_position() == 5
        assert await store.import_events([first[-1], imported(9, 2)]) == (9, 1)
        assert trigger() == migrated
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="next global position"):
            conn.execute("INSERT INTO events VALUES (11, 's-1', 3, ?, 'x:v1', 1, x'00')", (str(uuid.uuid4()),))
        conn.execute("INSERT INTO events VALUES (10, 's-1', 3, ?, 'x:v1', 1, x'00')", (str(uuid.uuid4()),))
    finally:
        conn.close()
