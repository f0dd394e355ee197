"""gater.subscriptions.hub.Hub as a component over a real SQLite backend: its subscribe API
(start resolution, catch-up then live), admission (a refusal is a LimitExceededError naming
the limit, never a silent drop), and every end told: a removed store ends its subscribers
with StoreNotFoundError, a stopping hub ends them with UnavailableError."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gater.config import Limits
from gater.errors import LimitExceededError, StoreNotFoundError, UnavailableError
from gater.store.base import EXPECT_ANY, NewEvent
from gater.store.sqlite import SqliteBackend
from gater.subscriptions.hub import CaughtUp, Delivery, Feed, Hub, StoreTailer, abandon
from gater.subscriptions.matching import make_filter
from gater.subscriptions.start import Start

pytestmark = pytest.mark.timeout(60)

ALL = make_filter(0, "$all", None)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    async with SqliteBackend(tmp_path / "data") as backend:
        await backend.create_store("s")
        yield backend


async def append(backend: SqliteBackend, n: int, store_id: str = "s") -> None:
    store = await backend.open_store(store_id)
    events = [NewEvent(str(uuid.uuid4()), "t", b"{}") for _ in range(n)]
    await store.append("stream", events, EXPECT_ANY)


async def collect(messages: AsyncIterator, until: int, into: list) -> None:
    async for message in messages:
        into.append(message)
        if sum(len(m.events) for m in into if isinstance(m, Delivery)) >= until:
            return


async def test_subscribe_resolves_the_start_then_goes_live(backend: SqliteBackend) -> None:
    await append(backend, 5)
    async with Hub(backend) as hub:
        async with hub.subscribe("s", ALL, Start.at(3)) as messages:
            got: list = []
            await collect(messages, 2, got)
            assert [e.position for m in got if isinstance(m, Delivery) for e in m.events] == [3, 4]
            assert await anext(messages) == CaughtUp(4)
            await append(backend, 2)  # live now
            await collect(messages, 4, got)
            assert [e.position for m in got if isinstance(m, Delivery) for e in m.events] == [3, 4, 5, 6]
        async with hub.subscribe("s", ALL, Start.NOW, heartbeat_s=0.1) as messages:
            assert await anext(messages) == CaughtUp(6)


async def test_a_subscription_beyond_the_limit_is_refused_with_a_reason(backend: SqliteBackend) -> None:
    async with Hub(backend, max_subscriptions=2) as hub, contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(hub.subscribe("s", ALL))
        with pytest.raises(LimitExceededError) as refused:
            async with hub.subscribe("s", ALL):
                pass
        assert refused.value.code == "RESOURCE_EXHAUSTED" and refused.value.limit == "max_subscriptions"
        await stack.aclose()
        async with hub.subscribe("s", ALL):  # room again
            assert hub.subscription_count == 1


async def test_forget_ends_every_subscriber_of_the_store_and_only_those(backend: SqliteBackend) -> None:
    await backend.create_store("other")
    await append(backend, 3)
    async with Hub(backend) as hub:
        live = hub.subscribe("s", ALL, heartbeat_s=0.1)
        other = hub.subscribe("other", ALL, heartbeat_s=0.1)
        async with live as live_messages, other as other_messages:
            got: list = []
            await collect(live_messages, 3, got)
            assert isinstance(await anext(live_messages), CaughtUp)
            assert isinstance(await anext(other_messages), CaughtUp)
            await backend.remove_store("s")
            hub.forget("s")
            with pytest.raises(StoreNotFoundError):
                await anext(live_messages)
            await append(backend, 1, "other")
            got = []
            await collect(other_messages, 1, got)  # another store's subscriber goes on


async def test_stop_ends_subscribers_with_unavailable(backend: SqliteBackend) -> None:
    hub = Hub(backend)
    await hub.start()
    async with hub.subscribe("s", ALL, heartbeat_s=0.1) as messages:
        assert isinstance(await anext(messages), CaughtUp)
        waiting = asyncio.ensure_future(anext(messages))
        await hub.stop()
        with pytest.raises(UnavailableError):
            await waiting
    await hub.stop()  # idempotent


async def test_a_feed_that_joins_ahead_of_the_tailers_page_is_not_handed_events_again(tmp_path: Path) -> None:
    """A subscriber may join while the tailer is still working through a page that ends
    before the subscriber's cursor (it read further on its own): the tailer hands it nothing
    at or below its cursor, then or later (its cursor never moves back)."""
    async with SqliteBackend(tmp_path / "data", limits=Limits(read_batch=7)) as backend:
        await backend.create_store("s")
        await append(backend, 30)
        store = await backend.open_store("s")
        tailer = StoreTailer(store, position=9)  # dispatched up to 9; pages of 7 from there
        feed = Feed(ALL, cursor=20)  # caught up on its own to 20
        assert tailer.attach(feed)
        task = asyncio.create_task(tailer.run())
        handed: list[int] = []
        try:
            while not handed or handed[-1] < 29:
                events, _ = await feed.queue.get()
                handed.extend(e.position for e in events)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert handed == list(range(21, 30))


async def test_an_abandoned_wait_is_read_whatever_its_outcome(caplog: pytest.LogCaptureFixture) -> None:
    """A wait for a position that failed as its store went away (already, or after its waiter
    left) is read, so asyncio reports no "Task exception was never retrieved" ERROR: the fuzz
    suite found the hub's and the dispatcher's waiters leaving such waits on PostgreSQL."""
    caplog.set_level(logging.ERROR, logger="asyncio")

    started = asyncio.Event()

    async def fails_at_once() -> int:
        raise StoreNotFoundError("gone")

    async def fails_when_cancelled() -> int:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            raise StoreNotFoundError("gone")  # what asyncio.wait_for did when cancelled late

    failed = asyncio.ensure_future(fails_at_once())
    await asyncio.wait([failed])  # done, its error unread
    pending = asyncio.ensure_future(fails_when_cancelled())
    await started.wait()
    left = [failed, pending]
    all_read = asyncio.Event()

    def one_read(wait: asyncio.Future[int]) -> None:
        left.remove(wait)
        if not left:
            all_read.set()

    for wait in (failed, pending):
        abandon(wait)
        wait.add_done_callback(one_read)  # runs after abandon's: callbacks run in order
    await asyncio.wait_for(all_read.wait(), 10)
    del failed, pending, wait
    gc.collect()  # an unread failure is reported when its task is collected
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
