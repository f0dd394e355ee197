"""What every discovery provider shares: the member value, the snapshot, the observable state.

Owns: `MemberAddress`, `DiscoverySnapshot`, the pure helper `diff_members`, and `Discovery`,
the base of the providers, which keeps the last member list, the ok/last_error status and the
change notification. (`backoff_s`, `parse_host_port` and `DiscoveryConfigError` — the name
discovery gives `gater.config.ConfigError` — are re-exported from their neutral homes.)
Must not import gater.store, gater.subscriptions, gater.node, nor grpc.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from gater._backoff import backoff_s
from gater.config import ConfigError, parse_host_port

__all__ = [
    "Discovery",
    "DiscoveryConfigError",
    "DiscoverySnapshot",
    "MemberAddress",
    "backoff_s",
    "diff_members",
    "meta_pairs",
    "parse_host_port",
]

log = logging.getLogger(__name__)


DiscoveryConfigError = ConfigError
"""A discovery setting is malformed; the message names the variable or flag it came from."""


@dataclass(frozen=True, slots=True, order=True)
class MemberAddress:
    """One node a gateway may call. Equal members are the same node under the same identity;
    `address` ("host:port", IPv6 in brackets) is what a gRPC channel dials and the pool's key."""

    host: str
    """Host name or IP literal (without brackets)."""
    port: int
    """TCP port of the node's gRPC server."""
    service_id: str | None = None
    """Consul's Service.ID when the member came from Consul."""
    node_id: str | None = None
    """The node's own id (Consul Meta `node_id`) when known."""
    cluster_id: str | None = None
    """The storage cluster the node serves (Consul Meta `cluster_id`) when known."""
    meta: tuple[tuple[str, str], ...] = field(default=(), compare=True)
    """All of Consul's Service.Meta, as sorted (key, value) pairs (hashable)."""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def meta_dict(self) -> dict[str, str]:
        return dict(self.meta)

    def __str__(self) -> str:
        return self.address


@dataclass(frozen=True, slots=True)
class DiscoverySnapshot:
    """What a provider knows at one moment."""

    members: frozenset[MemberAddress]
    """The last known member list (kept while the source is unreachable)."""
    ok: bool
    """True when the last attempt to read the source succeeded."""
    last_error: str | None
    """Why the last attempt failed (None when ok)."""
    generation: int
    """Grows by one whenever `members` or `ok` change."""


def diff_members(
    old: Iterable[MemberAddress], new: Iterable[MemberAddress]
) -> tuple[frozenset[MemberAddress], frozenset[MemberAddress]]:
    """(joined, left) going from `old` to `new`."""
    old_set, new_set = frozenset(old), frozenset(new)
    return new_set - old_set, old_set - new_set


class Discovery(abc.ABC):
    """Base of the providers: a long-lived component that knows the current member list.

    Lifecycle: `await start()` returns once the first member list is known or the first
    attempt failed (then `ok` is False and it keeps trying); `await stop()` is idempotent;
    `async with provider:` does both. Observe with `members()`, `snapshot()`,
    `await wait_for_change(generation)` or `async for snap in provider.watch()`.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._members: frozenset[MemberAddress] = frozenset()
        self._ok = False
        self._last_error: str | None = "not started"
        self._last_success: float | None = None
        self._generation = 0
        self._changed: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    # -- observation -------------------------------------------------------------------------

    def members(self) -> frozenset[MemberAddress]:
        return self._members

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def last_error(self) -> str | None:
        return self._last_error

    @property
    def last_success(self) -> float | None:
        """When the source was last read successfully (seconds since the epoch), None before."""
        return self._last_success

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def kind(self) -> str:
        """ "static", "consul" or "dns" — for status pages."""
        return self._name

    def snapshot(self) -> DiscoverySnapshot:
        return DiscoverySnapshot(self._members, self._ok, self._last_error, self._generation)

    async def wait_for_change(self, generation: int) -> DiscoverySnapshot:
        """Return the first snapshot whose generation is greater than `generation`."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self._generation > generation)
            return self.snapshot()

    async def watch(self) -> AsyncIterator[DiscoverySnapshot]:
        """The current snapshot, then one per change. Changes that happen while the consumer
        is busy are coalesced into the latest snapshot (nothing is buffered)."""
        snap = self.snapshot()
        while True:
            yield snap
            snap = await self.wait_for_change(snap.generation)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._condition()
        await self._first_attempt()
        self._task = asyncio.create_task(self._run(), name=f"discovery-{self._name}")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop the background task and release clients. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=grace_s)
            if not done:
                log.warning("discovery task did not stop in time", extra={"discovery": self._name})
            elif not task.cancelled() and task.exception() is not None:
                log.error(
                    "discovery task had failed",
                    exc_info=task.exception(),
                    extra={"discovery": self._name},
                )
        await self._close()

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

    # -- for providers -----------------------------------------------------------------------

    @abc.abstractmethod
    async def _first_attempt(self) -> None:
        """Read the source once and publish (success or failure)."""

    @abc.abstractmethod
    async def _run(self) -> None:
        """Keep the member list current until cancelled."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release clients after the task stopped."""

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _publish(
        self,
        members: frozenset[MemberAddress] | None,
        *,
        ok: bool,
        error: str | None = None,
    ) -> None:
        """Record an attempt's outcome. `members=None` keeps the last known list."""
        changed = ok != self._ok
        if members is not None and members != self._members:
            joined, left = diff_members(self._members, members)
            log.info(
                "discovery members changed",
                extra={
                    "discovery": self._name,
                    "joined": sorted(m.address for m in joined),
                    "left": sorted(m.address for m in left),
                    "members": len(members),
                },
            )
            self._members = members
            changed = True
        self._ok = ok
        self._last_error = None if ok else error
        if ok:
            self._last_success = time.time()
        if changed:
            cond = self._condition()
            async with cond:
                self._generation += 1
                cond.notify_all()


def meta_pairs(meta: Mapping[str, object] | None) -> tuple[tuple[str, str], ...]:
    """Consul Meta → sorted (key, value) pairs."""
    if not meta:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in meta.items()))
