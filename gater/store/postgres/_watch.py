"""Who waits for which position: the rendezvous between commits and wait_for_position.

Owns: `PositionWatch`, the last position known on this node for each store and the futures
of callers waiting for it to pass a mark. Commits feed it from three sources — this node's
writer right after a commit, NOTIFY from any node, and the poller when a notification was
missed — and it only ever moves forward, so the order they arrive in does not matter.
No I/O and no awaits here.
Must not import asyncpg, grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import asyncio

from gater.errors import StoreNotFoundError

__all__ = ["PositionWatch"]


class PositionWatch:
    def __init__(self) -> None:
        self._known: dict[str, int] = {}
        self._waiters: dict[str, list[tuple[int, asyncio.Future[int]]]] = {}

    def known(self, store_id: str) -> int:
        return self._known.get(store_id, -1)

    def advance(self, store_id: str, position: int) -> bool:
        """Records that `position` is committed in the store; wakes whoever it satisfies.
        True when it moved the known position forward."""
        if position <= self._known.get(store_id, -1):
            return False
        self._known[store_id] = position
        waiters = self._waiters.get(store_id)
        if not waiters:
            return True
        still = []
        for after, future in waiters:
            if future.done():
                continue
            if position > after:
                future.set_result(position)
            else:
                still.append((after, future))
        if still:
            self._waiters[store_id] = still
        else:
            del self._waiters[store_id]
        return True

    def forget(self, store_id: str) -> None:
        """The store was removed: whoever waits on it is told (StoreNotFoundError), and its
        positions start again from -1 if it is re-created."""
        self._known.pop(store_id, None)
        self._fail(self._waiters.pop(store_id, []), StoreNotFoundError(store_id))

    def close(self, error: Exception) -> None:
        """The backend stops: every waiter gets `error`."""
        waiters, self._waiters = self._waiters, {}
        for entries in waiters.values():
            self._fail(entries, error)

    @staticmethod
    def _fail(entries: list[tuple[int, asyncio.Future[int]]], error: Exception) -> None:
        for _, future in entries:
            if not future.done():
                future.set_exception(error)

    def watch(self, store_id: str, after: int) -> asyncio.Future[int]:
        """A future resolved with the known position once it is > `after`."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        known = self._known.get(store_id, -1)
        if known > after:
            future.set_result(known)
        else:
            self._waiters.setdefault(store_id, []).append((after, future))
        return future

    def unwatch(self, store_id: str, future: asyncio.Future[int]) -> None:
        waiters = self._waiters.get(store_id)
        if waiters is None:
            return
        waiters[:] = [(a, f) for a, f in waiters if f is not future]
        if not waiters:
            del self._waiters[store_id]

    def waited_stores(self) -> list[str]:
        """Stores somebody is waiting on: what the poller asks the database about."""
        return list(self._waiters)
