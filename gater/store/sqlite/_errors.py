"""Translation of sqlite3 and file-system errors into gater.errors — the one place it happens.

Owns: `translate`.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

A full disk (SQLITE_FULL, or ENOSPC/EDQUOT from the file system) is StorageFullError, which
servers answer RESOURCE_EXHAUSTED: retrying cannot help until someone frees space, so it must
not look like an outage (UNAVAILABLE, which clients and gateways retry). Busy or locked
databases and other I/O failures are StorageUnavailableError.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from gater.errors import GaterError, InternalError, StorageFullError, StorageUnavailableError

__all__ = ["translate"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
_SQLITE_IOERR_SHMSIZE = 10 | (19 << 8)
"""The shared-memory index could not grow: on Linux, only a full disk does that."""


def _is_full(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in _FULL_ERRNOS
    code = getattr(e, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF == _SQLITE_FULL or code == _SQLITE_IOERR_SHMSIZE)


def translate(e: BaseException, what: str, data_dir: Path) -> Exception:
    """The gater error for a sqlite3 or OSError met while trying to `what` ("append")."""
    if isinstance(e, GaterError):
        return e
    if _is_full(e):
        return StorageFullError(
            f"the disk holding the data directory {data_dir} is full: could not {what}; "
            "free space there, then retry"
        )
    code = getattr(e, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StorageUnavailableError(f"SQLite busy while trying to {what}; retry")
    if isinstance(e, sqlite3.DatabaseError | OSError):
        return StorageUnavailableError(f"SQLite failed to {what}: {e}")
    return InternalError(f"SQLite failed to {what}")
