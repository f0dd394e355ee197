"""The SQL of the SQLite backend: gater/store/sql/sqlite/, read by the shared loader.

Owns: `query` (one statement per `<name>.sql`), `rows` (a statement with its `{rows}` mark
filled for a number of rows), `migrations` (`NNNN_<name>.sql`, in order, applied by
`PRAGMA user_version`) and `field_1`, the expression that frames a record for the wire.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import sqlite3

from .._sql import Migration, SqlFiles, field_1_sql

__all__ = ["IN_ORDER", "Migration", "field_1", "migrations", "query", "read_query_batch", "rows"]

_FILES = SqlFiles("sqlite")
query = _FILES.query
rows = _FILES.rows
migrations = _FILES.migrations


field_1 = field_1_sql("record", "n", lambda raw: f"x'{raw.hex()}'")
"""SQL: the record `record` of `n` bytes framed for the wire (`.._sql.field_1_sql`)."""

IN_ORDER = " ORDER BY position" if sqlite3.sqlite_version_info >= (3, 44) else ""
"""An aggregate's own ORDER BY (SQLite 3.44 and later); before it, an aggregate takes the
rows in the order its subquery gives them, which is what read_query_batch relies on."""


def read_query_batch(positions: str) -> str:
    """read_query_batch.sql for a batch whose positions `positions` selects."""
    return _READ_QUERY_BATCH.replace("{positions}", positions)


_READ_QUERY_BATCH = query("read_query_batch").replace("{field_1}", field_1).replace("{in_order}", IN_ORDER)
"""The statement with what never changes filled in once (the framing is 8 KB of SQL)."""
