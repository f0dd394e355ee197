"""The connection pool of the PostgreSQL backend and the calls made through it.

Owns: `Database` — an asyncpg pool created with connect and command timeouts, so a call
during an outage fails with StorageUnavailableError instead of hanging, and every call
translated by _errors.translating. asyncpg's pool replaces a connection it finds closed the
next time it hands it out, so the pool reconnects by itself after a PostgreSQL restart;
read-only calls are retried once when the connection they got turns out to be dead.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from gater.errors import StorageUnavailableError

from ._errors import translating, unavailable
from ._sql import query

__all__ = ["Database"]

_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.OperatorInterventionError,
    ConnectionError,
    TimeoutError,
)
"""Errors after which a connection cannot be trusted: it is terminated, not returned to the
pool (whose reset of a broken connection could wait forever), and a read is retried once."""


async def _keep_session(con: asyncpg.Connection) -> None:
    """What a pooled connection needs on release besides what asyncpg does anyway (roll back an
    open transaction, drop listeners): nothing. Its default sends `RESET ALL; UNLISTEN *; ...`,
    a round trip per use — per page of a read. Pooled connections keep no session state here:
    locks are transaction-scoped (pg_advisory_xact_lock), settings SET LOCAL, and LISTEN and
    the migrations' session lock have connections of their own (`Database.connect`)."""


class Database:
    def __init__(self, dsn: str, *, application_name: str, pool_min_size: int, pool_max_size: int,
                 connect_timeout_s: float, command_timeout_s: float) -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self._pool_min_size = pool_min_size
        self._pool_max_size = pool_max_size
        self._pool: asyncpg.Pool | None = None
        self._closed = False

    async def open(self) -> None:
        with translating():
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._pool_min_size,
                max_size=self._pool_max_size,
                timeout=self.connect_timeout_s,
                command_timeout=self.command_timeout_s,
                max_inactive_connection_lifetime=60.0,
                server_settings={"application_name": self.application_name},
                reset=_keep_session,
            )

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await pool.close()  # waits for connections in use, bounded by our timeouts
        except Exception:
            pool.terminate()

    def pool_use(self) -> tuple[int, int, int]:
        """(connections open, of which idle, maximum) of the pool, without I/O."""
        pool = self._pool
        if pool is None:
            return 0, 0, self._pool_max_size
        return pool.get_size(), pool.get_idle_size(), pool.get_max_size()

    async def connect(self) -> asyncpg.Connection:
        """A connection outside the pool (the LISTEN connection, migrations)."""
        with translating():
            return await asyncpg.connect(
                self.dsn,
                timeout=self.connect_timeout_s,
                command_timeout=self.command_timeout_s,
                server_settings={"application_name": self.application_name},
            )

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise unavailable("the backend is stopped" if self._closed else "the backend is not started")
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self, store_id: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; errors inside the block are translated."""
        pool = self._require_pool()
        with translating(store_id):
            async with pool.acquire(timeout=self.command_timeout_s) as con:
                try:
                    yield con
                except _CONNECTION_LOST:
                    # E.g. a server-side termination that asyncpg had not noticed yet when the
                    # pool handed the connection out: drop it, the pool opens a new one.
                    con.terminate()
                    raise

    @contextlib.asynccontextmanager
    async def transaction(self, store_id: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a READ COMMITTED transaction.

        READ COMMITTED is set explicitly, whatever the server's default: the append
        transaction depends on each statement taking a fresh snapshot after the store's
        advisory lock is granted (see _writer.py). Under REPEATABLE READ the snapshot would
        date from before the lock wait and positions would collide.
        """
        async with self.connection(store_id) as con, con.transaction(isolation="read_committed"):
            yield con

    async def _read(self, method: str, name: str, args: tuple[Any, ...], store_id: str | None) -> Any:
        return await self._read_sql(method, query(name), args, store_id)

    async def _read_sql(self, method: str, sql: str, args: tuple[Any, ...], store_id: str | None) -> Any:
        for attempt in (1, 2):
            try:
                async with self.connection(store_id) as con:
                    return await getattr(con, method)(sql, *args)
            except StorageUnavailableError as exc:
                # A connection the server closed (restart, failover) is only found dead
                # when used; one retry gets a fresh one from the pool.
                if attempt == 2 or not isinstance(exc.__cause__, _CONNECTION_LOST):
                    raise
        raise AssertionError("unreachable")

    async def fetch(self, name: str, *args: Any, store_id: str | None = None) -> list[asyncpg.Record]:
        return await self._read("fetch", name, args, store_id)

    async def fetch_sql(self, sql: str, *args: Any, store_id: str | None = None) -> list[asyncpg.Record]:
        """fetch, of a statement made at run time (a DCB query read)."""
        return await self._read_sql("fetch", sql, args, store_id)

    async def fetchrow(self, name: str, *args: Any, store_id: str | None = None) -> asyncpg.Record | None:
        return await self._read("fetchrow", name, args, store_id)

    async def fetchval(self, name: str, *args: Any, store_id: str | None = None) -> Any:
        return await self._read("fetchval", name, args, store_id)
