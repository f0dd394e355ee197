"""Reaching the owner of a persistent subscription: this node's own dispatcher while it holds
the subscription's lease, the owner node over gRPC otherwise.

Owns: `OwnerRelay` — the channels to other nodes (opened on demand, closed by `stop()`) and
the one loop that finds the owner, runs a call or a consumer's stream there, and carries it
over to the next owner when the current one goes away:
- the dispatch moved (LeaseLostError here, or LEASE_LOST from the owner): ask again at once;
- the owner does not answer (UNAVAILABLE without a status of ours: dead or cut off): its
  lease runs out at most `lease_ttl_s` after the first failure seen, then a live node takes
  over — wait for that, unless the caller's deadline comes first: then UNAVAILABLE at once,
  so a client retries instead of running out of time; give up after three lease lives;
- anything else the owner answers is the answer (rebuilt as this node's own error).
A stream carried over passes one confirmation and one caught_up (`_wire.OncePerStream`).
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from .. import _wire
from ..errors import STATUS_DETAILS_KEY, GaterError, LeaseLostError, UnavailableError, decode_status
from ..security import ChannelTls
from ..subscriptions.dispatch import Dispatcher, PersistentSubscriptions

__all__ = ["OwnerRelay"]

log = logging.getLogger(__name__)

_SERVICE = "/exesdb.v1.Subscriptions/"
_TAKEOVER_MARGIN_S = 1.0
"""Time a takeover needs after the lease ran out (take the lease, load the state, apply)."""


class OwnerRelay:
    """Calls and streams at the owner of a persistent subscription. `start()`, then `call()`
    and `stream()`; `stop()` closes the channels (idempotent); also `async with`."""

    _OPTIONS = [
        ("grpc.keepalive_time_ms", 2000),
        ("grpc.keepalive_timeout_ms", 2000),
        ("grpc.http2.ping_timeout_ms", 2000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]

    def __init__(
        self,
        subscriptions: PersistentSubscriptions,
        *,
        cluster_secret: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
        retry_s: float = 0.5,
        tls: ChannelTls | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.retry_s = retry_s
        self.tls = tls
        """TLS (and the client certificate of mTLS) of the channels to other nodes."""
        self._metadata = (("x-gater-secret", cluster_secret),) if cluster_secret else ()
        self._options = [
            *self._OPTIONS,
            *(tls.options() if tls else ()),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._unreachable: dict[str, float] = {}  # owner address -> when it first failed
        self._running = False

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def __aenter__(self) -> OwnerRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the two shapes of call -----------------------------------------------------------------

    async def call(
        self,
        store_id: str,
        name: str,
        method: str,
        request: Any,
        here: Callable[[Dispatcher], Awaitable[bytes]],
        *,
        time_left_s: float | None = None,
    ) -> bytes:
        """The serialized answer of `method`: `here(dispatcher)` on this node when it owns
        the subscription, else the owner's. `time_left_s`: the caller's deadline."""

        async def local(dispatcher: Dispatcher) -> AsyncIterator[bytes]:
            yield await here(dispatcher)

        async def remote(address: str, timeout_s: float | None) -> AsyncIterator[bytes]:
            call = self._channel(address).unary_unary(_SERVICE + method)
            yield await call(request.SerializeToString(), metadata=self._metadata, timeout=timeout_s)

        async with contextlib.aclosing(self._at_owner(store_id, name, local, remote, time_left_s)) as answers:
            async for answer in answers:
                return answer
        raise UnavailableError(f"no answer from the owner of subscription {name!r}")  # not reached

    async def stream(
        self, store_id: str, name: str, request: Any, here: Callable[[Dispatcher], AsyncIterator[bytes]]
    ) -> AsyncIterator[bytes]:
        """A consumer's Subscribe stream, as serialized messages: `here(dispatcher)` while
        this node owns the subscription, the owner's stream otherwise, carried over from
        owner to owner for as long as the consumer stays."""
        once = _wire.OncePerStream()

        async def remote(address: str, timeout_s: float | None) -> AsyncIterator[bytes]:
            call = self._channel(address).unary_stream(_SERVICE + "Subscribe")(
                request.SerializeToString(), metadata=self._metadata
            )
            try:
                async for message in call:
                    yield message
            finally:
                call.cancel()

        async for message in self._at_owner(store_id, name, here, remote, None):
            if once.passes(message):
                yield message

    # -- the one owner loop ---------------------------------------------------------------------

    async def _at_owner(
        self,
        store_id: str,
        name: str,
        local: Callable[[Dispatcher], AsyncIterator[bytes]],
        remote: Callable[[str, float | None], AsyncIterator[bytes]],
        time_left_s: float | None,
    ) -> AsyncIterator[bytes]:
        clock = asyncio.get_running_loop().time
        deadline = None if time_left_s is None else clock() + time_left_s
        give_up: float | None = None  # set by the first failure of a streak
        while True:
            owner = await self.subscriptions.owner(store_id, name)
            try:
                if isinstance(owner, str):
                    timeout = None if deadline is None else max(0.0, deadline - clock())
                    async for message in remote(owner, timeout):
                        self._unreachable.pop(owner, None)
                        give_up = None
                        yield message
                else:
                    async for message in local(owner):
                        give_up = None
                        yield message
                return
            except LeaseLostError:
                continue  # this node's dispatcher lost the lease: the owner is elsewhere now
            except grpc.aio.AioRpcError as e:
                assert isinstance(owner, str)
                error = _relayed_error(e)
                now = clock()
                give_up = give_up or now + 3 * self.subscriptions.lease_ttl_s
                if isinstance(error, LeaseLostError) and now < give_up:
                    # The owner gave the subscription up (lost it, or shuts down): until the
                    # lease is free or taken, it may still be named owner.
                    await asyncio.sleep(self.retry_s / 5)
                    continue
                if e.code() != grpc.StatusCode.UNAVAILABLE or _answered(e):
                    raise error from e
                since = self._unreachable.setdefault(owner, now)
                taken_over_by = since + self.subscriptions.lease_ttl_s + _TAKEOVER_MARGIN_S
                if deadline is not None and taken_over_by + self.retry_s > deadline or now > give_up:
                    left = max(0.0, since + self.subscriptions.lease_ttl_s - now)
                    raise UnavailableError(
                        f"the node dispatching subscription {name!r} ({owner}) does not answer; another node"
                        f" takes the subscription over within {left:.1f} s: retry then"
                    ) from e
                log.debug("owner unreachable: waiting for the takeover", extra={"subscription": name, "owner": owner})
                await asyncio.sleep(self.retry_s)

    def _channel(self, address: str) -> grpc.aio.Channel:
        if not self._running:
            raise UnavailableError("this node is shutting down")
        channel = self._channels.get(address)
        if channel is None:
            if self.tls is not None:
                channel = grpc.aio.secure_channel(address, self.tls.credentials(), options=self._options)
            else:
                channel = grpc.aio.insecure_channel(address, options=self._options)
            self._channels[address] = channel
        return channel


def _answered(error: grpc.aio.AioRpcError) -> bool:
    """The owner itself answered (a status of ours, with details), rather than the transport."""
    return bool(dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY))


def _relayed_error(error: grpc.aio.AioRpcError) -> GaterError:
    """The owner's answer, as this node's own (same class, message and details)."""
    details = dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    return decode_status(error.code().name, error.details() or "the owning node failed", details)
