"""Backup and restore of one SQLite store's file, from the process that runs `gater backup` /
`gater restore` on the machine holding the data directory.

Owns: `backup_file` — SQLite's online backup API (`Connection.backup`) copying the store's
database into a new file while the node keeps serving: the copy is made in one step, inside
one read transaction of the source (WAL mode lets the node's writer go on committing), so the
backup is exactly the store as of one commit: every event committed before the backup began,
no half-written batch (positions dense, versions consistent) — and `restore_file`, which puts
such a file back as a store of a data directory no node is running on (the directory's lock
says so), built aside and renamed into place as a new store is.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import uuid
from pathlib import Path

from gater.errors import StoreAlreadyExistsError, StoreNotFoundError

from ._db import PRIVATE_FILE, connect, fsync_dir, private_dirs

__all__ = ["DataDirInUseError", "SQLITE_MAGIC", "backup_file", "restore_file"]

SQLITE_MAGIC = b"SQLite format 3\x00"
"""The first bytes of every SQLite database file (how restore tells a backup from an export)."""
_STORES = "stores"
_SUFFIX = ".sqlite"


class DataDirInUseError(Exception):
    """A node holds the data directory's lock: a store file cannot be restored under it."""


def _store_path(data_dir: Path, store_id: str) -> Path:
    return data_dir / _STORES / f"{store_id}{_SUFFIX}"


def backup_file(data_dir: Path, store_id: str, dest: Path) -> int:
    """Copies the store into `dest` (written aside, then renamed: a failed backup leaves no
    half file); returns the last position the backup holds."""
    source_path = _store_path(data_dir, store_id)
    if not source_path.exists():
        raise StoreNotFoundError(store_id)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    source = connect(source_path, "FULL", readonly=True)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        os.close(fd)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # pages=-1: every page in one step, one read transaction
            last = int(target.execute("SELECT coalesce(max(position), -1) FROM events").fetchone()[0])
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
        os.replace(partial, dest)
        fsync_dir(dest.parent)
    finally:
        source.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return last


def restore_file(data_dir: Path, store_id: str, backup: Path, *, replace: bool = False) -> int:
    """Makes `backup` the store `store_id` of `data_dir`; returns its last position. The node
    must not be running on the directory (DataDirInUseError); an existing store is replaced
    only with `replace` (else StoreAlreadyExistsError)."""
    with backup.open("rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise ValueError(f"{backup} is not a SQLite backup")
    stores = data_dir / _STORES
    private_dirs(stores)
    lock = os.open(data_dir / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUseError(f"a node is running on {data_dir}: stop it first") from None
        target = _store_path(data_dir, store_id)
        if target.exists() and not replace:
            raise StoreAlreadyExistsError(store_id)
        building = stores / f"{store_id}.{uuid.uuid4().hex[:8]}.creating"
        source = sqlite3.connect(f"{backup.absolute().as_uri()}?mode=ro", uri=True)
        try:
            fd = os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            os.close(fd)
            copy = sqlite3.connect(building)
            try:
                source.backup(copy)
                if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise ValueError(f"{backup} is damaged (PRAGMA quick_check failed)")
                last = int(copy.execute("SELECT coalesce(max(position), -1) FROM events").fetchone()[0])
                copy.execute("PRAGMA journal_mode=WAL")
            finally:
                copy.close()
            for leftover in (target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            os.replace(building, target)
            fsync_dir(stores)
        finally:
            source.close()
            with contextlib.suppress(FileNotFoundError):
                building.unlink()
        return last
    finally:
        os.close(lock)  # and with it the lock
