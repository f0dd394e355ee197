"""The SQL of the SQLite backend: gater/store/sql/sqlite/, read by the shared loader.

Owns: `query` (one statement per `<name>.sql`), `rows` (a statement with its `{rows}` mark
filled for a number of rows) and `migrations` (`NNNN_<name>.sql`, in order, applied by
`PRAGMA user_version`).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from .._sql import Migration, SqlFiles

__all__ = ["Migration", "migrations", "query", "rows"]

_FILES = SqlFiles("sqlite")
query = _FILES.query
rows = _FILES.rows
migrations = _FILES.migrations
