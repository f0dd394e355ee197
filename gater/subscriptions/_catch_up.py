"""Catch-up from the store's indexes: the pages of a filtered read, the next one read ahead.

Owns: `index_pages`. Must not import grpc, gater.node or gater.gateway.

Why read ahead: an index read's cost is its look-ups of scattered events (about one page of
the file per event for a 1% selection), which the store does in its reader thread; reading
the next page while the subscriber's message is framed and sent overlaps the two. The read
ahead is given one turn of the event loop before the page goes out: its first step sends the
query (PostgreSQL), which would otherwise wait until the page was framed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..store.base import EventStore, Query, RecordedEvent
from ._waits import abandon

__all__ = ["index_pages"]


async def index_pages(
    store: EventStore, query: Query, stream_prefix: str, start: int, page_size: int
) -> AsyncIterator[tuple[list[RecordedEvent], int]]:
    """(page, head) of `store.read_query` from `start` on, page after page, until a page
    shorter than `page_size` (possibly empty): after it, nothing more matches up to its head.
    Every page reads up to the head the first one found (events appended meanwhile are the
    caller's to read next).
    Close it (contextlib.aclosing) to drop a page being read ahead."""
    ahead: asyncio.Future[tuple[list[RecordedEvent], int]] | None = asyncio.ensure_future(
        store.read_query(query, start, page_size, stream_prefix=stream_prefix)
    )
    try:
        while ahead is not None:
            page, head = await ahead
            ahead = None
            if len(page) >= page_size:
                # Up to the first page's head: asking for the head again would cost PostgreSQL
                # a round trip per page; what came after it is read by the caller's next pass.
                ahead = asyncio.ensure_future(
                    store.read_query(query, page[-1].position + 1, page_size, head=head, stream_prefix=stream_prefix)
                )
                await asyncio.sleep(0)  # its first step sends the query (PostgreSQL), before this page goes out
            yield page, head
    finally:
        if ahead is not None:
            abandon(ahead)  # its outcome (a store gone meanwhile) is read, not logged
