"""Catch-up from the store's indexes: the pages of a filtered read, framed for the wire, the
next one read ahead.

Owns: `index_pages`. Must not import grpc, gater.node or gater.gateway.

Why read ahead: an index read's cost is its look-ups of scattered events (about one page of
the file per event for a 1% selection), which the store does in its reader thread; reading
the next page while the subscriber's message is sent overlaps the two. The read ahead is
given one turn of the event loop before the page goes out: its first step sends the query
(PostgreSQL), which would otherwise wait until the page was sent.

Why framed: a page comes as `EncodedBatch`es, each one message's worth of events already
framed (`EventStore.read_query_batches`), so the event loop sends them without touching
each event, and SQLite's reader hands a batch over in one go instead of an event at a time.
A subscriber limited to some streams (its permissions) reads RecordedEvents instead: each
event's stream is looked at.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

from ..store.base import EncodedBatch, EventStore, Query, RecordedEvent
from ._waits import abandon

__all__ = ["Page", "index_pages"]


Page = list[EncodedBatch] | list[RecordedEvent]


async def index_pages(
    store: EventStore, query: Query, stream_prefix: str, start: int, page_size: int, batch: int | None
) -> AsyncIterator[tuple[Page, int]]:
    """(page, head) of the events `query` and `stream_prefix` select from `start` on, up to
    `page_size` a page — framed, in batches of at most `batch` (`read_query_batches`), or,
    `batch` None, as RecordedEvents (`read_query`: for a subscriber that must look at each
    event) — until a page shorter than `page_size` (possibly empty): after it, nothing more
    matches up to its head. Every page reads up to the head the first one found (events
    appended meanwhile are the caller's to read next).
    Close it (contextlib.aclosing) to drop a page being read ahead."""

    def read(key: int, head: int | None) -> Awaitable[tuple[Page, int]]:
        if batch is None:
            return store.read_query(query, key, page_size, head=head, stream_prefix=stream_prefix)
        return store.read_query_batches(query, key, page_size, batch, head=head, stream_prefix=stream_prefix)

    ahead: asyncio.Future[tuple[Page, int]] | None = asyncio.ensure_future(read(start, None))
    try:
        while ahead is not None:
            page, head = await ahead
            ahead = None
            count, last = _extent(page)
            if count >= page_size:
                # Up to the first page's head: asking for the head again would cost PostgreSQL
                # a round trip per page; what came after it is read by the caller's next pass.
                ahead = asyncio.ensure_future(read(last + 1, head))
                await asyncio.sleep(0)  # its first step sends the query (PostgreSQL), before this page goes out
            yield page, head
    finally:
        if ahead is not None:
            abandon(ahead)  # its outcome (a store gone meanwhile) is read, not logged


def _extent(page: Page) -> tuple[int, int]:
    """(events, last position) of a page; (0, -1) when empty."""
    if not page:
        return 0, -1
    last = page[-1]
    if isinstance(last, EncodedBatch):
        return sum(b.count for b in page), last.last_position  # type: ignore[union-attr]
    return len(page), last.position
