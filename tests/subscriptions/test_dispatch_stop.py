"""PersistentSubscriptions.stop(): a node that stops says nothing alarming about it. Its
dispatchers are told "this node is shutting down" and their tasks cancelled; one woken by the
first may end with that reason before the cancellation reaches it (CI on two busy cores saw it),
and that end is no lost lease."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exesdb.v1 import subscriptions_pb2
from gater.config import Limits
from gater.store.sqlite import SqliteBackend
from gater.subscriptions.dispatch import Definition, Dispatcher, PersistentSubscriptions
from gater.subscriptions.persistent import PersistentSettings

pytestmark = pytest.mark.timeout(60)


async def test_a_dispatcher_that_ends_with_the_nodes_own_stop_is_no_lost_lease(tmp_path, caplog, monkeypatch):
    running = asyncio.Event()

    async def ends_with_its_stop_reason(self: Dispatcher) -> None:
        """What the race gives: the stop's wake-up comes first, then the cancellation."""
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        assert self.ended is not None
        raise self.ended

    monkeypatch.setattr(Dispatcher, "run", ends_with_its_stop_reason)
    async with SqliteBackend(tmp_path / "data", synchronous="NORMAL", limits=Limits()) as backend:
        await backend.create_store("s")
        subscriptions = PersistentSubscriptions(backend)
        await subscriptions.start()
        definition = Definition(subscriptions_pb2.SUBSCRIPTION_TYPE_BY_STREAM, "$all", None, PersistentSettings())
        await subscriptions.save("s", "workers", definition)
        dispatcher = await subscriptions.owner("s", "workers")
        assert isinstance(dispatcher, Dispatcher)
        await running.wait()
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="gater"):
            await subscriptions.stop()
    assert dispatcher.ended is not None and dispatcher.ended.code == "UNAVAILABLE"
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("gater.subscriptions")]
    assert (logging.DEBUG, "dispatcher stopped: this node is stopping") in said
    assert [m for level, m in said if level > logging.INFO] == []
