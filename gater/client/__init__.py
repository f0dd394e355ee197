"""The Python client of the exesdb.v1 API: asyncio first, with a small synchronous facade.

Owns: `Client` (``client = await Client.connect("127.0.0.1:50051")``, ``async with``), the
plain result types it returns (`Event`, `AppendResult`, `Snapshot`, ...), `Subscription`
(an async iterator of events with ack/nack for persistent subscriptions), `SyncClient`, the
mapping of gRPC statuses back onto gater.errors, connection strings (``gater://...``), and
`uuid7` (sortable time-based ids).

Rooms: _values (what calls take and return), _convert (values ↔ messages, statuses →
errors), _target (addresses and connection strings), _credentials (an API key or a bearer
token as call metadata), _connection (the channel and failover),
_client (the API methods), _subscription, _sync (the blocking facade), _transfer (transfer
files: export to, import from).

Must not import anything from gater except gater.errors and gater.ids (two leaves that import
nothing of gater): it depends only on the generated stubs (exesdb.v1), grpc, google.protobuf /
google.rpc and the standard library, so that it can be lifted out with the generated code as a
stand-alone client.
"""

from __future__ import annotations

from ..ids import uuid7
from ._client import Client
from ._convert import error_from_status
from ._credentials import check_credentials_travel, credential_metadata
from ._subscription import Subscription
from ._sync import SyncClient, SyncSubscription
from ._target import DEFAULT_TARGET, Target, parse_target
from ._transfer import TransferSummary
from ._values import (
    ALL,
    ANY,
    BACKWARD,
    BEGINNING,
    FORWARD,
    JSON,
    NO_STREAM,
    NOW,
    STREAM_EXISTS,
    AppendCondition,
    AppendResult,
    ClusterStatus,
    Event,
    Member,
    NackAction,
    NewEvent,
    Query,
    QueryItem,
    QueryResult,
    Snapshot,
    StoreConfig,
    StoreInfo,
    StoreStatus,
    StreamInfo,
    SubscriptionInfo,
    SubscriptionType,
    TLSConfig,
)

__all__ = [
    "ALL",
    "ANY",
    "BACKWARD",
    "BEGINNING",
    "DEFAULT_TARGET",
    "FORWARD",
    "JSON",
    "NOW",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendCondition",
    "AppendResult",
    "Client",
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
    "Subscription",
    "SubscriptionInfo",
    "SubscriptionType",
    "SyncClient",
    "SyncSubscription",
    "TLSConfig",
    "Target",
    "TransferSummary",
    "check_credentials_travel",
    "credential_metadata",
    "error_from_status",
    "parse_target",
    "uuid7",
]
