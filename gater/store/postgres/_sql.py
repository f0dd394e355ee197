"""The SQL of the PostgreSQL backend: gater/store/sql/postgres/, read by the shared loader.

Owns: `query` (one statement per `<name>.sql`), `migrations` (`NNNN_<name>.sql`, in order)
and `field_1`, the expression that frames a record for the wire.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from .._sql import Migration, SqlFiles, field_1_sql

__all__ = ["Migration", "field_1", "migrations", "query"]

_FILES = SqlFiles("postgres")
query = _FILES.query
migrations = _FILES.migrations


field_1 = field_1_sql("record", "n", lambda raw: f"'\\x{raw.hex()}'::bytea")
"""SQL: the record `record` of `n` bytes framed for the wire (`.._sql.field_1_sql`)."""
