"""The channel under a client: one of several targets, switched when it fails.

Owns: `Connection` — dials the first target that becomes READY (a refused connection fails at
once, an unanswered one after the connect timeout), runs unary calls and moves them to the
next target on UNAVAILABLE (once per target), hands the current stubs to streaming calls, and
closes. `__init__` only stores state; `dial()` does the I/O.
Must not import anything from gater but gater.errors and this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from exesdb.v1 import (
    cluster_pb2_grpc,
    snapshots_pb2_grpc,
    stores_pb2_grpc,
    streams_pb2_grpc,
    subscriptions_pb2_grpc,
)

from ..errors import InvalidArgumentError, UnavailableError
from ._convert import error_from_status
from ._tracing import NO_TRACING, ClientTracing
from ._values import TLSConfig

__all__ = ["Connection", "Stubs"]


class Stubs:
    """The exesdb.v1 stubs over one channel to one target."""

    def __init__(self, target: str, channel: grpc.aio.Channel) -> None:
        self.target = target
        self.channel = channel
        self.streams = streams_pb2_grpc.StreamsStub(channel)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionsStub(channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(channel)
        self.stores = stores_pb2_grpc.StoresStub(channel)
        self.cluster = cluster_pb2_grpc.ClusterStub(channel)


class Connection:
    """A channel to one of `targets` at a time, with failover for unary calls."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        connect_timeout_s: float,
        tls: TLSConfig | None,
        metadata: Sequence[tuple[str, str]],
        max_message_bytes: int,
        tracing: ClientTracing = NO_TRACING,
    ) -> None:
        if not targets:
            raise InvalidArgumentError("targets", "give at least one host:port")
        self.targets = list(targets)
        self.connect_timeout_s = connect_timeout_s
        self.tls = tls
        self.metadata = tuple(metadata)
        self.max_message_bytes = max_message_bytes
        self.tracing = tracing
        self._stubs: Stubs | None = None
        self._next = 0
        self._closed = False
        self._switch = asyncio.Lock()

    @property
    def target(self) -> str:
        """The address in use ("" before the first dial and after close)."""
        return self._stubs.target if self._stubs is not None else ""

    @property
    def current(self) -> Stubs | None:
        """The stubs in use (None before the first dial and after close)."""
        return self._stubs

    @property
    def connected(self) -> bool:
        return self._stubs is not None

    async def close(self) -> None:
        """Closes the channel; idempotent."""
        self._closed = True
        stubs, self._stubs = self._stubs, None
        if stubs is not None:
            await stubs.channel.close()

    def _channel(self, target: str) -> grpc.aio.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            # Fail fast on a dead address instead of waiting out the reconnect backoff.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if self.tls is None:
            return grpc.aio.insecure_channel(target, options=options)
        if self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        credentials = grpc.ssl_channel_credentials(
            self.tls.root_certificates, self.tls.private_key, self.tls.certificate_chain
        )
        return grpc.aio.secure_channel(target, credentials, options=options)

    async def dial(self, first: bool = False, failed: Stubs | None = None) -> Stubs:
        """Connects to the next target that becomes READY, starting after the one that failed."""
        async with self._switch:
            if self._closed and not first:
                raise UnavailableError("the client is closed")
            if self._stubs is not None and self._stubs is not failed:
                return self._stubs  # another call switched already
            if self._stubs is not None:
                await self._stubs.channel.close()
                self._stubs = None
            self._closed = False
            reasons = []
            for _ in range(len(self.targets)):
                target = self.targets[self._next % len(self.targets)]
                self._next += 1
                channel = self._channel(target)
                try:
                    await _ready(channel, self.connect_timeout_s)
                except UnavailableError as e:
                    await channel.close()
                    reasons.append(f"{target}: {e.message}")
                    continue
                self._stubs = Stubs(target, channel)
                return self._stubs
            raise UnavailableError("cannot connect to " + "; ".join(reasons))

    async def stubs(self) -> Stubs:
        """The stubs in use, dialling when there are none."""
        if self._stubs is None:
            return await self.dial()
        return self._stubs

    async def unary(self, service: str, method: str, request: Any, timeout_s: float | None) -> Any:
        """One unary call, moved to the next target on UNAVAILABLE (once per target)."""
        attempts = len(self.targets)
        while True:
            stubs = await self.stubs()
            rpc = getattr(getattr(stubs, service), method)
            span = self.tracing.start(service.capitalize(), method, stubs.target)
            try:
                reply = await rpc(request, timeout=timeout_s, metadata=(self.metadata + span.metadata) or None)
                span.end()
                return reply
            except asyncio.CancelledError:
                span.end()
                # Another call switched targets and closed this channel under ours (grpc
                # cancels its calls): go on at the new target, unless we are cancelled.
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or self._closed or stubs is self._stubs:
                    raise
                attempts -= 1
                if attempts > 0:
                    continue
                raise UnavailableError(f"the connection to {stubs.target} was lost") from None
            except grpc.aio.AioRpcError as e:
                span.end(error_from_status(e))
                attempts -= 1
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempts > 0 and len(self.targets) > 1:
                    try:
                        await self.dial(failed=stubs)
                    except UnavailableError:
                        raise error_from_status(e) from None
                    continue
                raise error_from_status(e) from None


async def _ready(channel: grpc.aio.Channel, timeout_s: float) -> None:
    """Returns when the channel is READY; UnavailableError when it fails to connect (a refused
    connection fails at once rather than at the timeout)."""
    ready = grpc.ChannelConnectivity.READY
    failed = grpc.ChannelConnectivity.TRANSIENT_FAILURE
    try:
        async with asyncio.timeout(timeout_s):
            state = channel.get_state(try_to_connect=True)
            while state != ready:
                if state == failed:
                    raise UnavailableError("connection failed")
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        raise UnavailableError(f"no answer within {timeout_s:g}s") from None
