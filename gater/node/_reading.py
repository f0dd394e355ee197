"""ReadEvents as a paced stream: what one read holds is bounded by what its client takes.

Owns: `ReadPacer` (pure: how many events to ask the store for next, and how many bytes the
next message may carry: small at first, doubling each time the client's flow control took a
message), `SendBudget` (node-wide: bytes of messages written but not yet taken by their
clients; while it is spent, every read gets the smallest messages), and `read_messages` (the
shell: one page at a time, each framed into messages that are yielded one by one; the stream
handler writes a message and asks for the next only once the transport took it, so a read
whose client stops reading holds one small message and nothing else).
Must not import grpc or gater.gateway.

Read-ahead, bounded: once the client took a message of a page, the next page is read while
the rest of this one goes out — with a grant of its own from the SendBudget, and only while the
budget has room for it. A read whose client takes nothing holds one page and no read-ahead
(an unbounded read-ahead held a second page per stream whether or not its client read: 1,000
unread reads of 1 KB events took 1.6 GB); a node full of slow readers reads as before, a page
at a time. What it buys: the store reads the next page while this one is framed and sent, so
a read bound by its store (a query read's look-ups on PostgreSQL) overlaps the two
(docs/BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from .. import _wire
from ..config import Limits
from ..store.base import ALL_STREAM, EncodedBatch, EventStore, RecordedEvent
from ..subscriptions._waits import abandon
from ._convert import record_as_json, record_room

__all__ = ["FIRST_MESSAGE_BYTES", "MAX_MESSAGE_BYTES", "ReadPacer", "SendBudget", "paged_messages", "read_messages"]

FIRST_MESSAGE_BYTES = 16 * 1024
"""What a read's first message may carry, and every message while the SendBudget is spent."""
MAX_MESSAGE_BYTES = 1024 * 1024
"""What a message may grow to for a client that keeps taking them (a record bigger than the
allowance still goes, alone: up to Limits.max_response_bytes)."""
_FIRST_GUESS_BYTES = 1024
"""Size assumed for a record before one was seen."""


class SendBudget:
    """Bytes that the node's reads hold, from the page read for a message until the client's
    flow control took the message: a read takes a grant before reading a page and gives it
    back once the page's last message was taken."""

    __slots__ = ("limit_bytes", "used_bytes")

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.used_bytes = 0

    def acquire(self, wanted: int, minimum: int) -> int:
        """A grant of `wanted` bytes while the budget has room for them, else of `minimum`
        (granted even past the limit: a read always goes on, in small steps)."""
        granted = wanted if self.used_bytes + wanted <= self.limit_bytes else min(wanted, minimum)
        self.used_bytes += granted
        return granted

    def try_acquire(self, wanted: int) -> int:
        """A grant of `wanted` bytes if the budget has room for them, else 0 (nothing taken):
        for a read-ahead, which is worth nothing once the node holds what it may."""
        if self.used_bytes + wanted > self.limit_bytes:
            return 0
        self.used_bytes += wanted
        return wanted

    def release(self, granted: int) -> None:
        self.used_bytes -= granted


