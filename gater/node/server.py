"""The node as one component: a grpc.aio server over a storage backend.

Owns: `NodeServer` — start() opens the backend, creates the default store, binds, serves the
exesdb.v1 services, health and reflection, and returns when ready; stop() is idempotent.
Must not import gater.gateway.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from .. import _grpc
from .._calls import CallHooks
from ..config import NodeConfig, advertised_address
from ..errors import StoreAlreadyExistsError
from ..metrics import HttpEndpoint, Metrics
from ..security import ChannelTls, ServerTls, is_loopback
from ..security.admission import Guard, HealthGuard, PolicySource
from ..store.base import StorageBackend
from ..subscriptions.dispatch import PersistentSubscriptions
from ..subscriptions.hub import Hub
from ..tracing import Tracing, TracingConfig
from ._audit import AUDITED, Auditor
from ._convert import Edge
from ._health import StorageHealth
from ._lifecycle import Scavenger
from ._memory import MemoryTrimmer
from ._relay import OwnerRelay
from .servicers import (
    ClusterServicer,
    NodeIdentity,
    SnapshotsServicer,
    StoresServicer,
    StreamsServicer,
)
from .subscriptions import SubscriptionsServicer

__all__ = ["NodeServer", "make_backend"]

log = logging.getLogger(__name__)

_NOFILE_WITHOUT_HARD_LIMIT = 1 << 20


def make_backend(config: NodeConfig, metrics: Metrics | None = None) -> StorageBackend:
    """The backend the config asks for (recording into `metrics` when given)."""
    if config.postgres_dsn:
        from ..store.postgres import PostgresBackend  # imported only when used: asyncpg is heavy

        return PostgresBackend(config.postgres_dsn, limits=config.limits, node_id=config.node_id, metrics=metrics)
    from ..store.sqlite import DEFAULT_IDLE_CLOSE_S, SqliteBackend

    return SqliteBackend(
        config.data_dir,
        synchronous=config.sqlite_synchronous,
        limits=config.limits,
        idle_close_s=DEFAULT_IDLE_CLOSE_S if config.sqlite_idle_close_s is None else config.sqlite_idle_close_s,
        max_open_stores=config.sqlite_max_open_stores,
        metrics=metrics,
    )


def raise_open_files_limit() -> None:
    """Raises this process's soft limit on open files to its hard limit, where it can: stores,
    connections and their files all count against it. Logs what it got."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is not a value the kernel takes for the soft one.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, _NOFILE_WITHOUT_HARD_LIMIT)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            log.warning("could not raise open files limit", extra={"soft": soft, "hard": hard, "error": str(e)})
            return
        log.info("raised open files limit", extra={"soft": target, "hard": hard, "was": soft})
        return
    log.info("open files limit", extra={"soft": soft, "hard": hard})


