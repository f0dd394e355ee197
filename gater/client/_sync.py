"""The synchronous facade: `SyncClient` and `SyncSubscription`, for code without an event loop.

Owns: a private event loop on a daemon thread that runs a `Client`, and blocking copies of its
methods. Must not import anything from gater but this package.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ._client import Client
from ._subscription import Subscription
from ._target import DEFAULT_TARGET
from ._values import Event, NackAction

__all__ = ["SyncClient", "SyncSubscription"]


def _sync(name: str) -> Any:
    method = getattr(Client, name)

    @functools.wraps(method)
    def call(self: SyncClient, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self._client, name)(*args, **kwargs))

    return call


class SyncClient:
    """`Client` for code without an event loop: the same methods, blocking. It runs a private
    event loop on a background thread. ``with SyncClient.connect("host:port") as client:``.
    `subscribe` returns a blocking iterator (`SyncSubscription`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, client: Client) -> None:
        self._loop = loop
        self._thread = thread
        self._client = client

    @classmethod
    def connect(cls, target: str | Sequence[str] = DEFAULT_TARGET, **options: Any) -> SyncClient:
        """Starts the private loop and connects there (as `Client.connect`)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="gater-client", daemon=True)
        thread.start()
        try:
            client = asyncio.run_coroutine_threadsafe(Client.connect(target, **options), loop).result()
        except BaseException:
            _stop(loop, thread)
            raise
        return cls(loop, thread, client)

    def _run(self, coro: Any, timeout_s: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def _stop_loop(self) -> None:
        _stop(self._loop, self._thread)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._stop_loop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> str:
        return self._client.target

    append_events = _sync("append_events")
    read_query = _sync("read_query")
    get_events = _sync("get_events")
    get_version = _sync("get_version")
    get_streams = _sync("get_streams")
    save_subscription = _sync("save_subscription")
    remove_subscription = _sync("remove_subscription")
    get_subscriptions = _sync("get_subscriptions")
    ack = _sync("ack")
    nack = _sync("nack")
    replay_parked = _sync("replay_parked")
    record_snapshot = _sync("record_snapshot")
    read_snapshot = _sync("read_snapshot")
    delete_snapshot = _sync("delete_snapshot")
    list_snapshots = _sync("list_snapshots")
    create_store = _sync("create_store")
    remove_store = _sync("remove_store")
    list_stores = _sync("list_stores")
    get_store_status = _sync("get_store_status")
    get_store_config = _sync("get_store_config")
    export_store = _sync("export_store")
    import_store = _sync("import_store")
    cluster_status = _sync("cluster_status")

    def subscribe(self, store: str, **kwargs: Any) -> SyncSubscription:
        """Starts a subscription (waiting for its confirmation) and returns its iterator."""
        subscription = self._client.subscribe(store, **kwargs)
        self._run(subscription.start())
        return SyncSubscription(self, subscription)


class SyncSubscription:
    """A blocking iterator over a `Subscription`; `next(it)` waits for the next event."""

    def __init__(self, owner: SyncClient, subscription: Subscription) -> None:
        self._owner = owner
        self.subscription = subscription

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self._owner._run(self.subscription.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def ack(self, events: Any) -> None:
        self._owner._run(self.subscription.ack(events))

    def nack(self, events: Any, action: NackAction = NackAction.RETRY, reason: str = "") -> None:
        self._owner._run(self.subscription.nack(events, action, reason))

    def close(self) -> None:
        self._owner._run(self.subscription.close())

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
    loop.close()
