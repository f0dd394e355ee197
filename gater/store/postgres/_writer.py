"""Group commit: the one writer task per store on this node.

Owns: `StoreWriter` — a bounded queue of appends and the task that drains it, committing
everything queued in one transaction.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Why positions stay dense and in commit order with writers on many nodes
-----------------------------------------------------------------------
Every append transaction starts with pg_advisory_xact_lock on a key derived from the store
id, and only then, in a new statement, reads the store's last position. The lock is held
until the transaction ends, and PostgreSQL makes a transaction's commit visible before it
releases its locks. So the next writer to get the lock (on any node) is granted it only
after the previous batch is committed and visible, and its READ COMMITTED statement sees
that batch: it continues at last_position + 1 (dense, no gaps) and commits after it (commit
order equals position order). A reader therefore never sees position p + 1 committed while
p is not — which is what lets a subscriber that has seen p skip everything <= p forever.
A rolled-back batch leaves no hole either: nothing it planned was visible, and the next
writer reads the same last position it did.

Why one transaction for many appends
------------------------------------
While a batch commits, new appends queue up; the next batch takes all of them (up to
`max_batch_events`), so N concurrent appends cost about one lock, one round of queries and
one commit (one WAL flush) instead of N. Each append is still checked on its own (by
`store/_append.plan_batch`, which SQLite's writer shares), in queue order, against the state
left by the appends before it; an append that fails its check gets its own error and writes
nothing, the others go ahead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import asyncpg

from gater.errors import StoreNotFoundError

from .._append import (
    AppendRequest,
    BatchPlan,
    ExistingEvent,
    canonical_ids,
    conflict_query,
    plan_batch,
    request_streams,
)
from .._records import now_epoch_us
from ..base import AppendCondition, AppendResult, NewEvent
from ._db import Database
from ._errors import translate, unavailable
from ._sql import query

if TYPE_CHECKING:
    from gater.metrics import CommitObserver

__all__ = ["StoreWriter", "finish"]

_log = logging.getLogger(__name__)

CHANNEL = "gater_events"
"""The NOTIFY channel; the payload is "<store_id>:<last position>"."""


@dataclass(slots=True)
class _Pending:
    request: AppendRequest
    future: asyncio.Future[AppendResult]


class _Written(Protocol):
    stream_versions: dict[str, int]
    last_position: int
    new_streams: int
    record_bytes: int


async def finish(con: asyncpg.Connection, store_id: str, plan: _Written) -> None:
    """After an append's or an import's rows: stream versions, the store's head and the
    notification, in one round trip of the same transaction."""
    await con.execute(
        query("append_finish"),
        store_id,
        list(plan.stream_versions),
        list(plan.stream_versions.values()),
        plan.last_position,
        plan.new_streams,
        plan.record_bytes,
        f"{store_id}:{plan.last_position}",
    )


class StoreWriter:
    def __init__(self, db: Database, store_id: str, *, on_commit: Callable[[str, int], None],
                 queue_size: int = 4096, max_batch_events: int = 10_000,
                 commits: CommitObserver | None = None) -> None:
        self._db = db
        self._store_id = store_id
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._max_batch_events = max_batch_events
        self._closed: str | None = None
        self._commits = commits

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected: int, condition: AppendCondition | None = None
    ) -> AppendResult:
        return await self.submit(AppendRequest(stream_id, tuple(events), expected, condition))

    async def submit(self, request: AppendRequest) -> AppendResult:
        if self._closed is not None:
            raise unavailable(self._closed)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, future))
        return await future

    def close(self, reason: str) -> None:
        """Refuses new appends and fails the queued ones (the backend is stopping)."""
        self._closed = reason
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(unavailable(reason))

    async def run(self) -> None:
        """The writer loop; runs until cancelled."""
        while True:
            batch = [await self._queue.get()]
            events = len(batch[0].request.events)
            while events < self._max_batch_events and not self._queue.empty():
                pending = self._queue.get_nowait()
                batch.append(pending)
                events += len(pending.request.events)
            # A caller that gave up (deadline) before its turn is not written for.
            batch = [p for p in batch if not p.future.cancelled()]
            if not batch:
                continue
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for pending in batch:  # stopping mid-commit: the outcome is unknown
                    if not pending.future.done():
                        pending.future.set_exception(unavailable("the backend stopped during the append"))
                raise

    async def _commit(self, batch: list[_Pending]) -> None:
        requests = [p.request for p in batch]
        try:
            plan = await self._transact(requests)
        except Exception as exc:
            # The transaction failed as a whole (outage, store removed): every append in it
            # gets the error. If the commit itself was lost, the outcome is unknown; a retry
            # with the same event ids is safe (idempotent append).
            error = translate(exc, store_id=self._store_id)
            _log.warning("append batch failed", extra={"store": self._store_id, "error": repr(error)})
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        if plan.rows:
            self._on_commit(self._store_id, plan.last_position)
            if self._commits is not None:
                self._commits.committed(len(plan.rows), plan.record_bytes)
        for pending, outcome in zip(batch, plan.outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, Exception):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _transact(self, requests: list[AppendRequest]) -> BatchPlan:
        store_id = self._store_id
        async with self._db.transaction(store_id) as con:
            await con.execute(query("store_lock"), store_id)
            last_position = await con.fetchrow(query("append_head"), store_id)
            if last_position is None:
                raise StoreNotFoundError(store_id)
            streams = request_streams(requests)
            versions, deleted = {}, {}
            for row in await con.fetch(query("append_stream_versions"), store_id, streams):
                versions[row["stream_id"]] = row["version"]
                if row["deleted"]:
                    deleted[row["stream_id"]] = row["deleted"]
            # Conditional appends: the first stored event that fails each condition, read
            # under the store's lock (after it, so every earlier commit is seen), so nothing
            # can be written between check and insert — on any node.
            head = last_position["last_position"]
            conflicts = {}
            if (checks := conflict_query(requests, head, "postgres", store_id)) is not None:
                indexes, sql, params = checks  # every condition of the batch in one round trip
                row = await con.fetchrow(sql, *params)
                conflicts = {i: hit for i, hit in zip(indexes, row, strict=True) if hit is not None}
            created_epoch_us = now_epoch_us()

            def planned(existing: dict[str, ExistingEvent]) -> BatchPlan:
                return plan_batch(
                    requests,
                    last_position=last_position["last_position"],
                    stream_versions=versions,
                    existing=existing,
                    created_epoch_us=created_epoch_us,
                    conflicts=conflicts,
                    deleted=deleted,
                )

            # Optimistic: most appends carry new ids, so plan as if none existed and let the
            # unique index say otherwise. Only a conflict (or a plan with a failure, which
            # may be an idempotent repeat) costs the look-up of the ids.
            plan = planned({})
            inserted = False
            if plan.rows and not any(isinstance(o, Exception) for o in plan.outcomes):
                try:
                    async with con.transaction():  # a savepoint: a conflict undoes only this
                        await self._insert(con, created_epoch_us, plan)
                    inserted = True
                except asyncpg.UniqueViolationError:
                    pass
            if not inserted:
                existing = {
                    row["event_id"]: ExistingEvent(row["stream_id"], row["version"], row["position"])
                    for row in await con.fetch(query("append_find_ids"), store_id, canonical_ids(requests))
                }
                plan = planned(existing)
                if not plan.rows:
                    return plan
                await self._insert(con, created_epoch_us, plan)
            await finish(con, store_id, plan)
        return plan

    async def _insert(self, con: asyncpg.Connection, created_epoch_us: int, plan: BatchPlan) -> None:
        positions, stream_ids, versions, event_ids, event_types, _, records = zip(*plan.rows, strict=True)
        await con.execute(
            query("append_insert_events"),
            self._store_id,
            created_epoch_us,
            list(positions),
            list(stream_ids),
            list(versions),
            list(event_ids),
            list(event_types),
            list(records),
        )
        if plan.tag_rows:
            tags, positions = zip(*plan.tag_rows, strict=True)
            await con.execute(query("append_insert_tags"), self._store_id, list(tags), list(positions))
