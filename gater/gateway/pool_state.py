"""The pure core of the channel pool: which node a call goes to.

Owns: `PoolState` (members by address, health flags, ejection with growing backoff, in-flight
counters, round-robin cursor) and its value types `PoolPolicy` and `MemberStatus`.
No I/O, no grpc, no asyncio, no clock reads: the caller passes `now` (seconds on any monotonic
clock, the same one throughout) and, where randomness is needed, a `random.Random`.
Must not import gater.store, gater.subscriptions, gater.node, grpc or asyncio.

Decisions:
- A member is *available* when it is healthy (discovery lists it and nobody marked it
  unhealthy) and not ejected at `now`.
- `choose(now)` round-robins over available members in a stable order.
- When no member is healthy, `choose` returns None: the gateway answers UNAVAILABLE at once.
- When members are healthy but every one is ejected ("panic"), `choose` returns the healthy
  member whose ejection ends soonest (ties: round-robin order). Ejection is a local guess
  from call errors; refusing everything would turn one transient error on a one-node cluster
  into up to `max_ejection_s` of outage. The call doubles as a probe: its success
  (`report_success`) ends the ejection, its failure lengthens it. `PoolPolicy.panic=False`
  turns this off (then None).
- `fallback(failed, now, rng)` picks uniformly at random among the available members other
  than `failed`; if there is none, the same panic rule applies among the healthy others;
  never `failed` itself.
- `report_failure` ejects for base·2^(n-1) seconds (n = consecutive failures), capped at
  `max_ejection_s`, optionally shortened by up to `jitter` of itself. A failure reported while
  the member is already ejected (a call that started before the ejection) does not lengthen
  it: only failures of calls made after an ejection ended count.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import PoolPolicy

__all__ = ["MemberStatus", "PoolState", "ejection_s"]


def ejection_s(failures: int, policy: PoolPolicy, rng: random.Random | None = None) -> float:
    """Length of the ejection after `failures` consecutive failures (>= 1)."""
    if failures < 1:
        return 0.0
    d = min(policy.max_ejection_s, policy.base_ejection_s * 2.0 ** min(failures - 1, 62))
    if rng is not None and policy.jitter:
        d *= 1.0 - policy.jitter * rng.random()
    return d


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """One member as Cluster.GetStatus shows it."""

    address: str
    healthy: bool
    """Listed by discovery and not marked unhealthy."""
    available: bool
    """Healthy and not ejected: round-robin would pick it."""
    ejected_until: float | None
    """End of the current ejection on the caller's clock; None when not ejected."""
    ejected_for_s: float
    """Seconds of ejection left (0 when not ejected)."""
    in_flight: int
    """Calls currently running on it."""
    failures: int
    """Consecutive failures (reset by a success)."""


@dataclass(slots=True)
class _Member:
    address: str
    healthy: bool = True
    failures: int = 0
    ejected_until: float | None = None
    in_flight: int = 0

    def ejected(self, now: float) -> bool:
        return self.ejected_until is not None and now < self.ejected_until


