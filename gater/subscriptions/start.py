"""Where a subscription starts, and how that becomes positions in a store.

Owns: `Start` (from the beginning, from now, or from a revision — the subscription layer's own
value, built by the servicer from exesdb.v1.StartFrom) and its resolution against a store:
`resolve()` for a transient subscription's cursor, `first_checkpoint()` for a persistent one.
Must not import grpc, gater.node or gater.gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..store.base import EventStore
from .matching import EventFilter

__all__ = ["Start", "first_checkpoint", "resolve"]


@dataclass(frozen=True, slots=True)
class Start:
    """`Start.BEGINNING`, `Start.NOW`, or `Start.at(revision)`: a stream version for a
    one-stream subscription, a global position otherwise."""

    BEGINNING: ClassVar[Start]
    NOW: ClassVar[Start]

    origin: Literal["beginning", "now", "revision"] = "beginning"
    revision: int = 0

    @classmethod
    def at(cls, revision: int) -> Start:
        if revision < 0:
            raise ValueError(f"revision must be >= 0, not {revision}")
        return cls("revision", revision)


Start.BEGINNING = Start("beginning")
Start.NOW = Start("now")


async def resolve(store: EventStore, event_filter: EventFilter, start: Start) -> tuple[int, int]:
    """(cursor, next_version): cursor is the last global position not to deliver;
    next_version the first version a one-stream subscription delivers."""
    if start.origin == "revision":
        if event_filter.stream is not None:
            return -1, start.revision
        return start.revision - 1, 0
    if start.origin == "now":
        last = await store.last_position()
        version = await store.stream_version(event_filter.stream) if event_filter.stream is not None else -1
        return last, version + 1
    return -1, 0


async def first_checkpoint(store: EventStore, event_filter: EventFilter, start: Start) -> int:
    """A persistent subscription's first checkpoint (a global position) for `start`."""
    cursor, next_version = await resolve(store, event_filter, start)
    if event_filter.stream is None or next_version == 0:
        return cursor
    page = await store.read_stream(event_filter.stream, next_version, 1)
    return page[0].position - 1 if page else await store.last_position()
