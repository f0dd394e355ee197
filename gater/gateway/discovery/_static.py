"""Static discovery: a fixed node list from `--nodes` or EX_ESDB_GATER_CONNECT_TO.

Owns: parsing "host:port,host:port" (`parse_node_list`) and `StaticDiscovery`.
Must not import gater.store, gater.subscriptions, gater.node, nor grpc.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from gater.gateway.discovery._base import (
    Discovery,
    DiscoveryConfigError,
    MemberAddress,
    parse_host_port,
)

__all__ = ["CONNECT_TO_VARIABLE", "StaticDiscovery", "parse_node_list"]

CONNECT_TO_VARIABLE = "EX_ESDB_GATER_CONNECT_TO"


def parse_node_list(text: str, *, source: str = CONNECT_TO_VARIABLE) -> list[str]:
    """ "host:port,host:port" (spaces and a trailing comma allowed) → ["host:port", …],
    each normalised; raises DiscoveryConfigError naming `source` on a bad or empty entry."""
    items = [part.strip() for part in text.split(",")]
    if items and items[-1] == "":
        items.pop()
    if not items:
        raise DiscoveryConfigError(source, "no node given (expected host:port,host:port)")
    out: list[str] = []
    for i, item in enumerate(items):
        if not item:
            raise DiscoveryConfigError(source, f"entry {i + 1} is empty (expected host:port)")
        host, port = parse_host_port(item, source=source)
        addr = MemberAddress(host, port).address
        if addr not in out:
            out.append(addr)
    return out


class StaticDiscovery(Discovery):
    """Members are exactly the given addresses; always ok."""

    def __init__(self, addresses: Iterable[str], *, source: str = "--nodes") -> None:
        super().__init__("static")
        members = []
        for a in addresses:
            host, port = parse_host_port(a, source=source)
            members.append(MemberAddress(host, port))
        if not members:
            raise DiscoveryConfigError(source, "no node given (expected host:port,host:port)")
        self._static = frozenset(members)

    async def _first_attempt(self) -> None:
        await self._publish(self._static, ok=True)

    async def _run(self) -> None:
        await asyncio.Event().wait()  # nothing to watch; stop() cancels this