class PoolState:
    """Members keyed by address ("host:port"); see the module docstring for the rules."""

    def __init__(self, policy: PoolPolicy | None = None) -> None:
        self._policy = policy or PoolPolicy()
        self._members: dict[str, _Member] = {}
        self._order: list[str] = []
        self._cursor = 0

    @property
    def policy(self) -> PoolPolicy:
        return self._policy

    # -- membership --------------------------------------------------------------------------

    def update_members(self, addresses: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
        """Make the member set exactly `addresses`; returns (joined, left). Members that stay
        keep their failures, ejection and in-flight count; joined members start healthy."""
        new = frozenset(addresses)
        old = frozenset(self._members)
        joined, left = new - old, old - new
        for a in left:
            del self._members[a]
        for a in sorted(joined):
            self._members[a] = _Member(a)
        if joined or left:
            current = self._order[self._cursor % len(self._order)] if self._order else None
            self._order = sorted(self._members)
            # keep the rotation where it was, as far as the member still exists
            self._cursor = self._order.index(current) if current in self._members else 0
        return joined, left

    def members(self) -> frozenset[str]:
        return frozenset(self._members)

    def __contains__(self, address: object) -> bool:
        return address in self._members

    def __len__(self) -> int:
        return len(self._members)

    def mark_healthy(self, address: str, healthy: bool) -> None:
        """Set a member's health flag (e.g. from a health Watch, or a cluster-id mismatch).
        Unknown addresses are ignored."""
        m = self._members.get(address)
        if m is not None:
            m.healthy = healthy

    # -- choice ------------------------------------------------------------------------------

    def is_available(self, address: str, now: float) -> bool:
        m = self._members.get(address)
        return m is not None and m.healthy and not m.ejected(now)

    def available(self, now: float) -> tuple[str, ...]:
        """Available members in round-robin order (from the stable sorted order)."""
        return tuple(a for a in self._order if self.is_available(a, now))

    def choose(self, now: float) -> str | None:
        """The next member for a call, or None when no member is healthy."""
        n = len(self._order)
        for step in range(n):
            i = (self._cursor + step) % n
            a = self._order[i]
            if self.is_available(a, now):
                self._cursor = (i + 1) % n
                return a
        return self._panic_pick(self._order, now)

    def fallback(self, failed: str, now: float, rng: random.Random) -> str | None:
        """A member other than `failed` to retry on: random among available ones; else the
        panic rule among the healthy others; else None."""
        others = [a for a in self._order if a != failed and self.is_available(a, now)]
        if others:
            return rng.choice(others)
        return self._panic_pick([a for a in self._order if a != failed], now)

    def _panic_pick(self, candidates: Iterable[str], now: float) -> str | None:
        if not self._policy.panic:
            return None
        allowed = set(candidates)
        best: str | None = None
        best_until = 0.0
        n = len(self._order)
        for step in range(n):
            a = self._order[(self._cursor + step) % n]
            m = self._members[a]
            if a not in allowed or not m.healthy:
                continue
            until = m.ejected_until if m.ejected_until is not None else now
            if best is None or until < best_until:
                best, best_until = a, until
        if best is not None:
            self._cursor = (self._order.index(best) + 1) % n
        return best

    # -- outcomes ----------------------------------------------------------------------------

    def report_failure(
        self, address: str, now: float, rng: random.Random | None = None
    ) -> float | None:
        """A call on `address` failed in a way that blames the node (UNAVAILABLE, connect
        error). Returns the end of its ejection (None for an unknown address)."""
        m = self._members.get(address)
        if m is None:
            return None
        if m.ejected(now):
            return m.ejected_until
        m.failures += 1
        m.ejected_until = now + ejection_s(m.failures, self._policy, rng)
        return m.ejected_until

    def report_success(self, address: str) -> None:
        """A call on `address` succeeded: forget its failures and end its ejection."""
        m = self._members.get(address)
        if m is not None:
            m.failures = 0
            m.ejected_until = None

    def acquire(self, address: str) -> None:
        """A call started on `address` (in-flight + 1)."""
        m = self._members.get(address)
        if m is not None:
            m.in_flight += 1

    def release(self, address: str) -> None:
        """A call on `address` ended (in-flight - 1, never below 0)."""
        m = self._members.get(address)
        if m is not None and m.in_flight > 0:
            m.in_flight -= 1

    # -- status ------------------------------------------------------------------------------

    def snapshot(self, now: float) -> tuple[MemberStatus, ...]:
        """Every member, sorted by address, for Cluster.GetStatus and metrics."""
        out = []
        for a in self._order:
            m = self._members[a]
            ejected = m.ejected(now)
            out.append(
                MemberStatus(
                    address=a,
                    healthy=m.healthy,
                    available=m.healthy and not ejected,
                    ejected_until=m.ejected_until if ejected else None,
                    ejected_for_s=(m.ejected_until - now) if ejected and m.ejected_until else 0.0,
                    in_flight=m.in_flight,
                    failures=m.failures,
                )
            )
        return tuple(out)
