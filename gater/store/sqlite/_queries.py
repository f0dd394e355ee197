"""The SQLite backend's query reads: DCB queries and stream prefixes from the indexes, framed
or not, and where a time begins.

Owns: `QueryReads`, the part of SqliteStore (a base class of it) behind `read_query`,
`read_query_batches` and `position_at`. Must not import grpc, gater.subscriptions,
gater.node or gater.gateway.

Why `read_query_batches` frames in SQL: Python's sqlite3 gives the GIL up for every row it
steps to and takes it back, so a reader returning a page row by row took turns with the
event loop instead of running beside it. One statement per batch returns one row — the
batch's count, last position and commit time, and its records already framed for the wire
(`_sql.field_1`) — so the reader takes the GIL once per batch and no event becomes a Python
object. `||` and `group_concat` join the bytes as they are in a UTF-8 database (every store
gater makes; `_utf8` checks).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

from gater.config import Limits

from .._lifecycle import keep_visible
from .._query import TimeBisection, positions_sql, query_read
from .._records import now_epoch_us
from ..base import EncodedBatch, Query, RecordedEvent
from . import _sql
from ._lifecycle import LifecycleJobs
from ._sql import query

__all__ = ["QueryReads"]


class QueryReads(LifecycleJobs):
    """SqliteStore's query reads (a base class of it; its reads go through LifecycleJobs'
    `_read`, which SqliteStore provides, and ask `_rules_exist`)."""

    _limits: Limits
    _utf8_text: bool | None
    last_position: Callable[[], Awaitable[int]]  # SqliteStore's

    async def read_query(
        self,
        query: Query,
        start: int | None,
        limit: int,
        backward: bool = False,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[RecordedEvent], int]:
        read = await query_read(query, start, limit, backward, head, stream_prefix, self._limits, self.last_position)
        bounds, limit = read.bounds, read.limit
        if bounds is None:
            return [], read.head

        rules = await self._rules_exist()

        def run(conn: sqlite3.Connection) -> list[RecordedEvent]:
            low, high = bounds
            out: list[RecordedEvent] = []
            while low <= high:
                positions, params = positions_sql(
                    read.query, dialect="sqlite", low=low, high=high, limit=limit, backward=backward, prefix=read.prefix
                )
                sql = _sql.query("read_query" if rules else "read_query_plain")
                rows = conn.execute(sql.format(positions=positions, order="DESC" if backward else "ASC"), params).fetchall()
                if not rules:
                    return [RecordedEvent(*row) for row in rows]
                out.extend(keep_visible(rows, now_epoch_us()))
                if len(out) >= limit or len(rows) < limit:
                    break
                if backward:
                    high = rows[-1][0] - 1
                else:
                    low = rows[-1][0] + 1
            return out[:limit]

        return await self._read("read events", run), read.head

    async def read_query_batches(
        self,
        query: Query,
        start: int | None,
        limit: int,
        batch: int,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[EncodedBatch], int]:
        # Framed by SQLite, a batch a row: the reader thread takes the GIL once per batch
        # instead of once per event, which lets it run beside the event loop instead of
        # taking turns with it, and no event becomes a Python object.
        if await self._rules_exist() or not await self._utf8():
            # Events hidden by their stream's rules are passed over in Python (keep_visible).
            return await super().read_query_batches(query, start, limit, batch, head, stream_prefix)
        read = await query_read(query, start, limit, False, head, stream_prefix, self._limits, self.last_position)
        bounds = read.bounds
        if bounds is None:
            return [], read.head
        batch = max(1, min(batch, read.limit))

        def run(conn: sqlite3.Connection) -> list[EncodedBatch]:
            low, high = bounds
            batches: list[EncodedBatch] = []
            left = read.limit
            while left > 0 and low <= high:
                size = min(batch, left)
                positions, params = positions_sql(
                    read.query, dialect="sqlite", low=low, high=high, limit=size, backward=False, prefix=read.prefix
                )
                count, last, created, framed = conn.execute(_sql.read_query_batch(positions), params).fetchone()
                if not count:
                    break
                batches.append(EncodedBatch(count, last, created, framed))
                if count < size:
                    break
                left -= count
                low = last + 1
            return batches

        return await self._read("read events", run), read.head

    async def _utf8(self) -> bool:
        """Whether the file's text is UTF-8, so that SQLite's "||" joins bytes as they are
        (every store gater makes is; one made elsewhere might not be)."""
        if self._utf8_text is None:
            self._utf8_text = await self._read(
                "read the text encoding", lambda conn: conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-8"
            )
        return self._utf8_text

    async def position_at(self, epoch_us: int) -> int:
        bisection = TimeBisection(epoch_us, await self.last_position())
        sql = query("first_event_at")

        def bisect(conn: sqlite3.Connection) -> int:
            while (probe := bisection.probe()) is not None:
                bisection.found(conn.execute(sql, (probe,)).fetchone())
            return bisection.start

        return await self._read("find a time", bisect)

