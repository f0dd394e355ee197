"""The Python client of the exesdb.v1 API: asyncio first, with a small synchronous facade.

Owns: `Client` (``client = await Client.connect("127.0.0.1:50051")``, ``async with``), the
plain result types it returns (`Event`, `AppendResult`, `Snapshot`, ...), `Subscription`
(an async iterator of events with ack/nack for persistent subscriptions), `SyncClient`, the
mapping of gRPC statuses back onto gater.errors, and `uuid7` (sortable time-based ids).

Must not import anything from gater except gater.errors: it depends only on the generated
stubs (exesdb.v1), grpc, google.protobuf / google.rpc and the standard library, so that it
can be lifted out with the generated code as a stand-alone client.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as _dt
import enum
import functools
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format, struct_pb2

from exesdb.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    snapshots_pb2,
    snapshots_pb2_grpc,
    stores_pb2,
    stores_pb2_grpc,
    streams_pb2,
    streams_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
    types_pb2,
)

from .errors import (
    STATUS_DETAILS_KEY,
    GaterError,
    InvalidArgumentError,
    UnavailableError,
    decode_status,
)
from .ids import uuid7

__all__ = [
    "ALL",
    "ANY",
    "BACKWARD",
    "BEGINNING",
    "FORWARD",
    "NOW",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "Client",
    "ClusterStatus",
    "Event",
    "Member",
    "NackAction",
    "NewEvent",
    "Snapshot",
    "StoreConfig",
    "StoreInfo",
    "StoreStatus",
    "StreamInfo",
    "Subscription",
    "SubscriptionInfo",
    "SubscriptionType",
    "SyncClient",
    "TLSConfig",
    "uuid7",
]

T = TypeVar("T")

# Expected versions (or pass an int: the exact version the stream must have, -1 = no stream).
ANY = "any"
NO_STREAM = "no_stream"
STREAM_EXISTS = "stream_exists"
_EXPECTED_STATES = {
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
_OCTETS = "application/octet-stream"
DEFAULT_TARGET = "127.0.0.1:50051"


class SubscriptionType(enum.IntEnum):
    """What a subscription selects (mirrors exesdb.v1.SubscriptionType)."""

    BY_STREAM = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_STREAM
    BY_EVENT_TYPE = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_TYPE
    BY_EVENT_PATTERN = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN
    BY_EVENT_PAYLOAD = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PAYLOAD


class NackAction(enum.IntEnum):
    """What a nack asks for (mirrors exesdb.v1.NackAction)."""

    RETRY = subscriptions_pb2.NACK_ACTION_RETRY
    PARK = subscriptions_pb2.NACK_ACTION_PARK
    SKIP = subscriptions_pb2.NACK_ACTION_SKIP


# -- sortable ids ---------------------------------------------------------------------------

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (bodies that are not JSON appear as {"hex": ...})."""
        return {
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "data": _jsonable(self.data),
            "metadata": _jsonable(self.metadata),
            "content_type": self.content_type,
            "created": self.created.isoformat(),
            **({"retry_count": self.retry_count} if self.retry_count else {}),
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


# -- conversions ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    return value


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode(value: Any, content_type: str | None, field_name: str) -> tuple[bytes, str]:
    if isinstance(value, bytes | bytearray):
        return bytes(value), content_type or _OCTETS
    if value is None:
        value = {}
    try:
        raw = json.dumps(value, separators=(",", ":"), default=_json_default).encode()
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(field_name, f"cannot be encoded as JSON: {e}") from None
    return raw, content_type or JSON


def _is_json(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base == JSON or base.endswith("+json")


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if _is_json(content_type):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _as_new_event(item: Any, index: int) -> NewEvent:
    where = f"events[{index}]"
    if isinstance(item, NewEvent):
        return item
    if isinstance(item, Mapping):
        unknown = set(item) - {f.name for f in dataclasses.fields(NewEvent)}
        if unknown:
            raise InvalidArgumentError(where, f"unknown keys {sorted(unknown)}")
        if "event_type" not in item:
            raise InvalidArgumentError(f"{where}.event_type", "is required")
        return NewEvent(**item)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        # A domain event: its class says its type (`event_type = "x:v1"`), its fields are data.
        event_type = getattr(item, "event_type", None)
        if not isinstance(event_type, str):
            raise InvalidArgumentError(f"{where}.event_type", f"{type(item).__name__} has no str `event_type`")
        data = dataclasses.asdict(item)
        data.pop("event_type", None)
        return NewEvent(event_type=event_type, data=data)
    raise InvalidArgumentError(where, f"must be a NewEvent, a dict or a dataclass, not {type(item).__name__}")


def _new_event_message(event: NewEvent, index: int) -> types_pb2.NewEvent:
    data, content_type = _encode(event.data, event.content_type, f"events[{index}].data")
    message = types_pb2.NewEvent(
        event_id=event.event_id or str(uuid7()),
        event_type=event.event_type,
        data=data,
        content_type=content_type,
    )
    if event.metadata is not None:
        meta, meta_type = _encode(event.metadata, event.metadata_content_type, f"events[{index}].metadata")
        message.metadata = meta
        message.metadata_content_type = meta_type
    return message


def _when(ts: Any) -> _dt.datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=_dt.UTC)


def _struct_or_raw(struct: struct_pb2.Struct, has_struct: bool, raw: bytes, content_type: str) -> Any:
    if has_struct:
        return json_format.MessageToDict(struct)
    return _decode(raw, content_type)


def _event(record: types_pb2.EventRecord) -> Event:
    return Event(
        stream_id=record.stream_id,
        version=record.version,
        position=record.position,
        event_id=record.event_id,
        event_type=record.event_type,
        data=_struct_or_raw(record.data_json, record.HasField("data_json"), record.data, record.content_type),
        metadata=_struct_or_raw(
            record.metadata_json, record.HasField("metadata_json"), record.metadata, record.metadata_content_type
        ),
        content_type=record.content_type,
        metadata_content_type=record.metadata_content_type,
        created=record.created.ToDatetime(tzinfo=_dt.UTC),
        created_epoch=record.created_epoch,
        retry_count=record.retry_count,
        raw_data=record.data,
        raw_metadata=record.metadata,
    )


def _snapshot(s: types_pb2.SnapshotRecord) -> Snapshot:
    return Snapshot(
        source_uuid=s.source_uuid,
        stream_uuid=s.stream_uuid,
        source_version=s.source_version,
        source_type=s.source_type,
        data=_struct_or_raw(s.data_json, s.HasField("data_json"), s.data, JSON),
        metadata=_struct_or_raw(s.metadata_json, s.HasField("metadata_json"), s.metadata, JSON),
        created_at=_when(s.created_at),
        created_epoch=s.created_epoch,
    )


def _subscription_info(s: subscriptions_pb2.SubscriptionInfo, created: bool | None = None) -> SubscriptionInfo:
    return SubscriptionInfo(
        name=s.name,
        type=SubscriptionType(s.type),
        selector=s.selector,
        pattern=json_format.MessageToDict(s.pattern) if s.HasField("pattern") else None,
        message_timeout_ms=s.settings.message_timeout_ms,
        max_retries=s.settings.max_retries,
        max_in_flight=s.settings.max_in_flight,
        checkpoint=s.checkpoint,
        lag=s.lag,
        in_flight=s.in_flight,
        parked=s.parked,
        consumers=s.consumers,
        created=created,
    )


def _member(m: cluster_pb2.Member) -> Member:
    return Member(m.node_id, m.address, m.cluster_id, m.healthy, m.in_flight, m.failures)


def _start_from(start: str | int, field_name: str = "start_from") -> subscriptions_pb2.StartFrom:
    if start == BEGINNING:
        return subscriptions_pb2.StartFrom(origin=subscriptions_pb2.StartFrom.ORIGIN_BEGINNING)
    if start == NOW:
        return subscriptions_pb2.StartFrom(origin=subscriptions_pb2.StartFrom.ORIGIN_NOW)
    if isinstance(start, int) and not isinstance(start, bool):
        return subscriptions_pb2.StartFrom(revision=start)
    raise InvalidArgumentError(field_name, f'must be "beginning", "now" or an int, not {start!r}')


def _selection(
    stream: str | None, event_type: str | None, pattern: Mapping[str, Any] | None, payload: Mapping[str, Any] | None
) -> tuple[SubscriptionType, str, struct_pb2.Struct | None]:
    """(type, selector, pattern) from the one keyword a caller gave."""
    given = [k for k, v in (("stream", stream), ("event_type", event_type), ("pattern", pattern), ("payload", payload)) if v is not None]
    if len(given) > 1:
        raise InvalidArgumentError(given[1], f"give one of stream, event_type, pattern, payload (got {', '.join(given)})")
    if event_type is not None:
        return SubscriptionType.BY_EVENT_TYPE, event_type, None
    for kind, value in ((SubscriptionType.BY_EVENT_PATTERN, pattern), (SubscriptionType.BY_EVENT_PAYLOAD, payload)):
        if value is not None:
            try:
                struct = json_format.ParseDict(dict(value), struct_pb2.Struct())
            except (json_format.ParseError, TypeError, ValueError) as e:
                raise InvalidArgumentError(kind.name.lower(), f"must be a JSON object: {e}") from None
            return kind, "", struct
    return SubscriptionType.BY_STREAM, stream if stream is not None else ALL, None


# -- statuses → gater.errors --------------------------------------------------------------------


def error_from_status(error: grpc.aio.AioRpcError) -> GaterError:
    """The gater.errors exception for a failed call, chosen by `errors.decode_status` from the
    status code and its typed details (never from the message's text)."""
    details = dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    return decode_status(error.code().name, error.details() or error.code().name, details)


# -- the client ---------------------------------------------------------------------------------


class _Stubs:
    def __init__(self, target: str, channel: grpc.aio.Channel) -> None:
        self.target = target
        self.channel = channel
        self.streams = streams_pb2_grpc.StreamsStub(channel)
        self.subscriptions = subscriptions_pb2_grpc.SubscriptionsStub(channel)
        self.snapshots = snapshots_pb2_grpc.SnapshotsStub(channel)
        self.stores = stores_pb2_grpc.StoresStub(channel)
        self.cluster = cluster_pb2_grpc.ClusterStub(channel)


_UNSET: Any = object()


class Client:
    """A connection to one of several exesdb.v1 servers (nodes or gateways).

    ``client = await Client.connect(["10.0.0.1:50051", "10.0.0.2:50051"])`` dials the first
    that answers; a call that meets UNAVAILABLE moves on to the next address and is tried
    again there (appends are safe to retry: the client gives each event an id, so a repeat is
    a no-op). Use as ``async with``; `close()` is idempotent.

    Store-scoped methods take the store first, as the original API does; "" means the
    server's default store. `timeout_s` (per call, or the client's default) is a deadline.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        timeout_s: float | None = 10.0,
        connect_timeout_s: float = 5.0,
        tls: TLSConfig | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if not targets:
            raise InvalidArgumentError("targets", "give at least one host:port")
        self.targets = list(targets)
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.tls = tls
        self.metadata = tuple(metadata)
        self.max_message_bytes = max_message_bytes
        self._stubs: _Stubs | None = None
        self._next = 0
        self._closed = False
        self._switch = asyncio.Lock()

    @classmethod
    async def connect(cls, target: str | Sequence[str] = DEFAULT_TARGET, **options: Any) -> Client:
        """Connects to the first of `target` (one "host:port", a comma-separated list, or a
        sequence of them) that answers; UnavailableError when none does."""
        targets = [t.strip() for t in target.split(",")] if isinstance(target, str) else list(target)
        client = cls([t for t in targets if t], **options)
        await client._dial(first=True)
        return client

    @property
    def target(self) -> str:
        """The address in use."""
        return self._stubs.target if self._stubs is not None else ""

    async def __aenter__(self) -> Client:
        if self._stubs is None:
            await self._dial(first=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        stubs, self._stubs = self._stubs, None
        if stubs is not None:
            await stubs.channel.close()

    # -- connection --------------------------------------------------------------------------

    def _channel(self, target: str) -> grpc.aio.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            # Fail fast on a dead address instead of waiting out the reconnect backoff.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if self.tls is None:
            return grpc.aio.insecure_channel(target, options=options)
        if self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        credentials = grpc.ssl_channel_credentials(
            self.tls.root_certificates, self.tls.private_key, self.tls.certificate_chain
        )
        return grpc.aio.secure_channel(target, credentials, options=options)

    async def _dial(self, first: bool = False, failed: _Stubs | None = None) -> _Stubs:
        """Connects to the next target that becomes READY, starting after the one that failed."""
        async with self._switch:
            if self._closed and not first:
                raise UnavailableError("the client is closed")
            if self._stubs is not None and self._stubs is not failed:
                return self._stubs  # another call switched already
            if self._stubs is not None:
                await self._stubs.channel.close()
                self._stubs = None
            self._closed = False
            reasons = []
            for _ in range(len(self.targets)):
                target = self.targets[self._next % len(self.targets)]
                self._next += 1
                channel = self._channel(target)
                try:
                    await _ready(channel, self.connect_timeout_s)
                except UnavailableError as e:
                    await channel.close()
                    reasons.append(f"{target}: {e.message}")
                    continue
                self._stubs = _Stubs(target, channel)
                return self._stubs
            raise UnavailableError("cannot connect to " + "; ".join(reasons))

    async def _stubs_now(self) -> _Stubs:
        if self._stubs is None:
            return await self._dial()
        return self._stubs

    def _deadline(self, timeout_s: float | None) -> float | None:
        return self.timeout_s if timeout_s is _UNSET else timeout_s

    async def _unary(self, service: str, method: str, request: Any, timeout_s: Any, store: str = "") -> Any:
        """One unary call, moved to the next target on UNAVAILABLE (once per target)."""
        attempts = len(self.targets)
        while True:
            stubs = await self._stubs_now()
            rpc = getattr(getattr(stubs, service), method)
            try:
                return await rpc(request, timeout=self._deadline(timeout_s), metadata=self.metadata or None)
            except grpc.aio.AioRpcError as e:
                attempts -= 1
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempts > 0 and len(self.targets) > 1:
                    try:
                        await self._dial(failed=stubs)
                    except UnavailableError:
                        raise error_from_status(e) from None
                    continue
                raise error_from_status(e) from None

    # -- streams ---------------------------------------------------------------------------

    async def append_events(
        self,
        store: str,
        stream: str,
        events: Iterable[Any],
        expected_version: int | str = ANY,
        *,
        timeout_s: float | None = _UNSET,
    ) -> AppendResult:
        """Appends `events` (NewEvent, dicts with NewEvent's keys, or dataclasses with an
        `event_type`) atomically if the stream's version is `expected_version` (ANY,
        NO_STREAM, STREAM_EXISTS, or an int). WrongExpectedVersionError carries the current
        version."""
        request = streams_pb2.AppendEventsRequest(
            store=store,
            stream_id=stream,
            events=[_new_event_message(_as_new_event(e, i), i) for i, e in enumerate(events)],
        )
        if isinstance(expected_version, int) and not isinstance(expected_version, bool):
            request.expected_version = expected_version
        elif expected_version in _EXPECTED_STATES:
            request.expected_state = _EXPECTED_STATES[expected_version]
        else:
            raise InvalidArgumentError(
                "expected_version", f'must be "any", "no_stream", "stream_exists" or an int, not {expected_version!r}'
            )
        r = await self._unary("streams", "AppendEvents", request, timeout_s, store)
        return AppendResult(r.version, r.position, r.first_version, r.first_position, r.duplicate)

    async def read_events(
        self,
        store: str,
        stream: str,
        start: int | None = None,
        count: int = 0,
        direction: str = FORWARD,
        *,
        timeout_s: float | None = None,
    ) -> AsyncIterator[list[Event]]:
        """Reads `stream` (or ALL) in batches as the server sends them, from `start` (a
        version, or a global position for ALL; None: the first or, backward, the last
        event), at most `count` events (0: all). Handy for long reads with progress."""
        if direction not in (FORWARD, BACKWARD):
            raise InvalidArgumentError("direction", f'must be "forward" or "backward", not {direction!r}')
        request = streams_pb2.ReadEventsRequest(
            store=store,
            stream_id=stream,
            count=count,
            direction=streams_pb2.READ_DIRECTION_BACKWARD if direction == BACKWARD else streams_pb2.READ_DIRECTION_FORWARD,
        )
        if start is not None:
            request.from_version = start
        stubs = await self._stubs_now()
        call = stubs.streams.ReadEvents(request, timeout=timeout_s, metadata=self.metadata or None)
        try:
            async for batch in call:
                yield [_event(r) for r in batch.events]
        except grpc.aio.AioRpcError as e:
            raise error_from_status(e) from None
        finally:
            call.cancel()

    async def get_events(
        self,
        store: str,
        stream: str,
        start: int | None = None,
        count: int = 0,
        direction: str = FORWARD,
        *,
        timeout_s: float | None = _UNSET,
    ) -> list[Event]:
        """The events `read_events` yields, as one list (a missing stream gives [])."""
        out: list[Event] = []
        async for batch in self.read_events(store, stream, start, count, direction, timeout_s=self._deadline(timeout_s)):
            out.extend(batch)
        return out

    async def get_version(self, store: str, stream: str, *, timeout_s: float | None = _UNSET) -> int:
        """The stream's version (-1: no stream); for ALL, the last global position."""
        request = streams_pb2.GetVersionRequest(store=store, stream_id=stream)
        return (await self._unary("streams", "GetVersion", request, timeout_s, store)).version

    async def get_streams(self, store: str, *, page_size: int = 0, timeout_s: float | None = _UNSET) -> list[StreamInfo]:
        """Every stream of the store, in id order (fetched a page at a time)."""
        out: list[StreamInfo] = []
        token = ""
        while True:
            request = streams_pb2.ListStreamsRequest(store=store, page_size=page_size, page_token=token)
            page = await self._unary("streams", "ListStreams", request, timeout_s, store)
            out.extend(StreamInfo(s.stream_id, s.version) for s in page.streams)
            token = page.next_page_token
            if not token:
                return out

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self,
        store: str,
        *,
        stream: str | None = None,
        event_type: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        name: str | None = None,
        start_from: str | int = BEGINNING,
        max_batch: int = 0,
        heartbeat_ms: int = 0,
        timeout_s: float | None = None,
    ) -> Subscription:
        """A subscription, as an async iterator of events (``async with`` it to be sure it is
        confirmed before going on). Transient: give one of `stream` (default ALL),
        `event_type`, `pattern` (partial match on the record) or `payload` (partial match on
        the JSON body; "_" matches any value). Persistent: `name` of a saved subscription —
        then ack (or nack) what you get. `timeout_s`: a deadline for the whole subscription
        (None: none), after which iterating raises DeadlineExceededError."""
        if name is not None and any(v is not None for v in (stream, event_type, pattern, payload)):
            kind, selector, struct = _selection(stream, event_type, pattern, payload)
        elif name is not None:
            kind, selector, struct = SubscriptionType.BY_STREAM, "", None
        else:
            kind, selector, struct = _selection(stream, event_type, pattern, payload)
        request = subscriptions_pb2.SubscribeRequest(
            store=store,
            type=kind,
            selector=selector,
            subscription_name=name or "",
            max_batch=max_batch,
            heartbeat_ms=heartbeat_ms,
        )
        if struct is not None:
            request.pattern.CopyFrom(struct)
        if name is None:
            request.start_from.CopyFrom(_start_from(start_from))
        return Subscription(self, store, request, timeout_s)

    async def save_subscription(
        self,
        store: str,
        name: str,
        *,
        stream: str | None = None,
        event_type: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        start_from: str | int = BEGINNING,
        message_timeout_ms: int = 0,
        max_retries: int = 0,
        max_in_flight: int = 0,
        timeout_s: float | None = _UNSET,
    ) -> SubscriptionInfo:
        """Creates (or updates) the persistent subscription `name`; `start_from` applies to a
        new one only. Zero settings take the server's defaults."""
        kind, selector, struct = _selection(stream, event_type, pattern, payload)
        request = subscriptions_pb2.SaveSubscriptionRequest(
            store=store,
            name=name,
            type=kind,
            selector=selector,
            start_from=_start_from(start_from),
            settings=subscriptions_pb2.SubscriptionSettings(
                message_timeout_ms=message_timeout_ms, max_retries=max_retries, max_in_flight=max_in_flight
            ),
        )
        if struct is not None:
            request.pattern.CopyFrom(struct)
        r = await self._unary("subscriptions", "SaveSubscription", request, timeout_s, store)
        return _subscription_info(r.subscription, r.created)

    async def remove_subscription(self, store: str, name: str, *, timeout_s: float | None = _UNSET) -> None:
        request = subscriptions_pb2.RemoveSubscriptionRequest(store=store, name=name)
        await self._unary("subscriptions", "RemoveSubscription", request, timeout_s, store)

    async def get_subscriptions(self, store: str, *, timeout_s: float | None = _UNSET) -> list[SubscriptionInfo]:
        request = subscriptions_pb2.ListSubscriptionsRequest(store=store)
        r = await self._unary("subscriptions", "ListSubscriptions", request, timeout_s, store)
        return [_subscription_info(s) for s in r.subscriptions]

    async def ack(self, store: str, name: str, positions: Iterable[int], *, timeout_s: float | None = _UNSET) -> None:
        """Acknowledges events of persistent subscription `name` by global position."""
        request = subscriptions_pb2.AckEventRequest(store=store, subscription_name=name, positions=list(positions))
        await self._unary("subscriptions", "AckEvent", request, timeout_s, store)

    async def nack(
        self,
        store: str,
        name: str,
        positions: Iterable[int],
        action: NackAction = NackAction.RETRY,
        reason: str = "",
        *,
        timeout_s: float | None = _UNSET,
    ) -> None:
        """Rejects events: RETRY (deliver again), PARK, or SKIP."""
        request = subscriptions_pb2.NackEventRequest(
            store=store, subscription_name=name, positions=list(positions), action=int(action), reason=reason
        )
        await self._unary("subscriptions", "NackEvent", request, timeout_s, store)

    async def replay_parked(self, store: str, name: str, *, timeout_s: float | None = _UNSET) -> int:
        """Puts parked events back for delivery; returns how many."""
        request = subscriptions_pb2.ReplayParkedEventsRequest(store=store, subscription_name=name)
        return (await self._unary("subscriptions", "ReplayParkedEvents", request, timeout_s, store)).replayed

    # -- snapshots ---------------------------------------------------------------------------

    async def record_snapshot(
        self,
        store: str,
        source_uuid: str,
        stream_uuid: str,
        version: int,
        data: Any,
        *,
        source_type: str = "",
        metadata: Any = None,
        timeout_s: float | None = _UNSET,
    ) -> Snapshot:
        """Records (or replaces) the snapshot at (source_uuid, stream_uuid, version); `data`
        is JSON-encoded unless it is bytes. Returns it without its data."""
        raw, _ = _encode(data, None, "snapshot.data")
        record = types_pb2.SnapshotRecord(
            source_uuid=source_uuid, stream_uuid=stream_uuid, source_version=version, source_type=source_type, data=raw
        )
        if metadata is not None:
            record.metadata = _encode(metadata, None, "snapshot.metadata")[0]
        request = snapshots_pb2.RecordSnapshotRequest(store=store, snapshot=record)
        return _snapshot((await self._unary("snapshots", "RecordSnapshot", request, timeout_s, store)).snapshot)

    async def read_snapshot(
        self, store: str, source_uuid: str, stream_uuid: str, version: int | None = None, *, timeout_s: float | None = _UNSET
    ) -> Snapshot:
        """The snapshot at `version`, or the latest; SnapshotNotFoundError when there is none."""
        request = snapshots_pb2.ReadSnapshotRequest(store=store, source_uuid=source_uuid, stream_uuid=stream_uuid)
        if version is not None:
            request.version = version
        return _snapshot((await self._unary("snapshots", "ReadSnapshot", request, timeout_s, store)).snapshot)

    async def delete_snapshot(
        self, store: str, source_uuid: str, stream_uuid: str, version: int | None = None, *, timeout_s: float | None = _UNSET
    ) -> int:
        """Deletes the snapshot at `version`, or all of them; returns how many went."""
        request = snapshots_pb2.DeleteSnapshotRequest(store=store, source_uuid=source_uuid, stream_uuid=stream_uuid)
        if version is not None:
            request.version = version
        return (await self._unary("snapshots", "DeleteSnapshot", request, timeout_s, store)).deleted

    async def list_snapshots(
        self, store: str, source_uuid: str = "", stream_uuid: str = "", *, timeout_s: float | None = _UNSET
    ) -> list[Snapshot]:
        """Snapshots (without data), filtered by source and/or stream."""
        out: list[Snapshot] = []
        token = ""
        while True:
            request = snapshots_pb2.ListSnapshotsRequest(
                store=store, source_uuid=source_uuid, stream_uuid=stream_uuid, page_token=token
            )
            page = await self._unary("snapshots", "ListSnapshots", request, timeout_s, store)
            out.extend(_snapshot(s) for s in page.snapshots)
            token = page.next_page_token
            if not token:
                return out

    # -- stores ------------------------------------------------------------------------------

    async def create_store(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreInfo:
        """Creates a store; StoreAlreadyExistsError when it exists."""
        r = await self._unary("stores", "CreateStore", stores_pb2.CreateStoreRequest(store_id=store_id), timeout_s, store_id)
        return StoreInfo(r.store.store_id, _when(r.store.created_at))

    async def remove_store(self, store_id: str, *, timeout_s: float | None = _UNSET) -> None:
        """Removes a store and everything in it. Irreversible."""
        await self._unary("stores", "RemoveStore", stores_pb2.RemoveStoreRequest(store_id=store_id), timeout_s, store_id)

    async def list_stores(self, *, timeout_s: float | None = _UNSET) -> list[StoreInfo]:
        r = await self._unary("stores", "ListStores", stores_pb2.ListStoresRequest(), timeout_s)
        return [StoreInfo(s.store_id, _when(s.created_at)) for s in r.stores]

    async def get_store_status(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreStatus:
        r = await self._unary(
            "stores", "GetStoreStatus", stores_pb2.GetStoreStatusRequest(store_id=store_id), timeout_s, store_id
        )
        return StoreStatus(
            r.store_id, r.stream_count, r.event_count, r.last_position, r.snapshot_count, r.subscription_count, r.size_bytes
        )

    async def get_store_config(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreConfig:
        r = await self._unary(
            "stores", "GetStoreConfig", stores_pb2.GetStoreConfigRequest(store_id=store_id), timeout_s, store_id
        )
        return StoreConfig(
            r.store_id, r.backend, r.location, r.durability, r.max_events_per_append, r.max_message_bytes, _when(r.created_at)
        )

    # -- cluster -----------------------------------------------------------------------------

    async def cluster_status(self, *, timeout_s: float | None = _UNSET) -> ClusterStatus:
        """Who serves this client: its role, ids, version, backend and members."""
        r = await self._unary("cluster", "GetStatus", cluster_pb2.GetStatusRequest(), timeout_s)
        role = {cluster_pb2.ROLE_NODE: "node", cluster_pb2.ROLE_GATEWAY: "gateway"}.get(r.role, "unspecified")
        return ClusterStatus(
            role, r.node_id, r.cluster_id, r.version, r.backend, [_member(m) for m in r.members],
            r.discovery, r.discovery_ok, r.address,
        )  # fmt: skip

    async def watch_members(self) -> AsyncIterator[tuple[str, Member]]:
        """(change, member) pairs: "present" for each current member, then "joined", "left",
        "updated" as they happen."""
        stubs = await self._stubs_now()
        call = stubs.cluster.WatchMembers(cluster_pb2.WatchMembersRequest(), metadata=self.metadata or None)
        names = {v: k.removeprefix("CHANGE_").lower() for k, v in cluster_pb2.WatchMembersResponse.Change.items()}
        try:
            async for r in call:
                yield names.get(r.change, "unspecified"), _member(r.member)
        except grpc.aio.AioRpcError as e:
            raise error_from_status(e) from None
        finally:
            call.cancel()


async def _ready(channel: grpc.aio.Channel, timeout_s: float) -> None:
    """Returns when the channel is READY; UnavailableError when it fails to connect (a refused
    connection fails at once rather than at the timeout)."""
    ready = grpc.ChannelConnectivity.READY
    failed = grpc.ChannelConnectivity.TRANSIENT_FAILURE
    try:
        async with asyncio.timeout(timeout_s):
            state = channel.get_state(try_to_connect=True)
            while state != ready:
                if state == failed:
                    raise UnavailableError("connection failed")
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        raise UnavailableError(f"no answer within {timeout_s:g}s") from None


class Subscription:
    """A running subscription: ``async for event in subscription`` yields events in global
    order. ``async with`` starts it and waits for the server's confirmation (so a bad request
    or an unknown subscription raises there); `close()` ends it and is idempotent.

    For persistent subscriptions, `ack(events)` / `nack(events, action)` settle deliveries;
    `caught_up` is set when catch-up has ended; `position` is the last global position the
    server says it has examined."""

    def __init__(
        self, client: Client, store: str, request: subscriptions_pb2.SubscribeRequest, timeout_s: float | None = None
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.store = store
        self.request = request
        self.name = request.subscription_name or "transient"
        self.consumer_id = ""
        self.node_id = ""
        self.position = -1
        self.caught_up = asyncio.Event()
        self._call: Any = None
        self._pending: collections.deque[Event] = collections.deque()
        self._closed = False

    @property
    def persistent(self) -> bool:
        return bool(self.request.subscription_name) and self.request.subscription_name != "transient"

    async def start(self) -> Subscription:
        """Starts the call and waits for its confirmation."""
        if self._call is not None:
            return self
        stubs = await self.client._stubs_now()
        self._call = stubs.subscriptions.Subscribe(
            self.request, timeout=self.timeout_s, metadata=self.client.metadata or None
        )
        message = await self._read()
        if message is None or message.WhichOneof("message") != "confirmation":
            raise GaterError("the server did not confirm the subscription")
        self.consumer_id = message.confirmation.consumer_id
        self.node_id = message.confirmation.node_id
        return self

    async def _read(self) -> Any:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED and self._closed:
                return None
            raise error_from_status(e) from None
        except asyncio.CancelledError:
            if self._closed:
                return None
            raise
        return None if message is grpc.aio.EOF else message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self._call is None:
            await self.start()
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            message = await self._read()
            if message is None:
                raise StopAsyncIteration
            kind = message.WhichOneof("message")
            if kind == "events":
                self._pending.extend(_event(r) for r in message.events.events)
                if self._pending:
                    self.position = max(self.position, self._pending[-1].position)
            elif kind == "caught_up":
                self.position = max(self.position, message.caught_up.position)
                self.caught_up.set()
            elif kind in ("checkpoint", "heartbeat"):
                self.position = max(self.position, getattr(message, kind).position)
        return self._pending.popleft()

    async def ack(self, events: Event | Iterable[Event | int]) -> None:
        """Acknowledges events (or global positions) of this persistent subscription."""
        await self.client.ack(self.store, self.name, _positions(events))

    async def nack(self, events: Event | Iterable[Event | int], action: NackAction = NackAction.RETRY, reason: str = "") -> None:
        await self.client.nack(self.store, self.name, _positions(events), action, reason)

    async def close(self) -> None:
        self._closed = True
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> Subscription:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _positions(events: Event | Iterable[Event | int]) -> list[int]:
    items = [events] if isinstance(events, Event) else list(events)
    return [e.position if isinstance(e, Event) else int(e) for e in items]


# -- the synchronous facade ------------------------------------------------------------------


def _sync(name: str) -> Any:
    method = getattr(Client, name)

    @functools.wraps(method)
    def call(self: SyncClient, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self._client, name)(*args, **kwargs))

    return call


class SyncClient:
    """`Client` for code without an event loop: the same methods, blocking. It runs a private
    event loop on a background thread. ``with SyncClient.connect("host:port") as client:``.
    `subscribe` returns a blocking iterator (`SyncSubscription`)."""

    def __init__(self, client_factory: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gater-client", daemon=True)
        self._thread.start()
        try:
            self._client: Client = self._run(client_factory())
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, target: str | Sequence[str] = DEFAULT_TARGET, **options: Any) -> SyncClient:
        return cls(lambda: Client.connect(target, **options))

    def _run(self, coro: Any, timeout_s: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._stop_loop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> str:
        return self._client.target

    append_events = _sync("append_events")
    get_events = _sync("get_events")
    get_version = _sync("get_version")
    get_streams = _sync("get_streams")
    save_subscription = _sync("save_subscription")
    remove_subscription = _sync("remove_subscription")
    get_subscriptions = _sync("get_subscriptions")
    ack = _sync("ack")
    nack = _sync("nack")
    replay_parked = _sync("replay_parked")
    record_snapshot = _sync("record_snapshot")
    read_snapshot = _sync("read_snapshot")
    delete_snapshot = _sync("delete_snapshot")
    list_snapshots = _sync("list_snapshots")
    create_store = _sync("create_store")
    remove_store = _sync("remove_store")
    list_stores = _sync("list_stores")
    get_store_status = _sync("get_store_status")
    get_store_config = _sync("get_store_config")
    cluster_status = _sync("cluster_status")

    def subscribe(self, store: str, **kwargs: Any) -> SyncSubscription:
        """Starts a subscription (waiting for its confirmation) and returns its iterator."""
        subscription = self._client.subscribe(store, **kwargs)
        self._run(subscription.start())
        return SyncSubscription(self, subscription)


class SyncSubscription:
    """A blocking iterator over a `Subscription`; `next(it)` waits for the next event."""

    def __init__(self, owner: SyncClient, subscription: Subscription) -> None:
        self._owner = owner
        self.subscription = subscription

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            return self._owner._run(self.subscription.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def ack(self, events: Any) -> None:
        self._owner._run(self.subscription.ack(events))

    def nack(self, events: Any, action: NackAction = NackAction.RETRY, reason: str = "") -> None:
        self._owner._run(self.subscription.nack(events, action, reason))

    def close(self) -> None:
        self._owner._run(self.subscription.close())

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

