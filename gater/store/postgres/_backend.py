"""The PostgreSQL storage backend: pool, schema migrations, stores, LISTEN/NOTIFY.

Owns: `PostgresBackend` — its lifecycle (start migrates the schema, opens the pool, starts
the listener and the poller; stop is idempotent), the stores table and the store handles.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Layout: one set of tables shared by every store, keyed by store_id, rather than a schema per
store — creating or removing a store is a transactional INSERT/DELETE any node can make at
run time, and migrations run once for everything (see docs/postgres.md).

Background tasks (owned here, cancelled and awaited by stop()):
- one `StoreWriter` task per store appended to on this node (group commit), started by the
  store's first append here;
- the listener: one dedicated connection that LISTENs on "gater_events" and feeds
  `PositionWatch`; it reconnects with back-off when the connection is lost;
- the poller: every `poll_interval_s`, for stores somebody waits on, reads the last positions
  — the fallback when a notification was missed (listener down, reconnecting) — and tells
  the waiters of a store that is gone (removed on any node).
They are plain tasks in a set rather than a TaskGroup: a TaskGroup cancels the task that
entered it when a child fails, and start() returns long before these end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import urllib.parse
from collections.abc import Coroutine
from typing import Any

import asyncpg

from gater.config import Limits
from gater.errors import StoreAlreadyExistsError, StoreNotFoundError
from gater.metrics import Metric, Metrics, gauge

from .._records import now_epoch_us
from ..base import EventStore, StorageBackend, StoreInfo
from ._db import Database
from ._errors import translating, unavailable
from ._sql import migrations, query
from ._store import PostgresEventStore
from ._watch import PositionWatch
from ._writer import CHANNEL, StoreWriter

__all__ = ["PostgresBackend"]

_log = logging.getLogger(__name__)


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for config() and logs."""
    parts = urllib.parse.urlsplit(dsn)
    query_items = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and all(k != "password" for k, _ in query_items):
        return dsn
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hosts}"
    query_text = urllib.parse.urlencode(
        [(k, "***" if k == "password" else v) for k, v in query_items], safe="/*"
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query_text}" if query_text else "")


