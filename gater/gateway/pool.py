"""The channel pool: one gRPC channel per node, fed by discovery, guarded by cluster id.

Owns: `ChannelPool` — the asyncio shell around `PoolState` (the pure choice of node). It
follows a Discovery provider, opens and closes channels as members join and leave, probes
each new member's cluster id (Cluster.GetStatus) before routing to it, and tells listeners
when the set of usable members changes (gateway health, Cluster.WatchMembers).
Must not import gater.store, gater.subscriptions or gater.node.

Why a member is unusable until probed: nodes that share storage report one cluster id; a
gateway follows exactly one cluster (the configured one, or the first it meets), so a node
of another cluster (a misconfigured Consul tag, a stale DNS record) is never sent a call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from exesdb.v1 import cluster_pb2

from ..config import PoolPolicy
from .discovery import Discovery, MemberAddress
from .pool_state import MemberStatus, PoolState

__all__ = ["CHANNEL_OPTIONS", "ChannelPool", "MemberView"]

log = logging.getLogger(__name__)

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # A hung node is found within seconds: ping every 2 s, give up when the ack takes 2 s.
    # (In grpcio the ping ack deadline is grpc.http2.ping_timeout_ms; keepalive_timeout_ms
    # alone does nothing.)
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 2000),
    ("grpc.http2.ping_timeout_ms", 2000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after a node restarts.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Keep the pool's own choice of node: one subchannel per channel, no grpc-level LB.
    ("grpc.enable_retries", 0),
]

_GET_STATUS = "/exesdb.v1.Cluster/GetStatus"
_PROBE_TIMEOUT_S = 2.0
_REPROBE_S = 2.0


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as Cluster.GetStatus and WatchMembers show it."""

    address: str
    node_id: str
    cluster_id: str
    status: MemberStatus


class ChannelPool:
    """Channels to the members `discovery` reports. `await start()` returns once the first
    member list has been probed; `stop()` is idempotent; works as `async with`."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        policy: PoolPolicy | None = None,
        cluster_id: str | None = None,
        metadata: tuple[tuple[str, str], ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.discovery = discovery
        self.state = PoolState(policy)
        self.cluster_id = cluster_id
        """The cluster this gateway follows (configured, or the first one probed)."""
        self.metadata = metadata
        self.rng = rng or random.Random()
        self.calls: collections.Counter[str] = collections.Counter()
        """Calls started per member address since the gateway started."""
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._info: dict[str, tuple[str, str]] = {}  # address -> (node_id, cluster_id)
        self._listeners: list[Callable[[], None]] = []
        self._changed = asyncio.Condition()
        self.generation = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.discovery.start()
        await self._apply(self.discovery.members())
        self._watch = asyncio.create_task(self._follow(), name="pool-follow")

    async def stop(self, grace_s: float = 1.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        tasks = [t for t in (self._watch, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.discovery.stop(grace_s)
        for channel in self._channels.values():
            await channel.close(grace_s)
        self._channels.clear()

    async def __aenter__(self) -> ChannelPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- membership -------------------------------------------------------------------------

    async def _follow(self) -> None:
        async for snapshot in self.discovery.watch():
            await self._apply(snapshot.members)

    async def _apply(self, members: frozenset[MemberAddress]) -> None:
        joined, left = self.state.update_members(m.address for m in members)
        for address in left:
            channel = self._channels.pop(address, None)
            self._info.pop(address, None)
            if channel is not None:
                self._spawn(channel.close(5.0))
            log.info("member left", extra={"member": address})
        for address in joined:
            # Unusable until its cluster id is known (see the module docstring).
            self.state.mark_healthy(address, False)
            self._channels[address] = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            log.info("member joined", extra={"member": address})
        if joined:
            await asyncio.gather(*(self._probe(a) for a in joined))
        if joined or left:
            self._notify()

    async def _probe(self, address: str) -> bool:
        """Learns a member's node and cluster id; routes to it only when the cluster fits."""
        channel = self._channels.get(address)
        if channel is None:
            return False
        call = channel.unary_unary(
            _GET_STATUS,
            request_serializer=cluster_pb2.GetStatusRequest.SerializeToString,
            response_deserializer=cluster_pb2.GetStatusResponse.FromString,
        )
        try:
            status = await call(cluster_pb2.GetStatusRequest(), timeout=_PROBE_TIMEOUT_S, metadata=self.metadata)
        except grpc.aio.AioRpcError as e:
            log.info("member not answering yet", extra={"member": address, "code": e.code().name})
            self._spawn(self._reprobe(address))
            return False
        self._info[address] = (status.node_id, status.cluster_id)
        if self.cluster_id is None:
            self.cluster_id = status.cluster_id
            log.info("following cluster", extra={"cluster_id": status.cluster_id, "member": address})
        if status.cluster_id != self.cluster_id:
            log.warning(
                "member belongs to another cluster: not routing to it (check its storage or discovery tags)",
                extra={"member": address, "its_cluster_id": status.cluster_id, "cluster_id": self.cluster_id},
            )
            return False
        self.state.mark_healthy(address, True)
        self._notify()
        return True

    async def _reprobe(self, address: str) -> None:
        while address in self._channels and not self._stopped:
            await asyncio.sleep(_REPROBE_S)
            if await self._probe(address):
                return

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- choosing ---------------------------------------------------------------------------

    def choose(self) -> str | None:
        return self.state.choose(time.monotonic())

    def fallback(self, failed: str) -> str | None:
        return self.state.fallback(failed, time.monotonic(), self.rng)

    def channel(self, address: str) -> grpc.aio.Channel | None:
        return self._channels.get(address)

    def acquire(self, address: str) -> None:
        self.calls[address] += 1
        self.state.acquire(address)

    def release(self, address: str) -> None:
        self.state.release(address)

    def report_failure(self, address: str) -> None:
        was = self.state.is_available(address, time.monotonic())
        until = self.state.report_failure(address, time.monotonic(), self.rng)
        if was and until is not None:
            log.warning("member ejected", extra={"member": address, "for_s": round(until - time.monotonic(), 2)})
            self._notify()
            self._spawn(self._notify_at(until))

    def report_success(self, address: str) -> None:
        if not self.state.is_available(address, time.monotonic()):
            self.state.report_success(address)
            self._notify()
        else:
            self.state.report_success(address)

    async def _notify_at(self, monotonic_time: float) -> None:
        await asyncio.sleep(max(0.0, monotonic_time - time.monotonic()))
        self._notify()

    # -- observing --------------------------------------------------------------------------

    def usable_count(self) -> int:
        return len(self.state.available(time.monotonic()))

    def members(self) -> list[MemberView]:
        out = []
        for status in self.state.snapshot(time.monotonic()):
            node_id, cluster_id = self._info.get(status.address, ("", ""))
            out.append(MemberView(status.address, node_id, cluster_id, status))
        return out

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _notify(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()
        self._spawn(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_change(self, generation: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.generation != generation)
        return self.generation
