"""What the client's calls take and return: constants, enums and plain frozen dataclasses.

Owns: the expected-version, direction and start constants, `SubscriptionType`, `NackAction`,
`TLSConfig`, `NewEvent`, `Event` and the result types. No I/O, no conversions from messages.
Must not import anything from gater (the generated exesdb.v1 enums only).
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exesdb.v1 import subscriptions_pb2, types_pb2

__all__ = [
    "ALL",
    "ANY",
    "BACKWARD",
    "BEGINNING",
    "EXPECTED_STATES",
    "FORWARD",
    "JSON",
    "NOW",
    "NO_STREAM",
    "OCTETS",
    "STREAM_EXISTS",
    "AppendCondition",
    "AppendResult",
    "ClusterStatus",
    "Event",
    "Member",
    "NackAction",
    "NewEvent",
    "Query",
    "QueryItem",
    "QueryResult",
    "Snapshot",
    "StoreConfig",
    "StoreInfo",
    "StoreStatus",
    "StreamInfo",
    "SubscriptionInfo",
    "SubscriptionType",
    "TLSConfig",
    "jsonable",
]

# Expected versions (or pass an int: the exact version the stream must have, -1 = no stream).
ANY = "any"
NO_STREAM = "no_stream"
STREAM_EXISTS = "stream_exists"
EXPECTED_STATES = {
    ANY: types_pb2.EXPECTED_STATE_ANY,
    NO_STREAM: types_pb2.EXPECTED_STATE_NO_STREAM,
    STREAM_EXISTS: types_pb2.EXPECTED_STATE_STREAM_EXISTS,
}

# Read directions.
FORWARD = "forward"
BACKWARD = "backward"

# Where a subscription starts (or pass an int: a stream version or a global position).
BEGINNING = "beginning"
NOW = "now"

ALL = "$all"
"""The stream id of every event of a store, in global order."""

JSON = "application/json"
OCTETS = "application/octet-stream"



class SubscriptionType(enum.IntEnum):
    """What a subscription selects (mirrors exesdb.v1.SubscriptionType)."""

    BY_STREAM = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_STREAM
    BY_EVENT_TYPE = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_TYPE
    BY_EVENT_PATTERN = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN
    BY_EVENT_PAYLOAD = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PAYLOAD
    BY_QUERY = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_QUERY


class NackAction(enum.IntEnum):
    """What a nack asks for (mirrors exesdb.v1.NackAction)."""

    RETRY = subscriptions_pb2.NACK_ACTION_RETRY
    PARK = subscriptions_pb2.NACK_ACTION_PARK
    SKIP = subscriptions_pb2.NACK_ACTION_SKIP


# -- what calls take and return ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """How to reach a server over TLS (any field may stay None for the system defaults)."""

    root_certificates: bytes | None = None
    """PEM of the CA(s) to trust; None: the system's."""
    private_key: bytes | None = None
    """PEM private key for mutual TLS."""
    certificate_chain: bytes | None = None
    """PEM certificate chain for mutual TLS."""
    server_name: str | None = None
    """Override the name checked against the server's certificate."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `data`/`metadata`: a dict, list, dataclass or other JSON value
    (encoded as compact JSON), or bytes (stored as given)."""

    event_type: str
    data: Any = None
    metadata: Any = None
    event_id: str | None = None
    """A UUID; None: the client assigns a UUIDv7, which keeps retries idempotent."""
    content_type: str | None = None
    """None: application/json, or application/octet-stream for bytes."""
    metadata_content_type: str | None = None
    tags: tuple[str, ...] = ()
    """Short strings DCB queries select by ("course:c1"): at most 32, each 1..128 characters
    of A-Z a-z 0-9 and _ - . : / @ + = #."""


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event. `data` and `metadata` are decoded from JSON when their content type is
    JSON (else bytes); `raw_data`/`raw_metadata` are the bytes as stored."""

    stream_id: str
    version: int
    position: int
    event_id: str
    event_type: str
    data: Any
    metadata: Any
    content_type: str
    metadata_content_type: str
    created: _dt.datetime
    created_epoch: int
    retry_count: int = 0
    raw_data: bytes = b""
    raw_metadata: bytes = b""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (bodies that are not JSON appear as {"hex": ...})."""
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "data": jsonable(self.data),
            "metadata": jsonable(self.metadata),
            "content_type": self.content_type,
            "created": self.created.isoformat(),
            **({"retry_count": self.retry_count} if self.retry_count else {}),
            **({"tags": list(self.tags)} if self.tags else {}),
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    version: int
    """Version of the last event written."""
    position: int
    """Global position of the last event written."""
    first_version: int
    first_position: int
    duplicate: bool
    """True when every event id was already there: nothing was written."""


