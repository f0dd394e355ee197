"""DNS discovery: A/AAAA records plus a port, or SRV records (a Kubernetes headless service).

Owns: `DnsDiscoveryConfig`, `DnsDiscovery`, and the pure `members_from_answer`.
Must not import gater.store, gater.subscriptions, gater.node, nor grpc.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from gater._backoff import Outage
from gater.gateway.discovery._base import Discovery, DiscoveryConfigError, MemberAddress

__all__ = ["DnsDiscovery", "DnsDiscoveryConfig", "members_from_answer"]

log = logging.getLogger(__name__)

RecordKind = Literal["A", "AAAA", "SRV"]


@dataclass(frozen=True, slots=True)
class DnsDiscoveryConfig:
    """Which name to resolve, how, and how often."""

    name: str
    """DNS name: "nodes.gater.svc.cluster.local" (A/AAAA) or
    "_grpc._tcp.nodes.gater.svc.cluster.local" (SRV)."""
    port: int | None = None
    """Port of every member for A/AAAA (required there); ignored for SRV."""
    kind: RecordKind = "A"
    """"A", "AAAA", or "SRV" (target:port from each record)."""
    nameservers: tuple[str, ...] = ()
    """Resolver IPs; empty: those of `resolv_conf`."""
    nameserver_port: int = 53
    """Port of `nameservers`."""
    resolv_conf: str | None = "/etc/resolv.conf"
    """The system's resolver configuration: its nameservers (unless `nameservers` are given),
    search domains and ndots. A name with fewer dots than ndots is tried with each search
    domain first — "gater-nodes" finds "gater-nodes.<namespace>.svc.cluster.local" in a
    Kubernetes pod — and a name ending in "." never is. None (or a missing file): no search
    domains, and `nameservers` are required."""
    interval_s: float = 5.0
    """Seconds between resolutions while they succeed."""
    timeout_s: float = 2.0
    """Lifetime of one resolution."""
    backoff_max_s: float = 30.0
    """Cap on the retry delay after failures (starting at interval_s / 4)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise DiscoveryConfigError("dns name", "must not be empty")
        if self.kind not in ("A", "AAAA", "SRV"):
            raise DiscoveryConfigError("dns record kind", f"{self.kind!r} is not A, AAAA or SRV")
        if self.kind != "SRV" and (self.port is None or not 0 < self.port < 65536):
            raise DiscoveryConfigError("dns port", f"{self.kind} records need a port (1-65535)")
        if self.interval_s <= 0 or self.timeout_s <= 0:
            raise DiscoveryConfigError("dns interval", "interval and timeout must be > 0")


def members_from_answer(
    kind: RecordKind, rdatas: Iterable[Any], port: int | None
) -> frozenset[MemberAddress]:
    """dnspython rdata objects → members. SRV: (target without the final dot, record port);
    A/AAAA: (address, port). SRV records with target "." (service explicitly absent) are
    skipped."""
    out = set()
    for rd in rdatas:
        if kind == "SRV":
            target = rd.target.to_text(omit_final_dot=True)
            if target in ("", ".") or not 0 < rd.port < 65536:
                continue
            out.add(MemberAddress(target, int(rd.port)))
        else:
            assert port is not None
            out.add(MemberAddress(rd.address, port))
    return frozenset(out)


class DnsDiscovery(Discovery):
    """Resolves `config.name` every `interval_s`.

    NXDOMAIN or no records is a successful answer with no members (a headless service with no
    ready pod looks like that; logged once as a warning). Timeouts and server failures keep the
    last members and set ok=False.
    """

    def __init__(self, config: DnsDiscoveryConfig, *, rng: random.Random | None = None) -> None:
        super().__init__("dns")
        self._config = config
        self._outage = Outage(
            log,
            started="dns resolution failed; keeping the last known members",
            ended="dns resolution works again",
            initial_s=config.interval_s / 4,
            max_s=config.backoff_max_s,
            rng=rng,
            context=self._ctx,
        )
        self._empty_logged = False
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._next_delay = 0.0

    @property
    def config(self) -> DnsDiscoveryConfig:
        return self._config

    def _ctx(self) -> dict[str, Any]:
        return {"discovery": "dns", "dns_name": self._config.name, "record": self._config.kind}

    async def _resolve_once(self) -> float:
        """One resolution; returns the delay before the next."""
        cfg = self._config
        assert self._resolver is not None
        try:
            answer = await self._resolver.resolve(cfg.name, cfg.kind, search=True)
            members = members_from_answer(cfg.kind, answer, cfg.port)
            empty_reason = None if members else "no usable records"
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as e:
            members, empty_reason = frozenset(), type(e).__name__
        except dns.exception.DNSException as e:
            error = f"{type(e).__name__}: {e}"
            delay = self._outage.failed(error, members=len(self.members()))
            await self._publish(None, ok=False, error=error)
            return delay
        self._outage.succeeded()
        if empty_reason and not self._empty_logged:
            log.warning("dns name has no members", extra={**self._ctx(), "reason": empty_reason})
        self._empty_logged = bool(empty_reason)
        await self._publish(members, ok=True)
        return cfg.interval_s

    def _make_resolver(self) -> dns.asyncresolver.Resolver:
        cfg = self._config
        # Reading resolv.conf is done here, at start, not in __init__.
        resolver = None
        if cfg.resolv_conf is not None and os.path.exists(cfg.resolv_conf):
            try:
                resolver = dns.asyncresolver.Resolver(filename=cfg.resolv_conf)
            except dns.resolver.NoResolverConfiguration:
                if not cfg.nameservers:
                    raise
        if resolver is None:
            if not cfg.nameservers:
                raise dns.resolver.NoResolverConfiguration(
                    f"no nameservers: {cfg.resolv_conf} is missing or empty"
                )
            resolver = dns.asyncresolver.Resolver(configure=False)
        else:
            log.info(
                "dns resolver configured",
                extra={
                    **self._ctx(),
                    "search": [n.to_text() for n in resolver.search],
                    "ndots": resolver.ndots,
                },
            )
        if cfg.nameservers:
            resolver.nameservers = list(cfg.nameservers)
        resolver.port = cfg.nameserver_port
        resolver.lifetime = cfg.timeout_s
        resolver.timeout = cfg.timeout_s
        resolver.cache = None
        return resolver

    async def _first_attempt(self) -> None:
        self._resolver = self._make_resolver()
        self._next_delay = await self._resolve_once()

    async def _run(self) -> None:
        delay = self._next_delay
        while True:
            await asyncio.sleep(delay)
            delay = await self._resolve_once()
