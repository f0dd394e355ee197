"""Consul discovery (gateways watch passing node instances) and registration (nodes announce
themselves with a GRPC health check).

Owns: `ConsulAgentConfig`, `ConsulDiscoveryConfig`, `ConsulDiscovery`,
`ConsulRegistrationConfig`, `ConsulRegistration`, and the pure helpers `members_from_health`
and `next_index` (Consul's documented index rules for blocking queries).
Must not import gater.store, gater.subscriptions, gater.node (a node imports this to register).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import consul
from consul import ACLDisabled, ACLPermissionDenied, ConsulException

from gater.gateway.discovery._base import (
    Discovery,
    DiscoveryConfigError,
    MemberAddress,
    backoff_s,
    meta_pairs,
)
from gater.gateway.discovery._consul_http import AsyncConsul, parse_consul_address

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "ConsulAgentConfig",
    "ConsulDiscovery",
    "ConsulDiscoveryConfig",
    "ConsulRegistration",
    "ConsulRegistrationConfig",
    "members_from_health",
    "next_index",
]

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "exesdb-gater"


@dataclass(frozen=True, slots=True)
class ConsulAgentConfig:
    """How to reach the local Consul agent (Consul's own CONSUL_HTTP_* conventions)."""

    address: str = "127.0.0.1:8500"
    """CONSUL_HTTP_ADDR: "host:port" or "http(s)://host:port"."""
    token: str | None = None
    """CONSUL_HTTP_TOKEN: ACL token sent as X-Consul-Token; None sends none."""
    datacenter: str | None = None
    """Datacenter to query (`dc`); None means the agent's own."""
    tls_verify: bool | str = True
    """https only: verify the agent's certificate (True), skip (False), or a CA bundle path."""
    request_timeout_s: float = 10.0
    """Connect-and-answer timeout of one request (a blocking query adds its wait to it)."""

    def __post_init__(self) -> None:
        parse_consul_address(self.address)  # fail at config time, naming CONSUL_HTTP_ADDR
        if self.request_timeout_s <= 0:
            raise DiscoveryConfigError("consul request timeout", "must be > 0")

    def client(self) -> AsyncConsul:
        return AsyncConsul(
            self.address,
            token=self.token,
            datacenter=self.datacenter,
            tls_verify=self.tls_verify,
            timeout_s=self.request_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class ConsulDiscoveryConfig:
    """What a gateway watches in Consul."""

    agent: ConsulAgentConfig = field(default_factory=ConsulAgentConfig)
    """The agent to ask."""
    service: str = DEFAULT_SERVICE_NAME
    """Consul service name the nodes register under."""
    tag: str | None = None
    """Only instances carrying this tag (None: all)."""
    passing_only: bool = True
    """Only instances whose checks all pass (Consul's ?passing)."""
    wait_s: float = 30.0
    """Blocking query wait; Consul caps it at 10 minutes."""
    backoff_initial_s: float = 0.5
    """First retry delay after a failed query; doubles per failure."""
    backoff_max_s: float = 10.0
    """Cap on the retry delay."""

    def __post_init__(self) -> None:
        if not self.service:
            raise DiscoveryConfigError("consul service", "must not be empty")
        if not 0 < self.wait_s <= 600:
            raise DiscoveryConfigError("consul wait", "must be > 0 and at most 600 seconds")
        if self.backoff_initial_s <= 0 or self.backoff_max_s < self.backoff_initial_s:
            raise DiscoveryConfigError("consul backoff", "need 0 < initial <= max")


def next_index(previous: int, returned: int | str) -> int:
    """The index for the next blocking query, per Consul's docs: reset to 0 when the index
    went backwards (the next query then answers at once), and never use less than 1 otherwise
    (an index of 0 would make every query return at once)."""
    new = int(returned)
    if new < previous:
        return 0
    return max(new, 1)


def members_from_health(entries: Iterable[Mapping[str, Any]] | None) -> frozenset[MemberAddress]:
    """/v1/health/service entries → members: Service.Address (else Node.Address) and
    Service.Port, with Service.ID and Meta (node_id, cluster_id). Entries without a usable
    address or port are skipped."""
    out = set()
    for entry in entries or ():
        svc = entry.get("Service") or {}
        node = entry.get("Node") or {}
        host = svc.get("Address") or node.get("Address") or ""
        port = svc.get("Port") or 0
        if not host or not isinstance(port, int) or not 0 < port < 65536:
            continue
        meta = svc.get("Meta") or {}
        out.add(
            MemberAddress(
                host=host.strip("[]"),
                port=port,
                service_id=svc.get("ID") or None,
                node_id=meta.get("node_id") or None,
                cluster_id=meta.get("cluster_id") or None,
                meta=meta_pairs(meta),
            )
        )
    return frozenset(out)


def _describe(e: BaseException) -> str:
    if isinstance(e, ACLPermissionDenied):
        return f"consul refused the ACL token: {e}"
    if isinstance(e, ACLDisabled):
        return f"consul ACLs: {e}"
    return str(e) or type(e).__name__


class ConsulDiscovery(Discovery):
    """Watches `/v1/health/service/<service>?passing` with blocking queries.

    While Consul is unreachable (or answers errors) the last known members are kept, `ok` is
    False and `last_error` says why; one WARNING per outage, one INFO on recovery; retries back
    off exponentially with jitter up to `backoff_max_s`.
    """

    def __init__(self, config: ConsulDiscoveryConfig, *, rng: random.Random | None = None) -> None:
        super().__init__("consul")
        self._config = config
        self._client: AsyncConsul | None = None
        self._index = 0
        self._failures = 0
        self._retry_in = 0.0
        self._rng = rng or random.Random()

    @property
    def config(self) -> ConsulDiscoveryConfig:
        return self._config

    def _ctx(self) -> dict[str, Any]:
        return {
            "discovery": "consul",
            "consul": self._config.agent.address,
            "service": self._config.service,
        }

    async def _query(self) -> None:
        assert self._client is not None
        cfg = self._config
        index, entries = await self._client.health.service(
            cfg.service,
            index=self._index or None,
            wait=f"{round(cfg.wait_s * 1000)}ms",
            passing=cfg.passing_only,
            tag=cfg.tag,
        )
        new_index = next_index(self._index, index)
        if new_index == 0:
            log.info("consul index went backwards; starting over", extra=self._ctx())
        self._index = new_index
        members = members_from_health(entries)
        if self._failures:
            log.info(
                "consul reachable again",
                extra={**self._ctx(), "failed_attempts": self._failures, "members": len(members)},
            )
        self._failures = 0
        await self._publish(members, ok=True)

    async def _fail(self, e: Exception) -> float:
        if not isinstance(e, ConsulException):
            log.error("unexpected answer from consul", exc_info=e, extra=self._ctx())
        self._failures += 1
        # The next query must not block: it answers at once when Consul is back, so `ok`
        # recovers without waiting for a change or a full `wait`.
        self._index = 0
        error = _describe(e)
        if self._failures == 1:
            log.warning(
                "consul unavailable; keeping the last known members",
                extra={**self._ctx(), "error": error, "members": len(self.members())},
            )
        else:
            log.debug("consul still unavailable", extra={**self._ctx(), "error": error})
        await self._publish(None, ok=False, error=error)
        return backoff_s(
            self._failures,
            initial_s=self._config.backoff_initial_s,
            max_s=self._config.backoff_max_s,
            rng=self._rng,
        )

    async def _first_attempt(self) -> None:
        self._client = self._config.agent.client()
        try:
            await self._query()
        except Exception as e:  # ConsulException, or an answer we could not read
            self._retry_in = await self._fail(e)
        else:
            self._retry_in = 0.0

    async def _run(self) -> None:
        delay = self._retry_in
        while True:
            if delay:
                await asyncio.sleep(delay)
            try:
                await self._query()
                delay = 0.0
            except Exception as e:  # ConsulException, or an answer we could not read
                delay = await self._fail(e)

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.http.close()


@dataclass(frozen=True, slots=True)
class ConsulRegistrationConfig:
    """How a node announces itself in Consul."""

    address: str
    """Address other processes reach this node's gRPC server at (Service.Address)."""
    port: int
    """Bound gRPC port (Service.Port)."""
    agent: ConsulAgentConfig = field(default_factory=ConsulAgentConfig)
    """The agent to register with."""
    service: str = DEFAULT_SERVICE_NAME
    """Consul service name."""
    service_id: str | None = None
    """Unique instance id; None uses "<service>-<node_id>" or "<service>-<address>-<port>"."""
    node_id: str | None = None
    """Put in Meta as `node_id`."""
    cluster_id: str | None = None
    """Put in Meta as `cluster_id`."""
    tags: tuple[str, ...] = ()
    """Service tags."""
    meta: Mapping[str, str] = field(default_factory=dict)
    """More Meta entries."""
    check_address: str | None = None
    """host:port the Consul agent dials for the GRPC check; None uses address:port."""
    check_grpc_service: str = ""
    """Service name in the health request ("" = the server's overall health)."""
    check_interval_s: float = 5.0
    """GRPC check interval."""
    check_timeout_s: float = 3.0
    """GRPC check timeout."""
    deregister_critical_after_s: float = 60.0
    """Consul removes the instance after its check stayed critical this long (minimum 60)."""
    resync_interval_s: float = 10.0
    """How often the agent is asked whether the instance is still registered (re-registers
    it after an agent restart that lost it)."""
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise DiscoveryConfigError("consul registration port", f"{self.port} is not a port")
        if not self.address:
            raise DiscoveryConfigError("consul registration address", "must not be empty")

    @property
    def effective_service_id(self) -> str:
        if self.service_id:
            return self.service_id
        if self.node_id:
            return f"{self.service}-{self.node_id}"
        return f"{self.service}-{self.address}-{self.port}"

    def register_kwargs(self) -> dict[str, Any]:
        """The arguments of py-consul's agent.service.register (pure, for tests and logs)."""
        meta = dict(self.meta)
        if self.node_id:
            meta["node_id"] = self.node_id
        if self.cluster_id:
            meta["cluster_id"] = self.cluster_id
        target = self.check_address or f"{_host_for_url(self.address)}:{self.port}"
        if self.check_grpc_service:
            target += f"/{self.check_grpc_service}"
        check = consul.Check.grpc(
            target,
            _dur(self.check_interval_s),
            use_tls=False,
            timeout=_dur(self.check_timeout_s),
            deregister=_dur(self.deregister_critical_after_s),
        )
        return {
            "name": self.service,
            "service_id": self.effective_service_id,
            "address": self.address,
            "port": self.port,
            "tags": list(self.tags) or None,
            "meta": meta or None,
            "check": check,
        }


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _dur(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


class ConsulRegistration:
    """Registers this node at start, keeps it registered, deregisters it at stop.

    start() tries once and returns (registered or not: a Consul outage must not keep a node
    from serving); a background task then checks every `resync_interval_s` that the agent
    still knows the instance and registers it again when it does not (agent restarted) or
    after a failure (with backoff). stop() deregisters (best effort) and is idempotent.
    """

    def __init__(
        self, config: ConsulRegistrationConfig, *, rng: random.Random | None = None
    ) -> None:
        self._config = config
        self._client: AsyncConsul | None = None
        self._task: asyncio.Task[None] | None = None
        self._registered = False
        self._ok = False
        self._last_error: str | None = "not started"
        self._failures = 0
        self._registrations = 0
        self._rng = rng or random.Random()
        self._started = False
        self._stopped = False

    @property
    def service_id(self) -> str:
        return self._config.effective_service_id

    @property
    def ok(self) -> bool:
        """True when the last exchange with Consul succeeded."""
        return self._ok

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def registered(self) -> bool:
        """True when the instance is known to be registered."""
        return self._registered

    @property
    def registrations(self) -> int:
        """How many times the instance was registered (1 after start, more after outages)."""
        return self._registrations

    def _ctx(self) -> dict[str, Any]:
        return {
            "consul": self._config.agent.address,
            "service": self._config.service,
            "service_id": self.service_id,
        }

    async def _register(self) -> None:
        assert self._client is not None
        await self._client.agent.service.register(**self._config.register_kwargs())
        self._registrations += 1
        self._registered = True
        log.info(
            "registered in consul" if self._registrations == 1 else "registered in consul again",
            extra={**self._ctx(), "address": f"{self._config.address}:{self._config.port}"},
        )

    async def _sync(self) -> None:
        """Register if the agent does not know the instance."""
        assert self._client is not None
        if self._registered:
            services = await self._client.agent.services()
            if self.service_id in (services or {}):
                return
            log.warning("consul forgot this instance; registering again", extra=self._ctx())
            self._registered = False
        await self._register()

    def _succeeded(self) -> None:
        if self._failures:
            log.info(
                "consul reachable again", extra={**self._ctx(), "failed_attempts": self._failures}
            )
        self._failures = 0
        self._ok = True
        self._last_error = None

    def _failed(self, e: Exception) -> float:
        self._failures += 1
        self._ok = False
        self._last_error = _describe(e)
        if self._failures == 1:
            log.warning(
                "consul registration failed; will retry",
                extra={**self._ctx(), "error": self._last_error},
            )
        return backoff_s(
            self._failures,
            initial_s=self._config.backoff_initial_s,
            max_s=self._config.backoff_max_s,
            rng=self._rng,
        )

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._client = self._config.agent.client()
        try:
            await self._register()
            self._succeeded()
            delay = self._config.resync_interval_s
        except ConsulException as e:
            delay = self._failed(e)
        self._task = asyncio.create_task(self._run(delay), name="consul-registration")

    async def _run(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            try:
                await self._sync()
                self._succeeded()
                delay = self._config.resync_interval_s
            except Exception as e:  # ConsulException, or an answer we could not read
                if not isinstance(e, ConsulException):
                    log.error("unexpected answer from consul", exc_info=e, extra=self._ctx())
                delay = self._failed(e)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Deregister (waiting at most grace_s) and stop. Safe to call twice."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=grace_s)
        assert self._client is not None
        try:
            async with asyncio.timeout(grace_s):
                await self._client.agent.service.deregister(self.service_id)
            self._registered = False
            log.info("deregistered from consul", extra=self._ctx())
        except (ConsulException, TimeoutError) as e:
            log.warning(
                "could not deregister from consul (its check will mark the instance critical)",
                extra={
                    **self._ctx(),
                    "error": _describe(e) if isinstance(e, ConsulException) else "timeout",
                },
            )
        await self._client.http.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
