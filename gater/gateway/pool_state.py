"""The pure core of the channel pool: which node a call goes to.

Owns: `PoolState` (members by address, health flags, probe results, ejection with growing
backoff, in-flight counters, round-robin cursor) and its value type `MemberStatus` (the
policy, `PoolPolicy`, is configuration: gater.config).
No I/O, no grpc, no asyncio, no clock reads: the caller passes `now` (seconds on any monotonic
clock, the same one throughout) and, where randomness is needed, a `random.Random`.
Must not import gater.store, gater.subscriptions, gater.node, grpc or asyncio.

Decisions:
- A member is *usable* when it is healthy (discovery lists it and nobody marked it unhealthy,
  e.g. for belonging to another cluster) and *answering*: its last health probe answered
  SERVING and no call on it failed since. A member joins not answering; only a probe
  (`report_probe`) makes it answer — never the passing of time.
- A member is *available* when it is usable and not ejected at `now`.
- `choose(now)` round-robins over available members in a stable order.
- When no member is usable, `choose` returns None: the gateway answers UNAVAILABLE at once.
- When members are usable but every one is ejected ("panic"), `choose` returns the usable
  member whose ejection ends soonest (ties: round-robin order). Ejection is a local guess
  from call errors about a node that still answers its health; refusing everything would turn
  one transient error on a one-node cluster into up to `max_ejection_s` of outage. The call
  doubles as a trial: its success (`report_success`) ends the ejection.
  `PoolPolicy.panic=False` turns this off (then None).
- `routable(now)` says whether `choose` would find a member: what the gateway's health tells.
- `fallback(exclude, now, rng)` picks uniformly at random among the available members not in
  `exclude`; if there is none, the same panic rule applies among the usable others; never an
  excluded member.
- `report_failure` (a call failed in a way that blames the node) makes the member not
  answering until a probe answers again, and ejects it for base·2^(n-1) seconds (n =
  consecutive failures), capped at `max_ejection_s`, optionally shortened by up to `jitter` of
  itself. A failure reported while the member is already ejected (a call that started before
  the ejection) does not lengthen it: only failures of calls made after an ejection ended count.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
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
    answering: bool
    """Its last health probe answered SERVING and no call on it failed since."""
    available: bool
    """Healthy, answering and not ejected: round-robin would pick it."""
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
    answering: bool = False
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
        keep their state; joined members start healthy but not answering (not yet probed)."""
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
        """Set a member's health flag (e.g. from a cluster-id mismatch). Unknown addresses are
        ignored."""
        m = self._members.get(address)
        if m is not None:
            m.healthy = healthy

    def report_probe(self, address: str, serving: bool) -> None:
        """A health probe of `address` answered SERVING (True), or answered otherwise, or not
        in time (False). Unknown addresses are ignored."""
        m = self._members.get(address)
        if m is not None:
            m.answering = serving

    # -- choice ------------------------------------------------------------------------------

    def is_usable(self, address: str) -> bool:
        m = self._members.get(address)
        return m is not None and m.healthy and m.answering

    def is_available(self, address: str, now: float) -> bool:
        m = self._members.get(address)
        return m is not None and m.healthy and m.answering and not m.ejected(now)

    def usable(self) -> tuple[str, ...]:
        """Usable members (ejected or not), in the stable sorted order."""
        return tuple(a for a in self._order if self.is_usable(a))

    def available(self, now: float) -> tuple[str, ...]:
        """Available members in round-robin order (from the stable sorted order)."""
        return tuple(a for a in self._order if self.is_available(a, now))

    def routable(self, now: float) -> bool:
        """Whether `choose(now)` would find a member (without moving the rotation)."""
        if self._policy.panic:
            return any(self.is_usable(a) for a in self._order)
        return any(self.is_available(a, now) for a in self._order)

    def choose(self, now: float) -> str | None:
        """The next member for a call, or None when no member is usable."""
        n = len(self._order)
        for step in range(n):
            i = (self._cursor + step) % n
            a = self._order[i]
            if self.is_available(a, now):
                self._cursor = (i + 1) % n
                return a
        return self._panic_pick(self._order, now)

    def fallback(self, exclude: str | Collection[str], now: float, rng: random.Random) -> str | None:
        """A member not in `exclude` (one address or several) to retry on: random among the
        available ones; else the panic rule among the usable others; else None."""
        excluded = {exclude} if isinstance(exclude, str) else exclude
        others = [a for a in self._order if a not in excluded and self.is_available(a, now)]
        if others:
            return rng.choice(others)
        return self._panic_pick([a for a in self._order if a not in excluded], now)

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
            if a not in allowed or not (m.healthy and m.answering):
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
        error): it is not answering until a probe says otherwise, and ejected. Returns the end
        of its ejection (None for an unknown address)."""
        m = self._members.get(address)
        if m is None:
            return None
        m.answering = False
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
                    answering=m.answering,
                    available=m.healthy and m.answering and not ejected,
                    ejected_until=m.ejected_until if ejected else None,
                    ejected_for_s=(m.ejected_until - now) if ejected and m.ejected_until else 0.0,
                    in_flight=m.in_flight,
                    failures=m.failures,
                )
            )
        return tuple(out)
