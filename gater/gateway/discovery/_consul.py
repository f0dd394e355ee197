"""Consul discovery: a gateway watches the passing instances nodes registered (the node side
is gater/node/registration.py; both talk to the agent through gater/consul.py).

Owns: `ConsulDiscoveryConfig`, `ConsulDiscovery`, and the pure helpers `members_from_health`
and `next_index` (Consul's documented index rules for blocking queries).
Must not import gater.store, gater.subscriptions, gater.node.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from consul import ConsulException

from gater._backoff import Outage
from gater.consul import DEFAULT_SERVICE_NAME, AsyncConsul, ConsulAgentConfig, describe
from gater.gateway.discovery._base import Discovery, DiscoveryConfigError, MemberAddress, meta_pairs

__all__ = ["ConsulDiscovery", "ConsulDiscoveryConfig", "members_from_health", "next_index"]

log = logging.getLogger(__name__)


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
        self._retry_in = 0.0
        self._outage = Outage(
            log,
            started="consul unavailable; keeping the last known members",
            ended="consul reachable again",
            initial_s=config.backoff_initial_s,
            max_s=config.backoff_max_s,
            rng=rng,
            context=self._ctx,
        )

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
        self._outage.succeeded(members=len(members))
        await self._publish(members, ok=True)

    async def _fail(self, e: Exception) -> float:
        if not isinstance(e, ConsulException):
            log.error("unexpected answer from consul", exc_info=e, extra=self._ctx())
        # The next query must not block: it answers at once when Consul is back, so `ok`
        # recovers without waiting for a change or a full `wait`.
        self._index = 0
        error = describe(e)
        delay = self._outage.failed(error, members=len(self.members()))
        await self._publish(None, ok=False, error=error)
        return delay

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
