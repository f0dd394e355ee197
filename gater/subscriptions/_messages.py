"""What a transient subscription yields to its servicer, one message at a time.

Owns: `Delivery` (events), `CaughtUp` (the end of catch-up), `Checkpoint` (examined up to a
position, nothing matched), `Heartbeat` (idle, at a position) and their union `Message`.
`hub` re-exports them. Must not import grpc, gater.node or gater.gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import RecordedEvent

__all__ = ["CaughtUp", "Checkpoint", "Delivery", "Heartbeat", "Message"]


@dataclass(slots=True)
class Delivery:
    events: list[RecordedEvent]


@dataclass(slots=True)
class CaughtUp:
    position: int


@dataclass(slots=True)
class Checkpoint:
    position: int


@dataclass(slots=True)
class Heartbeat:
    position: int


Message = Delivery | CaughtUp | Checkpoint | Heartbeat
