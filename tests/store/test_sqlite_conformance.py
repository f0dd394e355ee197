"""The storage conformance suite over the SQLite backend (a fresh data directory per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gater.config import Limits
from gater.store.base import StorageBackend

from .conformance import BackendFactory, StoreConformance

__all__ = ["TestSqliteConformance"]


class TestSqliteConformance(StoreConformance):
    @pytest.fixture
    def new_backend(self, tmp_path: Path) -> BackendFactory:
        from gater.store.sqlite import (
            SqliteBackend,  # here, so a broken backend fails its tests only
        )

        def make() -> StorageBackend:
            return SqliteBackend(tmp_path / "data", synchronous="FULL", limits=Limits())

        return make