class PostgresBackend(StorageBackend):
    """Stores in one PostgreSQL database, shared by any number of nodes."""

    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass, safe as a default
        node_id: str | None = None,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 15.0,
        migrate_timeout_s: float = 300.0,
        poll_interval_s: float = 0.5,
        listener_retry_max_s: float = 5.0,
        append_queue_size: int = 4096,
        metrics: Metrics | None = None,
    ) -> None:
        self._limits = limits
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}"
        self._db = Database(
            dsn,
            application_name=f"gater {self.node_id}"[:63],
            pool_min_size=pool_min_size,
            pool_max_size=pool_max_size,
            connect_timeout_s=connect_timeout_s,
            command_timeout_s=command_timeout_s,
        )
        self._migrate_timeout_s = migrate_timeout_s
        self._poll_interval_s = poll_interval_s
        self._listener_retry_max_s = listener_retry_max_s
        self._append_queue_size = append_queue_size
        self._watch = PositionWatch()
        self._stores: dict[str, PostgresEventStore] = {}
        self._writers: dict[str, tuple[StoreWriter, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cluster_id: str | None = None
        self._durability = "synchronous_commit=on"
        self._listening = asyncio.Event()
        self._started = False
        self._stopped = False
        self._metrics = metrics
        if metrics is not None:
            metrics.collect(self._collect)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def cluster_id(self) -> str:
        if self._cluster_id is None:
            raise RuntimeError("PostgresBackend.cluster_id is known once start() returned")
        return self._cluster_id

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._migrate()
        await self._db.open()
        with translating():
            async with self._db.connection() as con:
                self._cluster_id = await con.fetchval(query("cluster_id"))
                self._durability = f"synchronous_commit={await con.fetchval(query('durability'))}"
        self._spawn(self._listen(), "listener")
        self._spawn(self._poll(), "poller")
        _log.info("postgres backend started", extra={"node": self.node_id, "cluster_id": self._cluster_id})

    async def stop(self) -> None:
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        for writer, _task in self._writers.values():
            writer.close("the backend is stopped")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer, _task in self._writers.values():
            writer.close("the backend is stopped")  # anything queued while tasks were ending
        self._writers.clear()
        self._stores.clear()
        self._watch.close(unavailable("the backend is stopped"))
        await self._db.close()

    def _collect(self) -> list[Metric]:
        """Scrape time: the pool's use, the listener, and the head of every store handle."""
        size, idle, maximum = self._db.pool_use()
        pool = gauge("gater_postgres_pool_connections", "Connections of the node's pool, by state.", ["state"])
        pool.add_metric(["in_use"], size - idle)
        pool.add_metric(["idle"], idle)
        limit = gauge("gater_postgres_pool_max_connections", "Most connections the node's pool opens.")
        limit.add_metric([], maximum)
        listening = gauge(
            "gater_postgres_listener_up", "1 while the LISTEN connection is up (0: commits of other nodes are polled)."
        )
        listening.add_metric([], 1 if self._listening.is_set() else 0)
        head = gauge("gater_store_head_position", "Last global position committed, by store.", ["store"])
        for store_id, store in list(self._stores.items()):
            head.add_metric([store_id], store.known_position())
        return [pool, limit, listening, head]

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"gater.postgres.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("postgres backend task %s crashed", task.get_name(), exc_info=task.exception())

    async def _migrate(self) -> None:
        """Applies the migrations this database lacks, one node at a time.

        A session-level advisory lock serialises nodes starting together: the first applies
        the missing migrations (each in its own transaction, recorded in schema_migrations),
        the others wait for the lock and then find nothing left to do.
        """
        con = await self._db.connect()
        try:
            with translating():
                timeout = self._migrate_timeout_s
                await con.execute(query("migration_lock"), timeout=timeout)
                try:
                    await con.execute(query("migrations_bootstrap"), timeout=timeout)
                    applied = {r["version"] for r in await con.fetch(query("migrations_applied"))}
                    for migration in migrations():
                        if migration.version in applied:
                            continue
                        async with con.transaction():
                            await con.execute(migration.sql, timeout=timeout)
                            await con.execute(
                                query("migration_record"), migration.version, migration.name, now_epoch_us()
                            )
                        _log.info("applied migration %04d_%s", migration.version, migration.name)
                finally:
                    await con.execute(query("migration_unlock"))
        finally:
            with contextlib.suppress(Exception):
                await con.close(timeout=self._db.connect_timeout_s)

    async def check(self, timeout_s: float = 2.0) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self._db.fetchval("health_check")
        except TimeoutError:
            raise unavailable(f"no answer within {timeout_s:g} s") from None

    # -- stores ------------------------------------------------------------------------------

    async def create_store(self, store_id: str) -> StoreInfo:
        async with self._db.connection(store_id) as con:
            created = await con.fetchval(query("store_create"), store_id, now_epoch_us())
        if created is None:
            raise StoreAlreadyExistsError(store_id)
        return StoreInfo(store_id, created)

    async def remove_store(self, store_id: str) -> None:
        # The store's writer lock first: a batch committing on any node finishes before the
        # rows go, and none starts until they are gone (it then finds no store).
        async with self._db.transaction(store_id) as con:
            await con.execute(query("store_lock"), store_id)
            await con.execute(query("store_allow_remove"), store_id)
            status = await con.execute(query("store_remove"), store_id)
        # The store's writer stays: handles opened before keep working against the database,
        # where appends now find no store (StoreNotFoundError) — exactly as on other nodes —
        # and a store re-created under the same id reuses it.
        self._stores.pop(store_id, None)
        self._watch.forget(store_id)
        if status.split()[-1] == "0":
            raise StoreNotFoundError(store_id)

    async def list_stores(self) -> list[StoreInfo]:
        rows = await self._db.fetch("store_list")
        return [StoreInfo(r["store_id"], r["created_epoch"]) for r in rows]

    async def open_store(self, store_id: str) -> EventStore:
        store = self._stores.get(store_id)
        if store is not None:
            return store
        if await self._db.fetchrow("store_get", store_id, store_id=store_id) is None:
            raise StoreNotFoundError(store_id)
        store = self._stores.get(store_id)  # another caller may have opened it meanwhile
        if store is None:
            store = PostgresEventStore(
                store_id,
                db=self._db,
                watch=self._watch,
                writer=lambda: self._writer(store_id),
                writing=lambda: store_id in self._writers,
                limits=self._limits,
                describe=lambda: (redact_dsn(self._db.dsn), self._durability),
            )
            self._stores[store_id] = store
        return store

    def _writer(self, store_id: str) -> StoreWriter:
        """The store's writer on this node, started by its first append."""
        entry = self._writers.get(store_id)
        if entry is None:
            if self._stopped or not self._started:
                raise unavailable("the backend is stopped" if self._stopped else "the backend is not started")
            writer = StoreWriter(
                self._db,
                store_id,
                on_commit=self._watch.advance,
                queue_size=self._append_queue_size,
                max_batch_events=self._limits.max_events_per_append,
                commits=self._metrics.commits(self.name, store_id) if self._metrics is not None else None,
            )
            entry = (writer, self._spawn(writer.run(), f"writer.{store_id}"))
            self._writers[store_id] = entry
        return entry[0]

    # -- commits from other nodes --------------------------------------------------------------

    def _on_notify(self, _con: object, _pid: int, _channel: str, payload: str) -> None:
        store_id, _, position = payload.rpartition(":")
        try:
            self._watch.advance(store_id, int(position))
        except ValueError:
            _log.warning("ignoring malformed notification %r", payload)

    async def _listen(self) -> None:
        """Keeps one connection LISTENing; reconnects with back-off when it is lost."""
        delay = 0.1
        while True:
            con: asyncpg.Connection | None = None
            try:
                con = await self._db.connect()
                lost = asyncio.Event()
                con.add_termination_listener(lambda _c, lost=lost: lost.set())
                await con.add_listener(CHANNEL, self._on_notify)
                self._listening.set()
                delay = 0.1
                await self._poll_once()  # commits made while we were not listening
                while not lost.is_set():
                    # A half-open TCP connection does not end by itself: ping it now and then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 10.0)
                    if not lost.is_set():
                        await con.execute("SELECT 1", timeout=self._db.command_timeout_s)
                _log.warning("postgres listener connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("postgres listener: %s; retrying in %.1fs", exc, delay)
            finally:
                self._listening.clear()
                if con is not None:
                    with contextlib.suppress(Exception):
                        con.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._listener_retry_max_s)

    async def _poll_once(self) -> None:
        stores = self._watch.waited_stores()
        if not stores:
            return
        found = set()
        for row in await self._db.fetch("stores_last_positions", stores):
            found.add(row["store_id"])
            if self._watch.advance(row["store_id"], row["last_position"]) and self._metrics is not None:
                # A commit no notification had told of yet: NOTIFY lost, late, or not listening.
                self._metrics.postgres_notify_fallbacks.inc()
        for store_id in set(stores) - found:  # removed, by this node or another one
            self._watch.forget(store_id)

    async def _poll(self) -> None:
        """The fallback for missed notifications: cheap, and only for stores waited on."""
        while True:
            await asyncio.sleep(self._poll_interval_s)
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.debug("postgres poll failed: %s", exc)
