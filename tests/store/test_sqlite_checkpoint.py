"""The SQLite store's checkpoint thread: the write-ahead log reaches the database file without
the writer copying it, the writer's own checkpoint is only a backstop, and the thread and its
connection end with the writer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from gater.config import Limits
from gater.store.base import EXPECT_ANY
from gater.store.sqlite import SqliteBackend
from gater.store.sqlite._checkpoint import BACKSTOP_PAGES, CHANGES_PER_CHECKPOINT, Checkpointer

from .conformance import WAIT_S, events
from .test_sqlite_resources import store_files

__all__: list[str] = []


def _wal_database(path: Path) -> sqlite3.Connection:
    """A WAL database whose connection never checkpoints by itself, with rows in its log."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,) for _ in range(2000)])
    return conn


def test_a_requested_checkpoint_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = _wal_database(path)
    before = path.stat().st_size
    checkpointer = Checkpointer("t", path, "NORMAL")
    checkpointer.start()
    try:
        checkpointer.request()
        assert checkpointer.wait_for(lambda c: c.passes >= 1, WAIT_S)
        # The 2,000 rows of 1,000 bytes were in the log only; now the file holds them.
        assert path.stat().st_size > before + 1_000_000
        assert writer.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
    finally:
        checkpointer.stop()
        writer.close()
    assert not any(t.name == "sqlite-checkpoint-t" for t in threading.enumerate())


def test_a_checkpoint_that_fails_leaves_the_thread_running_for_the_next(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "db.sqlite"  # no such directory: connecting fails
    checkpointer = Checkpointer("t", path, "NORMAL")
    checkpointer.start()
    try:
        checkpointer.request()
        assert checkpointer.wait_for(lambda c: c.failures == 1, WAIT_S)
        assert checkpointer.passes == 0
        path.parent.mkdir()
        _wal_database(path).close()
        checkpointer.request()
        assert checkpointer.wait_for(lambda c: c.passes >= 1, WAIT_S)
    finally:
        checkpointer.stop()


async def test_the_writer_asks_for_checkpoints_and_keeps_its_own_only_as_a_backstop(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, synchronous="NORMAL", limits=Limits()) as backend:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        for _ in range(CHANGES_PER_CHECKPOINT // 500 + 1):
            await store.append("s", events(500), EXPECT_ANY)
        writer = store._writer
        assert writer is not None
        assert writer._checkpointer.wait_for(lambda c: c.passes >= 1, WAIT_S)
        assert any(t.name == "sqlite-checkpoint-alpha" for t in threading.enumerate())
        # Read by a job, in the writer's own connection.
        assert await store._job(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == BACKSTOP_PAGES
    # The checkpoint thread ends with the writer, and its connection with it.
    assert not any(t.name == "sqlite-checkpoint-alpha" for t in threading.enumerate())
    assert store_files(data_dir, "alpha") == []
