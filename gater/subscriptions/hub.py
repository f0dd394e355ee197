"""Transient subscriptions: catch-up then live, one tailer per store fanning new events out.

Owns: `Hub` — the node's transient subscriptions: `subscribe()` (admission, start resolution,
then one subscriber's life: catch-up pages from the store, live from the tailer, back to
catch-up whenever it falls behind), the tailers (one per store, created on demand, tasks in
the hub's TaskGroup), and the end of every subscriber of a store that is gone — `forget()`
after RemoveStore, or a tailer that finds its store gone: each ends with StoreNotFoundError
and is handed nothing more. `StoreTailer` follows a store's last position, reads each new
event once and hands every live subscriber what matches through a bounded queue.
Must not import grpc, gater.node or gater.gateway.

Why nothing is lost or repeated at the catch-up → live switch: a subscriber's `cursor` is the
last global position it has examined. It joins the tailer only when the tailer has dispatched
nothing past that cursor (checked and done without an await in between, so atomically on the
event loop); from then on the tailer hands it exactly the events after the cursor. If the
tailer is ahead, the subscriber reads the difference from the store first and tries again.
A subscriber whose queue is full is dropped from the tailer (never blocking it, never
buffering without bound) and catches up from the store from its cursor.

Why a tailer never spins: a wait that returns early with nothing new is followed by a read
that raises when the store is gone, and a pause; when two reads around a fresh head read find
nothing visible (hidden by the lifecycle), the cursor moves to that head. A cached head (a
removed store's former life can leave one ahead of the store) never moves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

from ..errors import GaterError, LimitExceededError, StoreNotFoundError, UnavailableError
from ..metrics import Metric, Metrics, SubscriptionGauges, gauge
from ..store.base import EncodedBatch, EventStore, RecordedEvent, StorageBackend
from ._catch_up import index_pages
from ._messages import CaughtUp, Checkpoint, Delivery, Heartbeat, Message
from ._waits import abandon
from .matching import EventFilter, EventView
from .start import Start, resolve

__all__ = [
    "CaughtUp",
    "Checkpoint",
    "Delivery",
    "Feed",
    "Heartbeat",
    "Hub",
    "Message",
    "StoreTailer",
    "abandon",
]

log = logging.getLogger(__name__)

PAGE = 500
"""Events per storage read, in catch-up and in the tailer."""


QUEUE_BATCHES = 64
"""Tailer batches a live subscriber may have queued before it is moved back to catch-up."""
CHECKPOINT_EVERY = 1000
"""Send a checkpoint after this many events were examined without one matching."""
MAX_SUBSCRIPTIONS = 10_000
"""Transient subscriptions one node serves at once; more are refused (RESOURCE_EXHAUSTED)."""


_Batch = tuple[list[RecordedEvent], int]


@dataclass(eq=False)
class Feed:
    """One subscriber as the hub and its store's tailer see it."""

    filter: EventFilter
    cursor: int
    """The last global position handed to (or skipped for) this subscriber."""
    store: EventStore | None = None
    """The store (handle) it reads: a store removed and re-created is another handle."""
    min_version: int = 0
    """One-stream subscriptions: deliver only versions >= this."""
    queue: asyncio.Queue[_Batch | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_BATCHES))
    """Batches from the tailer; None wakes the subscriber to look at `dropped` and `error`."""
    dropped: bool = False
    """Set by the tailer when the queue was full (or it stopped): catch up from the store."""
    error: GaterError | None = None
    """Set when the subscription must end (store removed, node stopping): nothing more comes."""
    tailer: StoreTailer | None = None
    streams: Callable[[str], bool] | None = None
    """Only events of the streams this allows (the subscriber's permissions); None: all."""
    handed: RecordedEvent | EncodedBatch | None = None
    """The last event (or batch) handed to the subscriber (its commit time gives the lag in
    seconds)."""

    @property
    def live(self) -> bool:
        return self.tailer is not None and not self.dropped

    def wants(self, view: EventView) -> bool:
        f = self.filter
        if f.stream is not None and (view.stream_id != f.stream or view.version < self.min_version):
            return False
        if self.streams is not None and not self.streams(view.stream_id):
            return False
        return f.matches(view)

    @property
    def takes_everything(self) -> bool:
        f = self.filter
        return f.stream is None and not f.needs_record and f.selector == "$all" and self.streams is None

    def wake(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def end(self, error: GaterError) -> None:
        """Ends the subscription: what is queued is dropped, the subscriber raises `error`."""
        if self.error is None:
            self.error = error
        while not self.queue.empty():
            self.queue.get_nowait()
        self.wake()


class StoreTailer:
    """Follows one store's last position; dispatches each new event once to every live feed."""

    def __init__(self, store: EventStore, position: int, poll_s: float = 1.0, metrics: Metrics | None = None) -> None:
        self.store = store
        self.poll_s = poll_s
        self._moved = metrics.moved_to_catch_up.labels(store.store_id) if metrics is not None else None
        self.position = position
        """The last position dispatched: live feeds have been handed everything up to here."""
        self.stopped = False
        self._feeds: set[Feed] = set()
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled, or an error: StoreNotFoundError when the store is gone."""
        clock = asyncio.get_running_loop().time
        while True:
            asked = clock()
            if not self._feeds:
                # Nobody live: no reads, just keep up with the position (joiners catch up).
                self._wake.clear()
                last = await self.store.last_position()
                if self._feeds:
                    # Someone joined while we asked: from here on every event is theirs too,
                    # so the position may only move by dispatching (never skip to `last`).
                    continue
                self._check(last)
                self.position = max(self.position, last)
                last = await self._idle_wait()
                if self._feeds:
                    continue  # woken by a joiner
            else:
                last = await self.store.wait_for_position(self.position, self.poll_s)
            self._check(last)
            if last == self.position:
                if clock() - asked < self.poll_s / 2:
                    await self._nothing_new_too_soon()
                continue
            while self.position < last and self._feeds:
                page = await self.store.read_all(self.position + 1, PAGE)
                if not page:  # `last` may be a cache ahead of the store: trust its own head only
                    head = await self.store.last_position()
                    if not (page := await self.store.read_all(self.position + 1, PAGE)):
                        if head > self.position:
                            self._dispatch([], head)
                        break
                self._dispatch(page)

    def _check(self, last: int) -> None:
        if last < self.position:
            # Positions never go back: the store was removed and re-created under its id.
            raise StoreNotFoundError(self.store.store_id)

    async def _idle_wait(self) -> int:
        waiter = asyncio.ensure_future(self.store.wait_for_position(self.position, self.poll_s))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((waiter, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            abandon(woken)
            abandon(waiter)  # when done, read below, or by nobody if this task is cancelled
        return waiter.result() if waiter.done() and not waiter.cancelled() else self.position

    async def _nothing_new_too_soon(self) -> None:
        """A wait returned early with nothing new: a store that is gone may do that (a closed
        SQLite store answers at once). Ask it something that fails then, and never spin."""
        await self.store.read_all(self.position + 1, 1)
        await asyncio.sleep(self.poll_s / 2)

    def _dispatch(self, page: list[RecordedEvent], upto: int | None = None) -> None:
        upto = page[-1].position if upto is None else upto  # examined up to here (hidden: skipped)
        views = [EventView(e) for e in page]
        for feed in list(self._feeds):
            if feed.takes_everything:
                matching = [v.event for v in views if v.position > feed.cursor]
            else:
                matching = [v.event for v in views if v.position > feed.cursor and feed.wants(v)]
            try:
                feed.queue.put_nowait((matching, upto))
            except asyncio.QueueFull:
                self._feeds.discard(feed)
                feed.dropped = True
                if self._moved is not None:
                    self._moved.inc()
                log.info(
                    "subscriber fell behind: back to catch-up",
                    extra={"store": self.store.store_id, "position": feed.cursor},
                )
                continue
            # A feed may have joined ahead of this page (it read further on its own while the
            # page was being read): its cursor never moves back, or it would be handed again
            # what it already has.
            feed.cursor = max(feed.cursor, upto)
        self.position = upto

    def attach(self, feed: Feed) -> bool:
        """Makes `feed` live if the tailer runs and has dispatched nothing past its cursor."""
        if self.stopped or self.position > feed.cursor:
            return False
        feed.dropped = False
        feed.tailer = self
        self._feeds.add(feed)
        self._wake.set()
        return True

    def detach(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    def stop(self) -> None:
        """The tailer ended: its live feeds go back to catch-up (and find another tailer)."""
        self.stopped = True
        for feed in self._feeds:
            feed.dropped = True
            feed.wake()
        self._feeds.clear()

    @property
    def live_count(self) -> int:
        return len(self._feeds)


class Hub:
    """A node's transient subscriptions and their tailers (one per store, tasks of its group)."""

    def __init__(
        self,
        backend: StorageBackend,
        poll_s: float = 1.0,
        max_subscriptions: int = MAX_SUBSCRIPTIONS,
        max_per_store: int | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        if metrics is not None:
            metrics.collect(self._collect)
            metrics.report_subscriptions(self._report)
        self.poll_s = poll_s
        self.max_subscriptions = max_subscriptions
        self.max_per_store = max_per_store if max_per_store is not None else max_subscriptions
        self._tailers: dict[str, tuple[StoreTailer, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # every tailer's, also one replaced
        self._subscribers: dict[str, set[Feed]] = {}
        self._count = 0
        self._group: asyncio.TaskGroup | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._refused = 0

    async def start(self) -> None:
        self._exit = contextlib.AsyncExitStack()
        self._group = await self._exit.enter_async_context(asyncio.TaskGroup())

    async def stop(self) -> None:
        """Ends every subscription (UNAVAILABLE: go to another node) and tailer. Idempotent."""
        if self._exit is None:
            return
        stopping = UnavailableError("this node is shutting down: subscribe again (another node serves it)")
        for feeds in self._subscribers.values():
            for feed in feeds:
                feed.end(stopping)
        for tailer, _ in self._tailers.values():
            tailer.stop()
        for task in self._tasks:
            task.cancel()
        exit_stack, self._exit, self._group = self._exit, None, None
        await exit_stack.aclose()
        self._tailers.clear()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def subscription_count(self) -> int:
        return self._count

    def _report(self, gauges: SubscriptionGauges) -> None:
        """Scrape time: the transient subscriptions of each store, as one series per store:
        how many, and how far the furthest behind is."""
        now_us = time.time() * 1e6
        for store_id, feeds in list(self._subscribers.items()):
            head = max((f.store.known_position() for f in feeds if f.store is not None), default=-1)
            ages = [now_us - f.handed.created_epoch_us for f in feeds if f.handed is not None and f.cursor < head]
            gauges.add(
                store_id,
                "transient",
                consumers=len(feeds),
                lag_events=max((head - f.cursor for f in feeds), default=0),
                lag_seconds=max(ages, default=0.0) / 1e6,
            )

    def _collect(self) -> list[Metric]:
        """Scrape time: the tailers' queues, by store."""
        live = gauge("gater_tailer_live_subscribers", "Transient subscribers fed by the store's tailer.", ["store"])
        queued = gauge("gater_tailer_queued_batches", "Batches the tailer queued for live subscribers, all together.", ["store"])
        fullest = gauge(
            "gater_tailer_queue_fullest_batches",
            f"Batches queued for the fullest live subscriber (moved back to catch-up at {QUEUE_BATCHES}).",
            ["store"],
        )
        for store_id, feeds in list(self._subscribers.items()):
            sizes = [f.queue.qsize() for f in feeds if f.live]
            live.add_metric([store_id], len(sizes))
            queued.add_metric([store_id], sum(sizes))
            fullest.add_metric([store_id], max(sizes, default=0))
        return [live, queued, fullest]

    # -- subscriptions ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        store_id: str,
        event_filter: EventFilter,
        start: Start = Start.BEGINNING,
        *,
        max_batch: int = 100,
        heartbeat_s: float = 5.0,
        streams: Callable[[str], bool] | None = None,
    ) -> AsyncIterator[AsyncIterator[Message]]:
        """A subscription: `async with hub.subscribe(...) as messages:` — entering resolves
        the start (raising StoreNotFoundError, LimitExceededError, ...), then `messages`
        yields Delivery / CaughtUp / Checkpoint / Heartbeat until the subscription ends,
        by raising (StoreNotFoundError once the store is removed). Leaving ends it.
        `streams`: only events of the streams it allows (what the subscriber may read)."""
        if self._group is None:
            raise UnavailableError("this node is not serving subscriptions (starting or stopping)")
        self._admit(store_id)
        self._count += 1
        try:
            store = await self.backend.open_store(store_id)
            cursor, next_version = await resolve(store, event_filter, start)
            feed = Feed(event_filter, cursor, store=store, min_version=next_version, streams=streams)
            feeds = self._subscribers.setdefault(store_id, set())
            feeds.add(feed)
            messages = self._follow(store_id, feed, max_batch, heartbeat_s)
            try:
                yield messages
            finally:
                await messages.aclose()
                feeds.discard(feed)
                if not feeds and self._subscribers.get(store_id) is feeds:
                    del self._subscribers[store_id]
        finally:
            self._count -= 1

    def _admit(self, store_id: str) -> None:
        if self._count >= self.max_subscriptions:
            limit, value, what = "max_subscriptions", self.max_subscriptions, "subscriptions"
        elif len(self._subscribers.get(store_id, ())) >= self.max_per_store:
            limit, value, what = "max_subscriptions_per_store", self.max_per_store, f"subscriptions of store {store_id!r}"
        else:
            return
        self._refused += 1
        if self._refused == 1 or self._refused % 100 == 0:
            log.warning(
                "refused a subscription: the node serves its maximum",
                extra={"store": store_id, "limit": limit, "value": value, "refused": self._refused},
            )
        raise LimitExceededError("", f"this node already serves {value} {what}; retry later or on another node", limit)

    def forget(self, store_id: str) -> None:
        """The store was removed: every subscriber of it ends with StoreNotFoundError, at once
        (nothing more is handed to any of them), and its tailer ends."""
        self._end_store(store_id, StoreNotFoundError(store_id), None)

    def _end_store(self, store_id: str, error: GaterError, store: EventStore | None) -> None:
        """Ends the subscribers of `store` (None: of any handle of `store_id`)."""
        for feed in self._subscribers.get(store_id, ()):
            if store is None or feed.store is store:
                feed.end(error)
        running = self._tailers.get(store_id)
        if running is not None and (store is None or running[0].store is store):
            del self._tailers[store_id]
            running[0].stop()
            running[1].cancel()

    # -- tailers ------------------------------------------------------------------------------

    async def _tailer(self, store_id: str, store: EventStore) -> StoreTailer:
        """The running tailer of `store` (started now if there is none)."""
        running = self._tailers.get(store_id)
        if running is not None and running[0].store is store and not running[0].stopped:
            return running[0]
        position = await store.last_position()
        running = self._tailers.get(store_id)
        if running is not None and running[0].store is store and not running[0].stopped:
            return running[0]
        if self._group is None:
            raise UnavailableError("this node is shutting down")
        tailer = StoreTailer(store, position, self.poll_s, self.metrics)
        task = self._group.create_task(self._run(store_id, tailer), name=f"tailer-{store_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._tailers[store_id] = (tailer, task)
        return tailer

    async def _run(self, store_id: str, tailer: StoreTailer) -> None:
        try:
            await tailer.run()
        except asyncio.CancelledError:
            raise
        except StoreNotFoundError as e:
            log.info("store gone: its subscriptions end", extra={"store": store_id})
            self._end_store(store_id, e, tailer.store)
        except GaterError as e:  # storage unavailable: subscribers find out on their reads
            log.warning("tailer stopped", extra={"store": store_id, "error": repr(e)})
        except Exception:  # noqa: BLE001 - a tailer must not take the node down; it is restarted on demand
            log.exception("tailer stopped", extra={"store": store_id})
        finally:
            tailer.stop()
            if self._tailers.get(store_id, (None,))[0] is tailer:
                del self._tailers[store_id]

    # -- one subscriber -----------------------------------------------------------------------

    async def _follow(self, store_id: str, feed: Feed, max_batch: int, heartbeat_s: float) -> AsyncIterator[Message]:
        """One subscriber's messages, for ever (or until `feed.error`, raised)."""
        store = feed.store
        assert store is not None
        event_filter = feed.filter
        one_stream = event_filter.stream
        delivered = self.metrics.delivered_events.labels(store_id, "transient") if self.metrics is not None else None
        caught_up_sent = False
        skipped = 0
        prefetch: asyncio.Future[list[RecordedEvent]] | None = None

        def ended() -> None:
            if feed.error is not None:
                raise feed.error

        try:
            while True:
                # -- catch-up from the store, a page at a time ------------------------------
                while True:
                    ended()
                    if one_stream is not None:
                        last = await store.last_position()
                        page = await store.read_stream(one_stream, feed.min_version, PAGE)
                        page = [e for e in page if e.position > feed.cursor]
                        ended()
                        if page:
                            feed.min_version = page[-1].version + 1
                            feed.cursor = page[-1].position
                            for chunk in _chunks(page, max_batch):
                                ended()
                                feed.handed = chunk[-1]
                                if delivered is not None:
                                    delivered.inc(len(chunk))
                                yield Delivery(chunk)
                            continue
                        feed.cursor = max(feed.cursor, last)
                    elif (indexed := event_filter.indexed) is not None:
                        # A DCB query or a stream prefix: from the indexes (the next page read
                        # ahead), never a scan; each batch as the store framed it, unless the
                        # subscriber may see only some streams: then each event is looked at.
                        allowed = feed.streams
                        pages = index_pages(store, *indexed, feed.cursor + 1, PAGE, max_batch if allowed is None else None)
                        async with contextlib.aclosing(pages):
                            async for page, head in pages:
                                ended()
                                reached = head  # the last page's: nothing more matches up to it
                                if allowed is None:
                                    for batch in page:
                                        ended()
                                        assert isinstance(batch, EncodedBatch)
                                        feed.handed, feed.cursor = batch, batch.last_position
                                        if delivered is not None:
                                            delivered.inc(batch.count)
                                        yield batch
                                    continue
                                events = cast(list[RecordedEvent], page)
                                for chunk in _chunks([e for e in events if allowed(e.stream_id)], max_batch):
                                    ended()
                                    feed.handed, feed.cursor = chunk[-1], chunk[-1].position
                                    if delivered is not None:
                                        delivered.inc(len(chunk))
                                    yield Delivery(chunk)
                                if events:
                                    feed.cursor = max(feed.cursor, events[-1].position)  # passed over the rest
                        if reached > feed.cursor:
                            feed.cursor = reached
                            yield Checkpoint(feed.cursor)
                    else:
                        page = await (prefetch or store.read_all(feed.cursor + 1, PAGE))
                        prefetch = None
                        if not page and (head := await store.last_position()) > feed.cursor:
                            if not (page := await store.read_all(feed.cursor + 1, PAGE)):
                                feed.cursor = head  # hidden up to the head: pass over it
                                yield Checkpoint(feed.cursor)
                        ended()
                        if page:
                            feed.cursor = page[-1].position
                            # Read the next page while this one is matched and sent.
                            prefetch = asyncio.ensure_future(store.read_all(feed.cursor + 1, PAGE))
                            views = (EventView(e) for e in page)
                            matching = [v.event for v in views if feed.wants(v)]
                            if matching:
                                skipped = 0
                                for chunk in _chunks(matching, max_batch):
                                    ended()
                                    feed.handed = chunk[-1]
                                    if delivered is not None:
                                        delivered.inc(len(chunk))
                                    yield Delivery(chunk)
                            else:
                                skipped += len(page)
                                if skipped >= CHECKPOINT_EVERY:
                                    skipped = 0
                                    yield Checkpoint(feed.cursor)
                            continue
                    tailer = await self._tailer(store_id, store)
                    ended()
                    if tailer.attach(feed):
                        break
                if not caught_up_sent:
                    caught_up_sent = True
                    yield CaughtUp(feed.cursor)
                examined = feed.cursor  # what this subscriber has been handed or skipped
                # -- live: what the tailer hands over -----------------------------------------
                while not feed.dropped or not feed.queue.empty():
                    try:
                        item = await asyncio.wait_for(feed.queue.get(), heartbeat_s)
                    except TimeoutError:
                        ended()
                        yield Heartbeat(feed.cursor)
                        continue
                    ended()
                    if item is None:
                        continue
                    events, upto = item
                    # Gather what else is queued already into one message, up to max_batch.
                    batch = list(events)
                    while len(batch) < max_batch and not feed.queue.empty():
                        more = feed.queue.get_nowait()
                        if more is None:
                            break
                        batch.extend(more[0])
                        upto = more[1]
                    examined = max(examined, upto)
                    if batch:
                        skipped = 0
                        if one_stream is not None:
                            feed.min_version = batch[-1].version + 1
                        for chunk in _chunks(batch, max_batch):
                            ended()
                            feed.handed = chunk[-1]
                            if delivered is not None:
                                delivered.inc(len(chunk))
                            yield Delivery(chunk)
                    else:
                        skipped += 1
                        if skipped >= 16:
                            skipped = 0
                            yield Checkpoint(examined)
                # Dropped by the tailer: its cursor says where the queue ended; read on from there.
        finally:
            if prefetch is not None:
                prefetch.cancel()
                if prefetch.done() and not prefetch.cancelled():
                    prefetch.exception()  # retrieved: a read that failed as the store went away
            if feed.tailer is not None:
                feed.tailer.detach(feed)


def _chunks(events: list[RecordedEvent], size: int) -> list[list[RecordedEvent]]:
    if len(events) <= size:
        return [events] if events else []
    return [events[i : i + size] for i in range(0, len(events), size)]
