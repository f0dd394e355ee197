"""The gateway as one component: a grpc.aio server that forwards exesdb.v1 to nodes.

Owns: `GatewayServer` (start() returns when serving, with its port; stop() idempotent),
its own Cluster service (members, pool state, WatchMembers), its health (SERVING only while a
call would be sent to some member, i.e. while some member answers its own health probe;
NOT_SERVING otherwise, changed without client traffic) and reflection.
Must not import gater.store, gater.subscriptions or gater.node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from exesdb.v1 import cluster_pb2, subscriptions_pb2

from .. import __version__, _calls, _grpc
from ..config import GatewayConfig
from ..metrics import HttpEndpoint, Metrics
from ..tracing import Tracing, TracingConfig
from .discovery import Discovery
from .pool import ChannelPool, MemberView
from .proxy import Forwarder

# GatewayConfig lives in gater.config; importing it from here still works for older callers.
__all__ = ["GatewayServer"]

log = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GatewayServer:
    def __init__(self, config: GatewayConfig, discovery: Discovery, *, tracing: Tracing | None = None) -> None:
        self.config = config
        self.discovery = discovery
        obs = config.observability
        self.metrics = Metrics() if obs.metrics_listen else None
        """This gateway's metric families (None unless --metrics-listen)."""
        self.tracing = tracing or Tracing.from_config(
            TracingConfig(obs.otlp_endpoint, obs.service_name, obs.trace_metadata)
        )
        self.http: HttpEndpoint | None = None
        metadata = (("x-gater-secret", config.cluster_secret),) if config.cluster_secret else ()
        self.pool = ChannelPool(
            discovery,
            policy=config.policy,
            cluster_id=config.cluster_id,
            metadata=metadata,
            probe_interval_s=config.probe_interval_s,
            probe_timeout_s=config.probe_timeout_s,
        )
        self.forwarder = Forwarder(self.pool, extra_metadata=metadata)
        self.health = HealthServicer()
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._stopped = False
        self._serving: bool | None = None
        self._health_task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self.config.listen.rsplit(':', 1)[0]}:{self.port}"

    async def start(self) -> int:
        await self.pool.start()
        server = grpc.aio.server(options=_grpc.server_options(self.config.max_message_bytes, reuse_port=self.config.reuse_port))
        try:
            self.port = server.add_insecure_port(self.config.listen)
        except RuntimeError as e:
            await self.pool.stop()
            raise OSError(f"cannot listen on {self.config.listen}: is another process using it? ({e})") from e
        hooks = self._hooks()
        handlers = []
        for service_name, service in _grpc.EXESDB_SERVICES.items():
            if service_name == "exesdb.v1.Cluster":
                handlers.append(_grpc.handlers_for(service_name, _ClusterServicer(self), hooks))
                continue
            table = {}
            for method in service.methods:
                path = f"/{service_name}/{method.name}"
                # Requests stay bytes (the node decodes them), except where a field is read.
                if path == "/exesdb.v1.Subscriptions/Subscribe":
                    handler = _grpc.stream_handler(
                        self.forwarder.subscribe(), subscriptions_pb2.SubscribeRequest, path, hooks
                    )
                elif method.server_streaming:
                    handler = _grpc.stream_handler(self.forwarder.read_stream(path), None, path, hooks)
                else:
                    handler = _grpc.unary_handler(self.forwarder.unary(path), None, path, hooks)
                table[method.name] = handler
            handlers.append(grpc.method_handlers_generic_handler(service_name, table))
        server.add_generic_rpc_handlers(tuple(handlers))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        _grpc.add_reflection(server)
        await server.start()
        self._server = server
        await self._update_health()
        self._health_task = asyncio.create_task(self._follow_health(), name="gateway-health")
        if self.config.observability.metrics_listen:
            self.http = HttpEndpoint(self.config.observability.metrics_listen, self.metrics, lambda: bool(self._serving))
            await self.http.start()
        log.info(
            "gateway serving",
            extra={"address": self.address, "discovery": self.discovery.kind, "members": len(self.pool.state)},
        )
        return self.port

    def _hooks(self) -> _calls.CallHooks:
        """What runs around every call: metrics, traces and the access log when configured."""
        return _calls.CallHooks(
            metrics=self.metrics,
            tracing=self.tracing,
            access_log=self.config.observability.access_log,
        )

    async def _follow_health(self) -> None:
        """One task sets the health, so statuses never interleave; a change during an update
        is seen by the next wait."""
        generation = self.pool.generation
        while True:
            generation = await self.pool.wait_for_change(generation)
            await self._update_health()

    async def _update_health(self) -> None:
        serving = self.pool.routable()
        if serving == self._serving or self._stopped:
            return
        self._serving = serving
        status = _SERVING if serving else _NOT_SERVING
        for name in ("", *_grpc.EXESDB_SERVICES):
            await self.health.set(name, status)
        if serving:
            log.info("gateway has usable nodes: SERVING", extra={"usable": len(self.pool.state.usable())})
        else:
            log.warning("no usable node: NOT_SERVING; calls get UNAVAILABLE", extra={"known": len(self.pool.state)})

    async def stop(self, grace_s: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.http is not None:
            await self.http.stop()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        if self._server is not None:
            await self.health.enter_graceful_shutdown()
            await self._server.stop(self.config.grace_s if grace_s is None else grace_s)
        await self.pool.stop()
        self.tracing.shutdown()
        log.info("gateway stopped", extra={"address": self.address})

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> GatewayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _member(view: MemberView) -> cluster_pb2.Member:
    member = cluster_pb2.Member(
        node_id=view.node_id,
        address=view.address,
        cluster_id=view.cluster_id,
        healthy=view.status.available,
        in_flight=view.status.in_flight,
        failures=view.status.failures,
    )
    if view.status.ejected_for_s:
        member.ejected_until.FromNanoseconds(int((time.time() + view.status.ejected_for_s) * 1e9))
    return member


class _ClusterServicer:
    def __init__(self, gateway: GatewayServer) -> None:
        self.gateway = gateway

    async def GetStatus(self, request: cluster_pb2.GetStatusRequest, context: Any) -> cluster_pb2.GetStatusResponse:
        g = self.gateway
        return cluster_pb2.GetStatusResponse(
            role=cluster_pb2.ROLE_GATEWAY,
            node_id=g.config.gateway_id or f"{socket.gethostname()}:{g.port}",
            cluster_id=g.pool.cluster_id or "",
            version=__version__,
            members=[_member(v) for v in g.pool.members()],
            discovery=g.discovery.kind,
            discovery_ok=g.discovery.ok,
            address=g.address,
        )

    async def WatchMembers(self, request: cluster_pb2.WatchMembersRequest, context: Any) -> AsyncIterator[cluster_pb2.WatchMembersResponse]:
        pool = self.gateway.pool
        Change = cluster_pb2.WatchMembersResponse
        known = {v.address: _member(v) for v in pool.members()}
        for member in known.values():
            yield Change(change=Change.CHANGE_PRESENT, member=member)
        generation = pool.generation
        while True:
            generation = await pool.wait_for_change(generation)
            now = {v.address: _member(v) for v in pool.members()}
            for address in now.keys() - known.keys():
                yield Change(change=Change.CHANGE_JOINED, member=now[address])
            for address in known.keys() - now.keys():
                yield Change(change=Change.CHANGE_LEFT, member=known[address])
            for address in now.keys() & known.keys():
                before, after = known[address], now[address]
                if (before.healthy, before.cluster_id, before.node_id) != (after.healthy, after.cluster_id, after.node_id):
                    yield Change(change=Change.CHANGE_UPDATED, member=after)
            known = now