@dataclass(frozen=True, slots=True)
class QueryItem:
    """Events of any of `types` (any type when empty) that carry every one of `tags`."""

    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """A Dynamic Consistency Boundary query: its items OR'ed; no items: every event.
    `Query.of(types=..., tags=...)` is a query of one item."""

    items: tuple[QueryItem, ...] = ()

    @classmethod
    def of(cls, *, types: Iterable[str] = (), tags: Iterable[str] = ()) -> Query:
        return cls((QueryItem(tuple(types), tuple(tags)),))


@dataclass(frozen=True, slots=True)
class AppendCondition:
    """Fail the append (AppendConditionFailedError) if an event matching `query` has a
    position after `after` (None: any matching event at all)."""

    query: Query
    after: int | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The events a query read returned and the head it was cut at: nothing matching the
    query exists between the last of them and `head`, so `head` is the `after` of an append
    decided on these events."""

    events: list[Event]
    head: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    stream_id: str
    version: int


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    name: str
    type: SubscriptionType
    selector: str
    pattern: dict[str, Any] | None
    message_timeout_ms: int
    max_retries: int
    max_in_flight: int
    checkpoint: int
    lag: int
    in_flight: int
    parked: int
    consumers: int
    created: bool | None = None
    """From save_subscription: True when created, False when updated; None elsewhere."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    source_uuid: str
    stream_uuid: str
    source_version: int
    source_type: str
    data: Any
    metadata: Any
    created_at: _dt.datetime | None
    created_epoch: int


@dataclass(frozen=True, slots=True)
class StoreInfo:
    store_id: str
    created_at: _dt.datetime | None


@dataclass(frozen=True, slots=True)
class StoreStatus:
    store_id: str
    stream_count: int
    event_count: int
    last_position: int
    snapshot_count: int
    subscription_count: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """What a stream keeps (docs/lifecycle.md); each rule None: no limit."""

    max_count: int | None = None
    max_age_s: int | None = None
    truncate_before: int | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)
    """The user's JSON object."""
    meta_version: int = -1
    """As read: 0 for the first write, +1 per write; -1 when none was written."""
    state: str = "live"
    """As read: "live", "soft_deleted" or "tombstoned"."""


@dataclass(frozen=True, slots=True)
class ScavengeStatus:
    running: bool
    next_position: int
    """Every position below it has been examined by the scavenge under way (or the last one)."""
    removed: int
    started_at: _dt.datetime | None


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_id: str
    backend: str
    location: str
    durability: str
    max_events_per_append: int
    max_message_bytes: int
    created_at: _dt.datetime | None


@dataclass(frozen=True, slots=True)
class Member:
    node_id: str
    address: str
    cluster_id: str
    healthy: bool
    in_flight: int
    failures: int


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    role: str
    """"node" or "gateway"."""
    node_id: str
    cluster_id: str
    version: str
    backend: str
    members: list[Member]
    discovery: str
    discovery_ok: bool
    address: str



def jsonable(value: Any) -> Any:
    """`value`, with bytes as {"hex": ...} so that it can go into JSON."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value
