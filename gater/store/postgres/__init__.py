"""The PostgreSQL storage backend: many nodes, one database, one global order per store.

Owns: the public name `PostgresBackend`; the parts live in private modules — `_backend`
(lifecycle, stores, LISTEN/NOTIFY), `_store` (reads, snapshots), `_writer` (group commit and
the advisory lock that keeps positions in commit order; the checks of a batch are the shared
`store/_append.py`), `_watch` (waiters), `_db` (pool, timeouts), `_errors` (the one error translation),
`_sql` and gater/store/sql/postgres/ (every statement, the versioned migrations). See docs/postgres.md.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from ._backend import PostgresBackend

__all__ = ["PostgresBackend"]
