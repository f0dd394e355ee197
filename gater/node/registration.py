"""A node announcing itself in Consul: registered with a GRPC health check while it runs.

Owns: `ConsulRegistrationConfig` (what is registered: address, port, Meta node_id/cluster_id,
tags, the check) and `ConsulRegistration`, a node component (start()/idempotent stop()/async
with) that registers at start, keeps the instance registered (an agent restarted without its
state gets it again) and deregisters at stop.
Must not import gater.gateway (gateways discover what this registers, through Consul only).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import consul
from consul import ConsulException

from .._backoff import Outage
from ..config import ConfigError, advertised_address, parse_host_port
from ..consul import DEFAULT_SERVICE_NAME, AsyncConsul, ConsulAgentConfig, describe

if TYPE_CHECKING:
    from .server import NodeServer

__all__ = ["ConsulRegistration", "ConsulRegistrationConfig"]

log = logging.getLogger(__name__)


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
    """First retry delay after a failed exchange with the agent; doubles per failure."""
    backoff_max_s: float = 10.0
    """Cap on the retry delay."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError("consul registration port", f"{self.port} is not a port")
        if not self.address:
            raise ConfigError("consul registration address", "must not be empty")

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

    def __init__(self, config: ConsulRegistrationConfig, *, rng: random.Random | None = None) -> None:
        self._config = config
        self._client: AsyncConsul | None = None
        self._task: asyncio.Task[None] | None = None
        self._registered = False
        self._registrations = 0
        self._outage = Outage(
            log,
            started="consul registration failed; will retry",
            ended="consul reachable again",
            initial_s=config.backoff_initial_s,
            max_s=config.backoff_max_s,
            rng=rng,
            context=self._ctx,
            last_error="not started",
        )
        self._started = False
        self._stopped = False

    @classmethod
    def for_node(
        cls,
        node: NodeServer,
        *,
        agent: ConsulAgentConfig,
        service: str = DEFAULT_SERVICE_NAME,
        tags: tuple[str, ...] = (),
    ) -> ConsulRegistration:
        """The registration of a started node: its advertised address (`--advertise`, else
        the listen address with a wildcard host replaced by the host name), node id and
        cluster id."""
        assert node.port is not None, "start the node first"
        address = advertised_address(node.config.listen, node.port, node.config.advertise)
        host, port = parse_host_port(address, source="--advertise")
        return cls(
            ConsulRegistrationConfig(
                address=host,
                port=port,
                agent=agent,
                service=service,
                node_id=node.node_id,
                cluster_id=node.backend.cluster_id,
                tags=tags,
            )
        )

    @property
    def service_id(self) -> str:
        return self._config.effective_service_id

    @property
    def ok(self) -> bool:
        """True when the last exchange with Consul succeeded."""
        return self._outage.ok

    @property
    def last_error(self) -> str | None:
        return self._outage.last_error

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

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._client = self._config.agent.client()
        try:
            await self._register()
            self._outage.succeeded()
            delay = self._config.resync_interval_s
        except ConsulException as e:
            delay = self._outage.failed(describe(e))
        self._task = asyncio.create_task(self._run(delay), name="consul-registration")

    async def _run(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            try:
                await self._sync()
                self._outage.succeeded()
                delay = self._config.resync_interval_s
            except Exception as e:  # ConsulException, or an answer we could not read
                if not isinstance(e, ConsulException):
                    log.error("unexpected answer from consul", exc_info=e, extra=self._ctx())
                delay = self._outage.failed(describe(e))

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
                extra={**self._ctx(), "error": describe(e) if isinstance(e, ConsulException) else "timeout"},
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
