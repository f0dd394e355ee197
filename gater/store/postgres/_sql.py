"""The SQL of the PostgreSQL backend: gater/store/sql/postgres/, read by the shared loader.

Owns: `query` (one statement per `<name>.sql`) and `migrations` (`NNNN_<name>.sql`, in order).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from .._sql import Migration, SqlFiles

__all__ = ["Migration", "migrations", "query"]

_FILES = SqlFiles("postgres")
query = _FILES.query
migrations = _FILES.migrations
