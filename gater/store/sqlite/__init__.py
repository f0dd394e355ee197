"""The SQLite storage backend: one database file per store, for one node.

Owns: the public names `SqliteBackend` and `SqliteStore`; the parts live in private modules,
cut along the same seams as store/postgres/ — `_backend` (the data directory's lock and
cluster id, the registry of stores, the janitor that closes idle stores), `_store` (one
store's calls and what it holds while in use), `_writer` (the writer thread: group commit
through the shared planner, store/_append.py), `_db` (connections, migrations, building a new
store's file, the readers' connections), `_errors` (the one error translation), `_sql` and
gater/store/sql/sqlite/ (every statement, the versioned migrations), `_transfer` (export views
and import batches), `_backup` (a store file's online backup and its restore).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from ._backend import DEFAULT_IDLE_CLOSE_S, SqliteBackend
from ._backup import SQLITE_MAGIC, DataDirInUseError, backup_file, restore_file
from ._store import SqliteStore

__all__ = [
    "DEFAULT_IDLE_CLOSE_S",
    "SQLITE_MAGIC",
    "DataDirInUseError",
    "SqliteBackend",
    "SqliteStore",
    "backup_file",
    "restore_file",
]