class ReadPacer:
    """How big the next page and message of one read may be."""

    __slots__ = ("_mean_bytes", "allowance", "max_bytes", "max_events", "min_bytes")

    def __init__(self, max_events: int, min_bytes: int = FIRST_MESSAGE_BYTES, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_events = max_events
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.allowance = min_bytes
        """Bytes the next message may carry (more when the client keeps up)."""
        self._mean_bytes = _FIRST_GUESS_BYTES

    def page_events(self, allowance: int, remaining: int | None) -> int:
        """Events to ask the store for: about `allowance` bytes of them, 1..max_events."""
        n = max(1, min(self.max_events, allowance // self._mean_bytes))
        return n if remaining is None else min(n, remaining)

    def observe(self, records: list[bytes]) -> None:
        """A page arrived: its records' sizes tell how many to ask for next time."""
        if records:
            self.observe_framed(len(records), sum(len(r) for r in records))

    def observe_framed(self, count: int, size: int) -> None:
        """A page of `count` records, `size` bytes in all, arrived."""
        self._mean_bytes = max(1, size // count)

    def taken(self) -> None:
        """The client's flow control took a message: the next one may be bigger."""
        self.allowance = min(self.max_bytes, self.allowance * 2)

    @staticmethod
    def cut(records: list[bytes], start: int, allowance: int, max_message_bytes: int) -> int:
        """The end of the message that begins at records[start]: as many records as fit
        `allowance` (framed), at least one, never past `max_message_bytes`."""
        limit = min(allowance, max_message_bytes)
        size, end = 0, start
        while end < len(records):
            r = records[end]
            cost = 1 + len(_wire.varint(len(r))) + len(r)
            if end > start and size + cost > limit:
                break
            size += cost
            end += 1
        return end


async def read_messages(
    store: EventStore,
    stream_id: str,
    start: int | None,
    count: int,
    backward: bool,
    *,
    as_json: bool,
    limits: Limits,
    budget: SendBudget,
) -> AsyncIterator[bytes]:
    """ReadEventsResponse messages for a read, serialized; each resumes only once the one
    before was taken (see the module docstring)."""
    by_position = stream_id == ALL_STREAM

    async def fetch(key: int | None, wanted: int) -> list[RecordedEvent]:
        return await store.read_stream(stream_id, key, wanted, backward)

    async for message in paged_messages(
        fetch,
        start,
        count,
        backward,
        key_of=(lambda e: e.position) if by_position else (lambda e: e.version),
        as_json=as_json,
        limits=limits,
        budget=budget,
    ):
        yield message


async def paged_messages(
    fetch: Callable[[int | None, int], Awaitable[list[RecordedEvent] | EncodedBatch]],
    start: int | None,
    count: int,
    backward: bool,
    *,
    key_of: Callable[[RecordedEvent], int],
    as_json: bool,
    limits: Limits,
    budget: SendBudget,
    frame: Callable[[bytes], bytes] | None = None,
    reserve: int = 0,
) -> AsyncIterator[bytes]:
    """The pages `fetch(key, wanted)` reads (from `start`, `count` events at most, 0 for all;
    the next key follows `key_of` of a page's last event, or an EncodedBatch's last
    position) as messages of their records, each at most `max_response_bytes - reserve`
    (`frame` adds to a message's framed records what else it carries); the next page is
    read once the client took a message (ahead of the rest of this page's messages, while
    the budget has room: see the module docstring). A page the store framed that fits one
    message goes out as it is."""
    pacer = ReadPacer(limits.read_batch)
    remaining = count or None
    room = record_room(limits)
    limit = limits.max_response_bytes - reserve
    grant = budget.acquire(pacer.allowance, pacer.min_bytes)
    wanted = pacer.page_events(grant, remaining)
    reading: asyncio.Future[list[RecordedEvent] | EncodedBatch] | None = asyncio.ensure_future(fetch(start, wanted))
    held = 0  # the grant of the page whose messages are going out
    taken = False  # whether the client took a message yet
    try:
        while reading is not None:
            page = await reading
            reading = None
            held, grant = grant, 0
            if not page:
                return
            framed = page if isinstance(page, EncodedBatch) else None
            read = framed.count if framed is not None else len(page)
            left = None if remaining is None else remaining - read
            last = framed.last_position if framed is not None else key_of(page[-1])  # type: ignore[index, arg-type]
            key = last + (-1 if backward else 1)
            more = read == wanted and (left is None or left > 0) and key >= 0  # else the end
            whole: bytes | None = None  # the page's records, framed: one message
            records: list[bytes] = []
            if framed is not None and not as_json and len(framed.framed) <= min(held, limit):
                whole = framed.framed
                pacer.observe_framed(framed.count, len(whole))
            else:
                stored = framed.records() if framed is not None else [e.encoded for e in page]  # type: ignore[union-attr]
                records = [record_as_json(r, limits.max_json_depth, room) for r in stored] if as_json else stored
                pacer.observe(records)
            del page, framed
            while True:
                if more and taken and reading is None and (grant := budget.try_acquire(pacer.allowance)):
                    wanted = pacer.page_events(grant, left)
                    reading = asyncio.ensure_future(fetch(key, wanted))  # read ahead
                    await asyncio.sleep(0)  # its first step sends the query, before this page is framed
                if whole is not None:
                    message, whole = whole, None
                elif records:
                    end = pacer.cut(records, 0, held, limit)
                    message = _wire.read_response(records[:end])
                    del records[:end]  # a waiting message must be the only copy this read holds
                else:
                    break
                yield message if frame is None else frame(message)
                del message
                pacer.taken()
                taken = True
            budget.release(held)
            held = 0
            if more and reading is None:
                grant = budget.acquire(pacer.allowance, pacer.min_bytes)
                wanted = pacer.page_events(grant, left)
                reading = asyncio.ensure_future(fetch(key, wanted))
            remaining = left
    finally:
        budget.release(held + grant)
        if reading is not None:
            abandon(reading)