class NodeServer:
    """An event-store node. `port = await node.start()`; `await node.stop()`; or `async with`."""

    def __init__(
        self,
        config: NodeConfig,
        backend: StorageBackend | None = None,
        *,
        tracing: Tracing | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        obs = config.observability
        self.metrics = metrics if metrics is not None else Metrics("node") if obs.metrics_listen else None
        """This node's metric families (None unless --metrics-listen, or given: `gater dev`
        shares one with its gateway, which then counts the calls)."""
        self.backend = backend if backend is not None else make_backend(config, self.metrics)
        self.tracing = tracing or Tracing.from_config(
            TracingConfig(obs.otlp_endpoint, obs.service_name, obs.trace_metadata)
        )
        self.http: HttpEndpoint | None = None
        self.health = HealthServicer()
        self.storage_health = StorageHealth(
            self.backend,
            self.health,
            _grpc.EXESDB_SERVICES,
            interval_s=config.health_interval_s,
            timeout_s=config.health_timeout_s,
        )
        self.trimmer = MemoryTrimmer()
        self.hub = Hub(
            self.backend,
            max_subscriptions=config.limits.max_subscriptions,
            max_per_store=config.limits.max_subscriptions_per_store,
            metrics=self.metrics,
        )
        self.persistent = PersistentSubscriptions(self.backend, metrics=self.metrics)
        self.scavenger = Scavenger(self.backend)
        self.auditor = Auditor(self.backend)
        self.policy = PolicySource(config.auth, on_reload=self.auditor.policy_reloaded)
        """The policy and credential files, re-read when they change or on reload()."""
        self.guard = Guard(
            self.policy,
            config.default_store,
            cluster_secret=config.cluster_secret,
            certificates=config.auth.certificate_identities,
        )
        self.tls = ServerTls.listener(config.tls)
        self.relay = OwnerRelay(
            self.persistent,
            cluster_secret=config.cluster_secret,
            max_message_bytes=config.limits.max_message_bytes,
            tls=ChannelTls.upstream(config.tls),
        )
        self.port: int | None = None
        self.node_id = ""
        self._server: grpc.aio.Server | None = None
        self._stopped = False

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    @property
    def advertised(self) -> str:
        """Where other nodes and gateways reach this one: what Cluster.GetStatus shows, what
        leases record and what Consul registers (config.advertised_address: --advertise, else
        the bound address, a wildcard host becoming the host name)."""
        return advertised_address(self.config.listen, self.port or 0, self.config.advertise)

    async def start(self) -> int:
        """Opens storage, binds and serves; returns the bound port."""
        cfg = self.config
        raise_open_files_limit()
        await self.backend.start()
        try:
            await self.backend.create_store(cfg.default_store)
            log.info("created default store", extra={"store": cfg.default_store})
        except StoreAlreadyExistsError:
            pass
        self._check_transport()
        if cfg.auth.enabled:
            await self.auditor.start()
        await self.hub.start()
        interceptors = () if cfg.auth.open_health or not cfg.auth.enabled else (HealthGuard(self.guard),)
        server = grpc.aio.server(
            options=_grpc.server_options(cfg.limits.max_message_bytes, max_concurrent_streams=cfg.limits.max_concurrent_streams),
            interceptors=interceptors,
        )
        try:
            if self.tls is not None:
                port = server.add_secure_port(cfg.listen, self.tls.credentials())
            else:
                port = server.add_insecure_port(cfg.listen)
        except RuntimeError as e:
            await self.persistent.stop()
            await self.hub.stop()
            await self.backend.stop()
            raise OSError(f"cannot listen on {cfg.listen}: is another process using it? ({e})") from e
        self.port = port
        self.node_id = cfg.node_id or f"{socket.gethostname()}:{port}"
        await self.persistent.start(self.node_id, self.advertised)
        await self.scavenger.start()  # resumes the scavenges a crash interrupted
        await self.relay.start()
        edge = Edge(cfg.limits, cfg.default_store)
        identity = NodeIdentity(self.node_id, self.advertised, self.backend)
        hooks = self._hooks()
        servicers: dict[str, Any] = {
            "exesdb.v1.Streams": StreamsServicer(self.backend, edge, self.trimmer, record_trace=self.tracing.record_in_metadata),
            "exesdb.v1.Snapshots": SnapshotsServicer(self.backend, edge),
            "exesdb.v1.Stores": StoresServicer(self.backend, edge, self._forget_store, self.scavenger),
            "exesdb.v1.Cluster": ClusterServicer(identity),
            "exesdb.v1.Subscriptions": SubscriptionsServicer(edge, self.hub, self.persistent, self.relay, self.node_id),
        }
        server.add_generic_rpc_handlers(
            tuple(_grpc.handlers_for(name, servicer, hooks) for name, servicer in servicers.items())
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        _grpc.add_reflection(server)
        await server.start()
        self._server = server
        await self.policy.start()
        await self.storage_health.start()  # SERVING, then health follows the storage
        if cfg.observability.metrics_listen:
            self.http = HttpEndpoint(cfg.observability.metrics_listen, self.metrics, lambda: self.storage_health.state.serving)
            await self.http.start()
        log.info(
            "node serving",
            extra={
                "address": self.address,
                "node_id": self.node_id,
                "backend": self.backend.name,
                "cluster_id": self.backend.cluster_id,
                "tls": "mutual" if self.tls and self.tls.mutual else "on" if self.tls else "off",
                "auth": "on" if cfg.auth.enabled else "off",
            },
        )
        return port

    def _check_transport(self) -> None:
        """Plaintext is for loopback: said loudly elsewhere, and the cluster secret never
        crosses a network in clear unless explicitly allowed."""
        cfg = self.config
        host = cfg.listen.rsplit(":", 1)[0]
        if self.tls is not None or is_loopback(host):
            return
        if cfg.cluster_secret and not cfg.auth.allow_insecure_secret:
            raise OSError(
                f"refusing to take the cluster secret in clear on {cfg.listen}: serve TLS (--tls-cert/--tls-key, "
                "with --tls-client-ca the certificates prove membership), or pass --allow-insecure-secret"
            )
        log.warning(
            "serving PLAINTEXT on a non-loopback address: anyone on the network can read and send calls; "
            "use --tls-cert/--tls-key (docs/security.md)",
            extra={"listen": cfg.listen},
        )

    async def reload(self) -> None:
        """SIGHUP: read certificates, policy and credential files again (open streams stay)."""
        if self.tls is not None:
            self.tls.reload()
        if self.config.auth.enabled:
            await self.policy.reload()

    def _hooks(self) -> CallHooks:
        """What runs around every call: admission when authentication or a cluster secret is
        configured, the audit log with authentication, metrics, traces, the access log."""
        cfg = self.config
        secured = cfg.auth.enabled or bool(cfg.cluster_secret)
        return CallHooks(
            admit=self.guard.admit if secured else None,
            # Calls are counted by whoever serves the metrics: `gater dev`'s gateway counts its own.
            metrics=self.metrics if self.config.observability.metrics_listen else None,
            tracing=self.tracing,
            access_log=cfg.observability.access_log,
            audit=self.auditor if cfg.auth.enabled else None,
            audited=AUDITED,
        )

    def _forget_store(self, store_id: str) -> None:
        self.hub.forget(store_id)
        self.persistent.forget_store(store_id)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stops serving (calls in flight get `grace_s`), then closes storage. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self.storage_health.stop()
        await self.policy.stop()
        if self.http is not None:
            await self.http.stop()
        if self._server is not None:
            await self.health.enter_graceful_shutdown()
            # Subscription streams never end by themselves: end them first, then the calls.
            await self.scavenger.stop()
            await self.persistent.stop()
            await self.hub.stop()
            await self._server.stop(self.config.grace_s if grace_s is None else grace_s)
        await self.scavenger.stop()
        await self.persistent.stop()
        await self.hub.stop()
        await self.relay.stop()
        await self.trimmer.stop()
        await self.backend.stop()
        self.tracing.shutdown()
        log.info("node stopped", extra={"node_id": self.node_id})

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> NodeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
