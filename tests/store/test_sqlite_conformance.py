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
