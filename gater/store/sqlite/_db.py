"""Connections to one store's SQLite file: opening, migrating, creating, and the readers' pool.

Owns: `connect`, `migrate`, `build` (a new store's file, made under a temporary name), the
modes of what the backend creates (`PRIVATE_FILE`, `private_dirs`) and `Readers` (the read-only connections of one store, opened on demand and closed when the store
is idle). Everything here blocks: it runs in the writer thread, the reader threads or
`asyncio.to_thread`, never on the event loop.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gater.errors import StoreNotFoundError

from .._records import now_epoch_us
from ._sql import migrations, query

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "Readers",
    "build",
    "connect",
    "fsync_dir",
    "migrate",
    "open_files",
    "private_dirs",
    "remove_files",
    "run_once",
    "store_info",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
"""Modes of the directories and files the backend creates: events are nobody else's to read."""


def private_dirs(path: Path) -> None:
    """Creates `path` and its missing parents with mode 0700 (os.makedirs gives parents the
    umask's default); directories that exist are left as they are."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else: theirs
            directory.mkdir(mode=PRIVATE_DIR)
            directory.chmod(PRIVATE_DIR)  # mkdir's mode is narrowed by the umask, never widened


READER_MMAP_BYTES = 1 << 40
"""Bytes of a store's file its readers memory-map (capped by SQLite's SQLITE_MAX_MMAP_SIZE)."""


def connect(path: Path, synchronous: str, *, readonly: bool) -> sqlite3.Connection:
    # mode=rw: a store whose file is gone is an error, never a new empty file.
    conn = sqlite3.connect(
        _uri(path, "rw"), uri=True, isolation_level=None, check_same_thread=False, timeout=30
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # The writer keeps index pages of recent events hot; readers mostly stream fresh pages.
        conn.execute(f"PRAGMA cache_size={-8192 if readonly else -32768}")  # KiB: 8 MiB / 32 MiB
        if readonly:
            conn.execute("PRAGMA query_only=1")
            # Readers map the file instead of copying each page through read(): a catch-up by
            # tag looks up one scattered event per page, and the copy was a third of it.
            # (SQLite caps the map at its compile-time limit, 2 GiB in Debian's build; pages past
            # it are read as before. Writes never go through the map.)
            conn.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
    except BaseException:
        conn.close()
        raise
    return conn


def _uri(path: Path, mode: str) -> str:
    return f"{path.absolute().as_uri()}?mode={mode}"


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script; trigger bodies (BEGIN ... END;) stay whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("--")):
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements


def migrate(conn: sqlite3.Connection, store_id: str) -> None:
    """Applies the migrations the file lacks, each in its own transaction (the first also
    records the store's id and creation time in `meta`)."""
    have = conn.execute("PRAGMA user_version").fetchone()[0]
    for migration in migrations()[have:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(migration.sql):
                conn.execute(statement)
            if migration.version == 1:
                conn.execute(query("meta_init"), (store_id, str(now_epoch_us())))
            conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                conn.execute("ROLLBACK")
            raise
        log.info("migrated store", extra={"store": store_id, "schema_version": migration.version})


def store_info(path: Path, store_id: str, synchronous: str) -> tuple[int, int]:
    """(created_epoch, last position) of an existing store, migrated to the current schema
    first; the connection is closed again, so the store holds nothing afterwards."""
    conn = connect(path, synchronous, readonly=False)
    try:
        migrate(conn, store_id)
        created = int(conn.execute(query("meta_created")).fetchone()[0])
        last_position = conn.execute(query("last_position")).fetchone()[0]
        return created, last_position
    finally:
        conn.close()


def _siblings(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))]


def build(path: Path, store_id: str) -> int:
    """Makes a new store's database at `path`, a temporary name the caller renames into
    place; returns its created_epoch. On any failure (a full disk) nothing is left at `path`.

    Why this way: the schema is written with an in-memory journal straight into the file, then
    the file is switched to WAL, closed and fsynced, so that the one file holds everything.
    Renaming it into place is then the whole commit of a create: a crash or a full disk
    before it leaves only a temporary file (removed at the next start), never a store that
    exists but cannot be opened.
    """
    conn = None
    try:
        # SQLite would create the file 0644; made here 0600, its WAL and shared-memory files
        # later take the same mode (SQLite copies the database file's).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        conn = sqlite3.connect(_uri(path, "rwc"), uri=True, isolation_level=None)
        conn.execute("PRAGMA journal_mode=MEMORY")
        conn.execute("PRAGMA synchronous=OFF")  # made durable by the fsync below
        migrate(conn, store_id)
        created = int(conn.execute(query("meta_created")).fetchone()[0])
        if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("could not switch the new store to WAL")
        conn.close()
        conn = None
        if any(p.exists() for p in _siblings(path)[1:]):
            raise sqlite3.OperationalError("the new store's journal was not folded into its file")
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return created
    except BaseException:
        if conn is not None:
            conn.close()
        remove_files(path)
        raise


def remove_files(path: Path) -> None:
    """A store's database file and its journal, WAL and shared-memory siblings."""
    for p in _siblings(path):
        p.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Makes a rename or an unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Readers:
    """The read-only connections of one store: borrowed by the shared reader threads, opened
    when none is free, closed by `close_idle` (the store went idle) or `close` (removed).

    Thread-safe: a lock guards the lists; connections are opened and closed outside it.
    """

    def __init__(self, path: Path, synchronous: str, store_id: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._store_id = store_id
        self._cond = threading.Condition()
        self._idle: list[sqlite3.Connection] = []
        self._busy = 0
        self._closed = False

    @property
    def count(self) -> int:
        """Connections open now (idle or in use)."""
        with self._cond:
            return len(self._idle) + self._busy

    @property
    def busy(self) -> int:
        """Connections in use by a read now."""
        with self._cond:
            return self._busy

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Runs `fn` with a connection of this store (in a reader thread)."""
        with self._cond:
            if self._closed:
                raise StoreNotFoundError(self._store_id)
            conn = self._idle.pop() if self._idle else None
            self._busy += 1
        try:
            if conn is None:
                conn = connect(self._path, self._synchronous, readonly=True)
            return fn(conn)
        finally:
            with self._cond:
                self._busy -= 1
                keep = conn is not None and not self._closed
                if keep:
                    self._idle.append(conn)  # type: ignore[arg-type]
                self._cond.notify_all()
            if conn is not None and not keep:
                conn.close()

    def close_idle(self) -> None:
        """Closes the connections nobody is using (busy ones stay until they come back)."""
        with self._cond:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        """Refuses new reads and closes every connection, waiting for reads in progress."""
        with self._cond:
            self._closed = True
            while self._busy:
                self._cond.wait()
        self.close_idle()


def run_once(path: Path, synchronous: str, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Runs `fn` on a connection opened for it and closed after (status asks, which must not
    keep an idle store open)."""
    conn = connect(path, synchronous, readonly=True)
    try:
        return fn(conn)
    finally:
        conn.close()


def open_files(path: Path) -> int:
    """How many of this process's file descriptors point at the store's files (Linux:
    /proc/self/fd); 0 where that cannot be counted."""
    names = {os.path.realpath(p) for p in _siblings(path)}
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}") in names:
                    count += 1
    return count
