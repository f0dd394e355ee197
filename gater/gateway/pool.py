"""The channel pool: one gRPC channel per node, fed by discovery, guarded by cluster id, kept
honest by health probes.

Owns: `ChannelPool` — the asyncio shell around `PoolState` (the pure choice of node). It
follows a Discovery provider, opens and closes channels as members join and leave, probes each
member (one task per member), and tells listeners when the set of usable members changes
(gateway health, Cluster.WatchMembers).
Must not import gater.store, gater.subscriptions or gater.node.

Probes. Every `probe_interval_s`, and at once when a member's connection drops or a call on it
fails, the member's own grpc.health.v1 Check (service "") is asked with a `probe_timeout_s`
deadline; only SERVING in time makes it usable, anything else makes it unusable until a later
probe answers SERVING. Why not keepalive alone: a node whose event loop is stuck still answers
HTTP/2 pings (the C core does), and a dead node with no traffic is only found by asking.

Cluster guard. Before a member is first used, and whenever it comes back after not answering,
its Cluster.GetStatus is read: nodes that share storage report one cluster id; a gateway follows
exactly one cluster (the configured one, or the first it meets), so a node of another cluster (a
misconfigured Consul tag, a stale DNS record, another node restarted on a known address) is
never sent a call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2

from exesdb.v1 import cluster_pb2

from ..config import PoolPolicy
from ..metrics import Metrics
from ..security import ChannelTls
from .discovery import Discovery, MemberAddress
from .pool_state import MemberStatus, PoolState

__all__ = ["CHANNEL_OPTIONS", "ChannelPool", "MemberView"]

log = logging.getLogger(__name__)

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # A broken connection is found within seconds: ping every 2 s, give up when the ack takes
    # 2 s. (In grpcio the ping ack deadline is grpc.http2.ping_timeout_ms; keepalive_timeout_ms
    # alone does nothing.) A hung node that still acks pings is found by the health probes.
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
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_READY = grpc.ChannelConnectivity.READY


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
        probe_interval_s: float = 1.0,
        probe_timeout_s: float = 2.0,
        tls: ChannelTls | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.discovery = discovery
        self.tls = tls
        """TLS of the channels to members (None: plaintext)."""
        self._ejections = metrics.gateway_ejections if metrics is not None else None
        self.state = PoolState(policy)
        self.cluster_id = cluster_id
        """The cluster this gateway follows (configured, or the first one probed)."""
        self.metadata = metadata
        self.rng = rng or random.Random()
        self.probe_interval_s = probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self.calls: collections.Counter[str] = collections.Counter()
        """Calls started per member address since the gateway started."""
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._info: dict[str, tuple[str, str]] = {}  # address -> (node_id, cluster_id)
        self._probers: dict[str, asyncio.Task[None]] = {}
        self._due: dict[str, asyncio.Event] = {}  # set: probe this member now
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
        tasks = [t for t in (self._watch, *self._probers.values(), *self._tasks) if t is not None]
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
            prober = self._probers.pop(address, None)
            if prober is not None:
                prober.cancel()
            self._due.pop(address, None)
            channel = self._channels.pop(address, None)
            self._info.pop(address, None)
            if channel is not None:
                self._spawn(channel.close(5.0))
            log.info("member left", extra={"member": address})
        for address in joined:
            # Unusable until a probe answers (see the module docstring).
            self._channels[address] = self._open(address)
            self._due[address] = asyncio.Event()
            log.info("member joined", extra={"member": address})
        if joined:
            await asyncio.gather(*(self._probe(a) for a in joined))
            for address in joined:
                self._probers[address] = asyncio.create_task(self._keep_probing(address), name=f"probe {address}")
        if joined or left:
            self._notify()

    # -- probing ----------------------------------------------------------------------------

    async def _keep_probing(self, address: str) -> None:
        while True:
            await self._until_due(address)
            await self._probe(address)

    async def _until_due(self, address: str) -> None:
        """Returns after `probe_interval_s`, or sooner when a call on the member failed or its
        connection left READY."""
        due = self._due[address]
        channel = self._channels[address]
        waiters = [asyncio.ensure_future(due.wait())]
        state = channel.get_state()
        if state == _READY:
            waiters.append(asyncio.ensure_future(channel.wait_for_state_change(state)))
        try:
            await asyncio.wait(waiters, timeout=self.probe_interval_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        due.clear()

    async def _probe(self, address: str) -> None:
        """One probe: who the member is (when it was not usable), then its health."""
        channel = self._channels.get(address)
        if channel is None:
            return
        was = self.state.is_usable(address)
        reason = ""
        try:
            fits = was or await self._identify(address, channel)
            reason = "another cluster"
            serving = False
            if fits:
                check = channel.unary_unary(
                    _HEALTH_CHECK,
                    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                    response_deserializer=health_pb2.HealthCheckResponse.FromString,
                )
                reply = await check(health_pb2.HealthCheckRequest(), timeout=self.probe_timeout_s)
                serving = reply.status == _SERVING
                reason = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as e:
            serving, reason = False, e.code().name
        except Exception as e:  # noqa: BLE001 - an answer we cannot read must not end the probing
            log.error("health probe failed", exc_info=e, extra={"member": address})
            serving, reason = False, type(e).__name__
        if address not in self._channels:
            return  # it left while being probed
        self.state.report_probe(address, serving)
        if self.state.is_usable(address) == was:
            return
        if was:
            if self._ejections is not None:
                self._ejections.labels("probe_failed").inc()
            log.warning("member does not answer its health: not used", extra={"member": address, "answer": reason})
        else:
            log.info("member answers its health: usable", extra={"member": address})
        self._notify()

    async def _identify(self, address: str, channel: grpc.aio.Channel) -> bool:
        """Reads the member's node and cluster id; True when its cluster is the one followed."""
        call = channel.unary_unary(
            _GET_STATUS,
            request_serializer=cluster_pb2.GetStatusRequest.SerializeToString,
            response_deserializer=cluster_pb2.GetStatusResponse.FromString,
        )
        status = await call(cluster_pb2.GetStatusRequest(), timeout=self.probe_timeout_s, metadata=self.metadata)
        known = self._info.get(address)
        self._info[address] = (status.node_id, status.cluster_id)
        if self.cluster_id is None:
            self.cluster_id = status.cluster_id
            log.info("following cluster", extra={"cluster_id": status.cluster_id, "member": address})
        fits = status.cluster_id == self.cluster_id
        if not fits and (known is None or known[1] != status.cluster_id):
            log.warning(
                "member belongs to another cluster: not routing to it (check its storage or discovery tags)",
                extra={"member": address, "its_cluster_id": status.cluster_id, "cluster_id": self.cluster_id},
            )
        self.state.mark_healthy(address, fits)
        return fits

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open(self, address: str) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        # Credentials are read when a member joins: a certificate rotated on disk is used by
        # the channels opened after it.
        return grpc.aio.secure_channel(address, self.tls.credentials(), options=CHANNEL_OPTIONS + self.tls.options())

    # -- choosing ---------------------------------------------------------------------------

    def choose(self) -> str | None:
        return self.state.choose(time.monotonic())

    def channel(self, address: str) -> grpc.aio.Channel | None:
        return self._channels.get(address)

    async def connected(self, address: str, timeout_s: float | None) -> grpc.aio.Channel | None:
        """The member's channel once it is connected (READY), waiting at most `timeout_s`
        (None: the probe timeout); None when it did not connect. A call issued only on a
        connected channel is known not to have been sent when this returns None."""
        channel = self._channels.get(address)
        if channel is None:
            return None
        if channel.get_state(try_to_connect=True) == _READY:
            return channel
        wait = self.probe_timeout_s if timeout_s is None else min(timeout_s, self.probe_timeout_s)
        try:
            async with asyncio.timeout(wait):
                await channel.channel_ready()
        except TimeoutError:
            return None
        return channel

    def acquire(self, address: str) -> None:
        self.calls[address] += 1
        self.state.acquire(address)

    def release(self, address: str) -> None:
        self.state.release(address)

    def report_failure(self, address: str) -> None:
        """A call on `address` failed in a way that blames the node: it is ejected, unusable
        until a probe answers, and probed at once."""
        was = self.state.is_available(address, time.monotonic())
        usable = self.state.is_usable(address)
        until = self.state.report_failure(address, time.monotonic(), self.rng)
        due = self._due.get(address)
        if due is not None:
            due.set()
        if was and until is not None:
            if self._ejections is not None:
                self._ejections.labels("call_failed").inc()
            log.warning("member ejected", extra={"member": address, "for_s": round(until - time.monotonic(), 2)})
            self._spawn(self._notify_at(until))
        if was or usable:
            self._notify()

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

    def routable(self) -> bool:
        """Whether a call made now would be sent to some member: the gateway's health."""
        return self.state.routable(time.monotonic())

    def members(self) -> list[MemberView]:
        out = []
        for status in self.state.snapshot(time.monotonic()):
            node_id, cluster_id = self._info.get(status.address, ("", ""))
            out.append(MemberView(status.address, node_id, cluster_id, status))
        return out

    def _notify(self) -> None:
        self.generation += 1
        self._spawn(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_change(self, generation: int) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.generation != generation)
        return self.generation
