"""`Subscription`: one Subscribe call as an async iterator of events.

Owns: starting the call and waiting for the server's confirmation, turning the stream's
messages (events, caught_up, checkpoints, heartbeats) into events and a position, ack/nack
for persistent subscriptions, and a `close()` that ends the call and is idempotent.
Must not import anything from gater but gater.errors and this package.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import grpc

from exesdb.v1 import subscriptions_pb2

from ..errors import GaterError
from . import _convert as convert
from ._tracing import CallSpan
from ._values import Event, NackAction

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Subscription"]

NO_SPAN = CallSpan()


class Subscription:
    """A running subscription: ``async for event in subscription`` yields events in global
    order. ``async with`` starts it and waits for the server's confirmation (so a bad request
    or an unknown subscription raises there); `close()` ends it and is idempotent.

    For persistent subscriptions, `ack(events)` / `nack(events, action)` settle deliveries;
    `caught_up` is set when catch-up has ended; `position` is the last global position the
    server says it has examined."""

    def __init__(
        self, client: Client, store: str, request: subscriptions_pb2.SubscribeRequest, timeout_s: float | None = None
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.store = store
        self.request = request
        self.name = request.subscription_name or "transient"
        self.consumer_id = ""
        self.node_id = ""
        self.position = -1
        self.caught_up = asyncio.Event()
        self._call: Any = None
        self._span = NO_SPAN
        self._pending: collections.deque[Event] = collections.deque()
        self._closed = False

    @property
    def persistent(self) -> bool:
        return bool(self.request.subscription_name) and self.request.subscription_name != "transient"

    async def start(self) -> Subscription:
        """Starts the call and waits for its confirmation."""
        if self._call is not None:
            return self
        stubs = await self.client._stubs_now()
        self._span = self.client.tracing.start("Subscriptions", "Subscribe", stubs.target)
        self._call = stubs.subscriptions.Subscribe(
            self.request, timeout=self.timeout_s, metadata=(self.client.metadata + self._span.metadata) or None
        )
        message = await self._read()
        if message is None or message.WhichOneof("message") != "confirmation":
            raise GaterError("the server did not confirm the subscription")
        self.consumer_id = message.confirmation.consumer_id
        self.node_id = message.confirmation.node_id
        return self

    async def _read(self) -> Any:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._closed:
                self._span.end()
                return None
            error = convert.error_from_status(e)
            self._span.end(error)
            raise error from None
        except asyncio.CancelledError:
            if self._closed:
                self._span.end()
                return None
            raise
        if message is grpc.aio.EOF:
            self._span.end()
            return None
        return message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._call is None:
            await self.start()
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            message = await self._read()
            if message is None:
                raise StopAsyncIteration
            kind = message.WhichOneof("message")
            if kind == "events":
                self._pending.extend(convert.event(r) for r in message.events.events)
                if self._pending:
                    self.position = max(self.position, self._pending[-1].position)
            elif kind == "caught_up":
                self.position = max(self.position, message.caught_up.position)
                self.caught_up.set()
            elif kind in ("checkpoint", "heartbeat"):
                self.position = max(self.position, getattr(message, kind).position)
        return self._pending.popleft()

    async def ack(self, events: Event | Iterable[Event | int]) -> None:
        """Acknowledges events (or global positions) of this persistent subscription."""
        await self.client.ack(self.store, self.name, convert.positions(events))

    async def nack(self, events: Event | Iterable[Event | int], action: NackAction = NackAction.RETRY, reason: str = "") -> None:
        await self.client.nack(self.store, self.name, convert.positions(events), action, reason)

    async def close(self) -> None:
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        self._span.end()

    async def __aenter__(self) -> Subscription:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
