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
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from exesdb.v1 import cluster_pb2, streams_pb2, subscriptions_pb2, types_pb2

from .. import __version__, _calls, _grpc
from ..config import GatewayConfig
from ..errors import GaterError, InvalidArgumentError
from ..metrics import HttpEndpoint, Metric, Metrics, gauge
from ..security import (
    ADMIN_METHODS,
    AUDIT_STORE,
    AUDIT_STREAM,
    ChannelTls,
    ServerTls,
    is_loopback,
)
from ..security.admission import Guard, HealthGuard, PolicySource
from ..security.audit import audit_record, target_of
from ..security.context import admitted, current_caller
from ..tracing import Tracing, TracingConfig
from ._session import SessionForwarder
from .discovery import Discovery
from .pool import ChannelPool, MemberView
from .proxy import Forwarder

# GatewayConfig lives in gater.config; importing it from here still works for older callers.
__all__ = ["GatewayServer"]

log = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GatewayServer:
    def __init__(
        self,
        config: GatewayConfig,
        discovery: Discovery,
        *,
        tracing: Tracing | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.discovery = discovery
        obs = config.observability
        self.metrics = metrics if metrics is not None else Metrics("gateway") if obs.metrics_listen else None
        """This gateway's metric families (None unless --metrics-listen, or given: `gater dev`
        shares one with its embedded node)."""
        if self.metrics is not None:
            self.metrics.collect(self._collect)
        self.tracing = tracing or Tracing.from_config(
            TracingConfig(obs.otlp_endpoint, obs.service_name, obs.trace_metadata)
        )
        self.http: HttpEndpoint | None = None
        metadata = (("x-gater-secret", config.cluster_secret),) if config.cluster_secret else ()
        self.policy = PolicySource(config.auth)
        """The policy and credential files, re-read when they change or on reload()."""
        self.guard = Guard(
            self.policy,
            config.default_store,
            certificates=config.auth.certificate_identities,
            rate_per_s=config.max_requests_per_s,
        )
        self.tls = ServerTls.listener(config.tls)
        self.pool = ChannelPool(
            discovery,
            policy=config.policy,
            cluster_id=config.cluster_id,
            metadata=metadata,
            probe_interval_s=config.probe_interval_s,
            probe_timeout_s=config.probe_timeout_s,
            tls=ChannelTls.upstream(config.tls),
            metrics=self.metrics,
        )
        self.forwarder = Forwarder(
            self.pool,
            extra_metadata=metadata,
            acting_for=self._acting_for if config.auth.enabled else None,
            metrics=self.metrics,
            tracing=self.tracing,
        )
        self._requests = {
            f"/{name}/{m.name}": GetMessageClass(m.input_type)
            for name, service in _grpc.EXESDB_SERVICES.items()
            for m in service.methods
        }
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
        self._check_transport()
        await self.pool.start()
        cfg = self.config
        interceptors = () if cfg.auth.open_health or not cfg.auth.enabled else (HealthGuard(self.guard),)
        server = grpc.aio.server(
            options=_grpc.server_options(
                cfg.max_message_bytes, reuse_port=cfg.reuse_port, max_concurrent_streams=cfg.max_concurrent_streams
            ),
            interceptors=interceptors,
        )
        try:
            if self.tls is not None:
                self.port = server.add_secure_port(cfg.listen, self.tls.credentials())
            else:
                self.port = server.add_insecure_port(cfg.listen)
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
                if method.client_streaming:  # AppendSession
                    handler = _grpc.session_handler(SessionForwarder(self.forwarder), None, path, hooks)
                elif path == "/exesdb.v1.Subscriptions/Subscribe":
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
        await self.policy.start()
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
        """What runs around every call: admission and the audit of what it refuses when
        authentication is on, metrics, traces and the access log when configured."""
        cfg = self.config
        secured = cfg.auth.enabled or cfg.max_requests_per_s is not None
        return _calls.CallHooks(
            admit=self._admit if secured else None,
            metrics=self.metrics,
            tracing=self.tracing,
            access_log=cfg.observability.access_log,
            audit=self._audit_refusal if cfg.auth.enabled else None,
            audited=ADMIN_METHODS,
        )

    def _request(self, method: str, request: Any) -> Any:
        """The decoded request (the gateway forwards bytes; admission reads fields)."""
        if not isinstance(request, bytes):
            return request
        message_class = self._requests[method]
        try:
            return message_class.FromString(request)
        except DecodeError:
            raise InvalidArgumentError(
                "request", f"is not a valid {message_class.DESCRIPTOR.full_name} (protobuf decoding failed)"
            ) from None

    async def _admit(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        await self.guard.admit(method, self._request(method, request), context)

    def _acting_for(self) -> tuple[tuple[str, str], ...]:
        return self.guard.forwarding_metadata(current_caller())

    async def _audit_refusal(self, method: str, request: Any, code: str, message: str) -> None:
        """An administrative call this gateway refused never reached a node: record it there."""
        if admitted():
            return  # the node recorded it
        try:
            decoded = self._request(method, request)
        except InvalidArgumentError:
            return
        record = audit_record(method.rsplit("/", 1)[1], target_of(method, decoded), code, message, via=self.address)
        event = types_pb2.NewEvent(event_id=record.event_id, event_type=record.event_type, data=record.data)
        append = streams_pb2.AppendEventsRequest(store=AUDIT_STORE, stream_id=AUDIT_STREAM, events=[event])
        try:
            await self.forwarder.send("/exesdb.v1.Streams/AppendEvents", append.SerializeToString())
        except (grpc.aio.AioRpcError, GaterError) as e:
            log.error("could not record a refused call in the audit log", extra={"error": str(e), "method": method})

    def _check_transport(self) -> None:
        """Plaintext is for loopback; the cluster secret goes to nodes in clear only when
        explicitly allowed or when they are on this machine."""
        cfg = self.config
        host = cfg.listen.rsplit(":", 1)[0]
        if self.tls is None and not is_loopback(host):
            log.warning(
                "serving PLAINTEXT on a non-loopback address: anyone on the network can read and send calls; "
                "use --tls-cert/--tls-key (docs/security.md)",
                extra={"listen": cfg.listen},
            )
        if cfg.cluster_secret and not cfg.tls.upstream and not cfg.auth.allow_insecure_secret:
            log.warning(
                "the cluster secret goes to nodes in clear: use --upstream-ca (TLS to nodes), or mTLS instead of "
                "the secret; pass --allow-insecure-secret to silence this on a trusted network",
            )

    async def reload(self) -> None:
        """SIGHUP: read certificates, policy and credential files again (open streams stay)."""
        if self.tls is not None:
            self.tls.reload()
        if self.config.auth.enabled:
            await self.policy.reload()

    def _collect(self) -> list[Metric]:
        """Scrape time: the pool's members by state, and discovery."""
        members = gauge(
            "gater_gateway_members",
            "Pool members by state: available (calls go there), ejected (after failed calls), "
            "not_answering (health probe), other_cluster (not the cluster followed).",
            ["state"],
        )
        counts = dict.fromkeys(("available", "ejected", "not_answering", "other_cluster"), 0)
        in_flight = 0
        for view in self.pool.members():
            status = view.status
            in_flight += status.in_flight
            if not status.healthy:
                counts["other_cluster"] += 1
            elif not status.answering:
                counts["not_answering"] += 1
            elif not status.available:
                counts["ejected"] += 1
            else:
                counts["available"] += 1
        for state, count in counts.items():
            members.add_metric([state], count)
        calls = gauge("gater_gateway_in_flight_calls", "Calls the gateway is forwarding now.")
        calls.add_metric([], in_flight)
        d = self.discovery
        up = gauge("gater_discovery_up", "1 when the last read of the discovery source succeeded.", ["discovery"])
        up.add_metric([d.kind], 1 if d.ok else 0)
        listed = gauge("gater_discovery_members", "Members the discovery source lists.", ["discovery"])
        listed.add_metric([d.kind], len(d.members()))
        last = gauge(
            "gater_discovery_last_success_timestamp_seconds",
            "When the discovery source was last read successfully (Unix time; absent before the first).",
            ["discovery"],
        )
        if d.last_success is not None:
            last.add_metric([d.kind], d.last_success)
        return [members, calls, up, listed, last]

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
        await self.policy.stop()
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
