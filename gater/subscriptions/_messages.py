"""What a transient subscription yields to its servicer, one message at a time.

Owns: `Delivery` (events), `CaughtUp` (the end of catch-up), `Checkpoint` (examined up to a
position, nothing matched), `Heartbeat` (idle, at a position) and their union `Message`,
which also takes an `EncodedBatch` (events the store framed: a catch-up from the indexes).
`hub` re-exports them. Must not import grpc, gater.node or gater.gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.base import EncodedBatch, RecordedEvent

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


Message = Delivery | EncodedBatch | CaughtUp | Checkpoint | Heartbeat
