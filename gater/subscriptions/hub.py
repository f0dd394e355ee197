"""Catch-up then live: one tailer per store fanning new events out to subscribers.

Owns: `StoreTailer` (follows a store's last position, reads each new event once, hands each
live subscriber what matches it through a bounded queue), `Hub` (the tailers, created on
demand, owned by a TaskGroup) and `follow()` (one subscriber's life: catch-up pages from the
store, then live from the tailer, back to catch-up whenever it falls behind).
Must not import grpc, gater.node or gater.gateway.

Why nothing is lost or repeated at the catch-up → live switch: a subscriber's `cursor` is the
last global position it has examined. It joins the tailer only when the tailer has dispatched
nothing past that cursor (checked and done without an await in between, so atomically on the
event loop); from then on the tailer hands it exactly the events after the cursor. If the
tailer is ahead, the subscriber reads the difference from the store first and tries again.
A subscriber whose queue is full is dropped from the tailer (never blocking it, never
buffering without bound) and catches up from the store from its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..store.base import EventStore, RecordedEvent, StorageBackend
from .matching import EventFilter, EventView

__all__ = [
    "CaughtUp",
    "Checkpoint",
    "Delivery",
    "Feed",
    "Heartbeat",
    "Hub",
    "StoreTailer",
    "follow",
]

log = logging.getLogger(__name__)

PAGE = 500
"""Events per storage read, in catch-up and in the tailer."""
QUEUE_BATCHES = 64
"""Tailer batches a live subscriber may have queued before it is moved back to catch-up."""
CHECKPOINT_EVERY = 1000
"""Send a checkpoint after this many events were examined without one matching."""


@dataclass(slots=True)
class Delivery:
    events: list[RecordedEvent]


@dataclass(slots=True)
class CaughtUp:
    position: int


@dataclass(slots=True)
class Checkpoint:
    position: int


@dataclass(slots=True)
class Heartbeat:
    position: int


Message = Delivery | CaughtUp | Checkpoint | Heartbeat


@dataclass(eq=False)
class Feed:
    """A live subscriber as the tailer sees it."""

    filter: EventFilter
    cursor: int
    """The last global position handed to (or skipped for) this subscriber."""
    min_version: int = 0
    """One-stream subscriptions: deliver only versions >= this."""
    queue: asyncio.Queue[tuple[list[RecordedEvent], int]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_BATCHES)
    )
    dropped: bool = False
    """Set by the tailer when the queue was full: the subscriber must catch up from the store."""

    def wants(self, view: EventView) -> bool:
        f = self.filter
        if f.stream is not None and (view.stream_id != f.stream or view.version < self.min_version):
            return False
        return f.matches(view)


class StoreTailer:
    """Follows one store's last position; dispatches each new event once to every live feed."""

    def __init__(self, store: EventStore, poll_s: float = 1.0) -> None:
        self.store = store
        self.poll_s = poll_s
        self.position = -1
        """The last position dispatched: live feeds have been handed everything up to here."""
        self._feeds: set[Feed] = set()
        self._wake = asyncio.Event()

    async def run(self) -> None:
        self.position = await self.store.last_position()
        while True:
            if not self._feeds:
                # Nobody live: no reads, just keep up with the position (joiners catch up).
                self._wake.clear()
                last = await self.store.last_position()
                if self._feeds:
                    # Someone joined while we asked: from here on every event is theirs too,
                    # so the position may only move by dispatching (never skip to `last`).
                    continue
                self.position = max(self.position, last)
                waiter = asyncio.ensure_future(
                    self.store.wait_for_position(self.position, self.poll_s)
                )
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait((waiter, woken), return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                woken.cancel()
                continue
            last = await self.store.wait_for_position(self.position, self.poll_s)
            while self.position < last and self._feeds:
                page = await self.store.read_all(self.position + 1, PAGE)
                if not page:
                    break
                self._dispatch(page)

    def _dispatch(self, page: list[RecordedEvent]) -> None:
        upto = page[-1].position
        views = [EventView(e) for e in page]
        for feed in list(self._feeds):
            if (
                feed.filter.stream is None
                and not feed.filter.needs_record
                and feed.filter.selector == "$all"
            ):
                matching = [v.event for v in views if v.position > feed.cursor]
            else:
                matching = [v.event for v in views if v.position > feed.cursor and feed.wants(v)]
            try:
                feed.queue.put_nowait((matching, upto))
            except asyncio.QueueFull:
                self._feeds.discard(feed)
                feed.dropped = True
                log.info(
                    "subscriber fell behind: back to catch-up",
                    extra={"store": self.store.store_id, "position": feed.cursor},
                )
                continue
            feed.cursor = upto
        self.position = upto

    def attach(self, feed: Feed) -> bool:
        """Makes `feed` live if the tailer has dispatched nothing past its cursor."""
        if self.position > feed.cursor:
            return False
        feed.dropped = False
        self._feeds.add(feed)
        self._wake.set()
        return True

    def detach(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    @property
    def live_count(self) -> int:
        return len(self._feeds)


class Hub:
    """The tailers of a node, one per store, each a task in this hub's TaskGroup."""

    def __init__(self, backend: StorageBackend, poll_s: float = 1.0) -> None:
        self.backend = backend
        self.poll_s = poll_s
        self._tailers: dict[str, StoreTailer] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._exit: contextlib.AsyncExitStack | None = None

    async def start(self) -> None:
        self._exit = contextlib.AsyncExitStack()
        self._group = await self._exit.enter_async_context(asyncio.TaskGroup())

    async def stop(self) -> None:
        if self._exit is None:
            return
        for task in self._tasks.values():
            task.cancel()
        exit_stack, self._exit = self._exit, None
        await exit_stack.aclose()
        self._tailers.clear()
        self._tasks.clear()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def tailer(self, store_id: str) -> StoreTailer:
        tailer = self._tailers.get(store_id)
        task = self._tasks.get(store_id)
        if tailer is not None and task is not None and not task.done():
            return tailer
        if self._group is None:
            raise RuntimeError("the hub is not started")
        store = await self.backend.open_store(store_id)
        tailer = self._tailers.get(store_id)
        task = self._tasks.get(store_id)
        if tailer is not None and task is not None and not task.done():
            return tailer
        tailer = StoreTailer(store, self.poll_s)
        self._tailers[store_id] = tailer
        self._tasks[store_id] = self._group.create_task(
            self._run(store_id, tailer), name=f"tailer-{store_id}"
        )
        return tailer

    async def _run(self, store_id: str, tailer: StoreTailer) -> None:
        try:
            await tailer.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a tailer must not take the node down; it is restarted on demand
            log.exception("tailer stopped", extra={"store": store_id})
            for feed in list(tailer._feeds):
                feed.dropped = True
                tailer.detach(feed)

    def forget(self, store_id: str) -> None:
        """The store was removed: end its tailer."""
        task = self._tasks.pop(store_id, None)
        self._tailers.pop(store_id, None)
        if task is not None:
            task.cancel()


async def follow(
    store: EventStore,
    tailer: StoreTailer,
    event_filter: EventFilter,
    *,
    cursor: int,
    next_version: int = 0,
    max_batch: int = 100,
    heartbeat_s: float = 5.0,
) -> AsyncIterator[Message]:
    """One subscriber: yields Delivery/CaughtUp/Checkpoint/Heartbeat for ever.

    `cursor`: the last global position already seen (-1: from the beginning).
    `next_version`: one-stream subscriptions: the first stream version to deliver.
    """
    feed = Feed(event_filter, cursor, min_version=next_version)
    one_stream = event_filter.stream
    caught_up_sent = False
    skipped = 0
    prefetch: asyncio.Future[list[RecordedEvent]] | None = None
    try:
        while True:
            # -- catch-up from the store, a page at a time ----------------------------------
            while True:
                if one_stream is not None:
                    last = await store.last_position()
                    page = await store.read_stream(one_stream, feed.min_version, PAGE)
                    page = [e for e in page if e.position > feed.cursor]
                    if page:
                        feed.min_version = page[-1].version + 1
                        feed.cursor = page[-1].position
                        for chunk in _chunks(page, max_batch):
                            yield Delivery(chunk)
                        continue
                    feed.cursor = max(feed.cursor, last)
                else:
                    page = await (prefetch or store.read_all(feed.cursor + 1, PAGE))
                    prefetch = None
                    if page:
                        feed.cursor = page[-1].position
                        # Read the next page while this one is matched and sent.
                        prefetch = asyncio.ensure_future(store.read_all(feed.cursor + 1, PAGE))
                        matching = [e for e in page if event_filter.matches(EventView(e))]
                        if matching:
                            skipped = 0
                            for chunk in _chunks(matching, max_batch):
                                yield Delivery(chunk)
                        else:
                            skipped += len(page)
                            if skipped >= CHECKPOINT_EVERY:
                                skipped = 0
                                yield Checkpoint(feed.cursor)
                        continue
                if tailer.attach(feed):
                    break
            if not caught_up_sent:
                caught_up_sent = True
                yield CaughtUp(feed.cursor)
            # -- live: what the tailer hands over ---------------------------------------------
            while not feed.dropped or not feed.queue.empty():
                try:
                    events, upto = await asyncio.wait_for(feed.queue.get(), heartbeat_s)
                except TimeoutError:
                    yield Heartbeat(feed.cursor)
                    continue
                # Gather what else is queued already into one message, up to max_batch.
                batch = list(events)
                while len(batch) < max_batch and not feed.queue.empty():
                    more, upto = feed.queue.get_nowait()
                    batch.extend(more)
                if batch:
                    skipped = 0
                    if one_stream is not None:
                        feed.min_version = batch[-1].version + 1
                    for chunk in _chunks(batch, max_batch):
                        yield Delivery(chunk)
                else:
                    skipped += 1
                    if skipped >= 16:
                        skipped = 0
                        yield Checkpoint(upto)
            # Dropped by the tailer: its cursor says where the queue ended; read on from there.
    finally:
        if prefetch is not None:
            prefetch.cancel()
        tailer.detach(feed)


def _chunks(events: list[RecordedEvent], size: int) -> list[list[RecordedEvent]]:
    if len(events) <= size:
        return [events]
    return [events[i : i + size] for i in range(0, len(events), size)]
