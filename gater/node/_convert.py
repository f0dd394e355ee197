"""Validation and conversion at the edge: exesdb.v1 requests → domain values, domain → replies.

Owns: every rule about what a request may contain (names, sizes, enums, UUIDs), each failure
an InvalidArgumentError (or LimitExceededError) that names the field.
Must not import grpc's runtime or gater.gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import urllib.parse
import uuid
from pathlib import PurePath
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from exesdb.v1 import snapshots_pb2, streams_pb2, types_pb2

from .._wire import varint
from ..config import Limits
from ..errors import InvalidArgumentError, LimitExceededError
from ..ids import uuid7
from ..security import AUDIT_STORE
from ..store._query import check_prefix, check_tags
from ..store.base import (
    ALL_STREAM,
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    NewEvent,
    Snapshot,
)

__all__ = [
    "JSON",
    "Edge",
    "json_bytes",
    "page_token",
    "public_location",
    "record_as_json",
    "record_room",
    "snapshot_message",
    "struct_from_json_bytes",
    "timestamp",
]

JSON = "application/json"
_STORE_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_EXPECTED_STATES = {
    types_pb2.EXPECTED_STATE_ANY: EXPECT_ANY,
    types_pb2.EXPECTED_STATE_NO_STREAM: EXPECT_NO_STREAM,
    types_pb2.EXPECTED_STATE_STREAM_EXISTS: EXPECT_STREAM_EXISTS,
}
_DIRECTIONS = frozenset(streams_pb2.ReadDirection.values())


# -- JSON bodies -----------------------------------------------------------------------------

_DEFAULTS = Limits()
ENVELOPE_BYTES = 32
"""Room a response message needs around one record: ReadEventsResponse's or SubscribeResponse's
and EventBatch's tags and lengths, and a retry_count appended to the record."""


def record_room(limits: Limits) -> int:
    """The most one record may weigh so that it fits a response message alone."""
    return limits.max_response_bytes - ENVELOPE_BYTES


def _too_deep(field: str, max_depth: int) -> InvalidArgumentError:
    return InvalidArgumentError(field, f"nests objects and arrays deeper than {max_depth} levels (max_json_depth)")


def _python(struct: struct_pb2.Struct, field: str, max_depth: int) -> dict[str, Any]:
    """A Struct as plain Python, checked: at most `max_depth` levels of objects and arrays and
    only finite numbers. Numbers arrive as floats: 21.0 goes back to 21 so JSON reads as it was
    written."""

    def value(v: struct_pb2.Value, depth: int) -> Any:
        kind = v.WhichOneof("kind")
        if kind == "string_value":
            return v.string_value
        if kind == "number_value":
            n = v.number_value
            if not math.isfinite(n):
                raise InvalidArgumentError(field, "holds NaN or Infinity, which JSON has no value for")
            return int(n) if n.is_integer() and abs(n) < 2**53 else n
        if kind == "bool_value":
            return v.bool_value
        if kind == "struct_value":
            return obj(v.struct_value, depth + 1)
        if kind == "list_value":
            if depth + 1 > max_depth:
                raise _too_deep(field, max_depth)
            return [value(item, depth + 1) for item in v.list_value.values]
        return None

    def obj(s: struct_pb2.Struct, depth: int) -> dict[str, Any]:
        if depth > max_depth:
            raise _too_deep(field, max_depth)
        return {k: value(v, depth) for k, v in s.fields.items()}

    return obj(struct, 1)


def json_bytes(struct: struct_pb2.Struct, field: str, max_depth: int) -> bytes:
    """Compact JSON bytes for a Struct from a request; InvalidArgumentError naming `field` when
    it nests deeper than `max_depth` or holds NaN or Infinity."""
    # A Struct is a map: its key order is lost on the wire, so keys are sorted for stable bytes.
    return json.dumps(
        _python(struct, field, max_depth), separators=(",", ":"), ensure_ascii=False, sort_keys=True, allow_nan=False
    ).encode()


_DOUBLE_MAX = 2**1024  # ints at or past it have no double: Struct cannot hold them


def _field_bytes(size: int) -> int:
    return 1 + len(varint(size)) + size


def _struct_bytes(value: dict[str, Any], max_depth: int, depth: int = 1) -> int | None:
    """The serialized size of the Struct for a parsed JSON object, computed without building
    it (building one is slow); None when it cannot be converted safely: deeper than
    `max_depth`, NaN or Infinity, or a number past a double."""
    if depth > max_depth:
        return None
    total = 0
    for key, item in value.items():
        size = _value_bytes(item, max_depth, depth)
        if size is None:
            return None
        total += _field_bytes(_field_bytes(len(key.encode(errors="surrogatepass"))) + _field_bytes(size))
    return total


def _value_bytes(value: Any, max_depth: int, depth: int) -> int | None:
    """The serialized size of a google.protobuf.Value holding `value` (see _struct_bytes)."""
    kind = type(value)  # json.loads makes exactly these types; numbers first, the most common
    if kind is float:
        return 9 if math.isfinite(value) else None
    if kind is int:
        return 9 if -_DOUBLE_MAX < value < _DOUBLE_MAX else None
    if kind is str:
        return _field_bytes(len(value.encode(errors="surrogatepass")))
    if kind is bool or value is None:
        return 2
    if kind is dict:
        inner = _struct_bytes(value, max_depth, depth + 1)
    elif kind is list:
        if depth + 1 > max_depth:
            return None
        inner = 0
        for item in value:
            size = _value_bytes(item, max_depth, depth + 1)
            if size is None:
                return None
            inner += _field_bytes(size)
    else:
        return None
    return None if inner is None else _field_bytes(inner)


def struct_from_json_bytes(
    data: bytes, max_depth: int = _DEFAULTS.max_json_depth, max_bytes: int | None = None
) -> struct_pb2.Struct | None:
    """The Struct for a stored JSON object body; None when the bytes are not a JSON object that
    converts safely (deeper than `max_depth`, NaN or Infinity, numbers past a double) or when
    its Struct would be over `max_bytes`: such a body goes out as bytes, never as an error."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(value, dict):
        return None
    size = _struct_bytes(value, max_depth)
    if size is None or (max_bytes is not None and size > max_bytes):
        return None
    struct = struct_pb2.Struct()
    try:
        struct.update(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return struct


def page_token(value: Any) -> str:
    """The page token for a listing's last key (JSON in URL-safe base64); Edge reads it back."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def public_location(backend: str, location: str) -> str:
    """Where a store lives, as any caller may see it: no server-side path (until callers are
    authenticated). SQLite: the file relative to the node's data directory; PostgreSQL: the
    database's name."""
    if backend == "sqlite":
        return f"stores/{PurePath(location).name}"
    parts = urllib.parse.urlsplit(location)
    return parts.path.lstrip("/") if parts.scheme.startswith("postgres") else ""


def traced_metadata(metadata: bytes, content_type: str, traceparent: str) -> bytes:
    """`metadata` with {"traceparent": traceparent} added: to a JSON object that lacks the
    key, or as the whole metadata when there is none; anything else unchanged."""
    if not metadata:
        return json.dumps({"traceparent": traceparent}, separators=(",", ":")).encode()
    if content_type != JSON:
        return metadata
    try:
        value = json.loads(metadata)
    except (ValueError, RecursionError):
        return metadata
    if not isinstance(value, dict) or "traceparent" in value:
        return metadata
    value["traceparent"] = traceparent
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def timestamp(epoch_us: int) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(epoch_us, 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def record_as_json(
    encoded: bytes, max_depth: int = _DEFAULTS.max_json_depth, max_bytes: int = record_room(_DEFAULTS)
) -> bytes:
    """An EventRecord with JSON object bodies moved into data_json/metadata_json. A body that
    does not convert safely stays bytes, and so does the whole record when its JSON form
    would weigh more than `max_bytes` (a Struct can be several times its JSON)."""
    record = types_pb2.EventRecord.FromString(encoded)
    room = max_bytes - len(encoded)  # what the converted bodies may add
    converted = False
    for raw_field, json_field, content_type in (
        ("data", "data_json", record.content_type),
        ("metadata", "metadata_json", record.metadata_content_type),
    ):
        raw = getattr(record, raw_field)
        if content_type != JSON or not raw:
            continue
        struct = struct_from_json_bytes(raw, max_depth, room + len(raw))
        if struct is not None:
            getattr(record, json_field).CopyFrom(struct)
            setattr(record, raw_field, b"")
            room -= struct.ByteSize() - len(raw)
            converted = True
    if not converted:
        return encoded
    out = record.SerializeToString()
    return out if len(out) <= max_bytes else encoded


def snapshot_message(snapshot: Snapshot, *, as_json: bool = False, limits: Limits = _DEFAULTS) -> types_pb2.SnapshotRecord:
    message = types_pb2.SnapshotRecord(
        source_uuid=snapshot.source_uuid,
        stream_uuid=snapshot.stream_uuid,
        source_version=snapshot.source_version,
        source_type=snapshot.source_type,
        data=snapshot.data,
        metadata=snapshot.metadata,
        created_at=timestamp(snapshot.created_epoch),
        created_epoch=snapshot.created_epoch,
    )
    if as_json:
        plain = types_pb2.SnapshotRecord()
        plain.CopyFrom(message)
        for raw, field in ((snapshot.data, "data"), (snapshot.metadata, "metadata")):
            struct = struct_from_json_bytes(raw, limits.max_json_depth, record_room(limits)) if raw else None
            if struct is not None:
                getattr(message, f"{field}_json").CopyFrom(struct)
                setattr(message, field, b"")
        if message.ByteSize() > record_room(limits):
            return plain  # the JSON form would not fit a response: bytes, as stored
    return message


_NOT_OUR_TOKEN = "is not a token this server gave out"
_RECORD_FRAMING_BYTES = 48
"""An EventRecord's version, position and commit time, framed: at most 11 + 11 + 15 + 11."""
_SNAPSHOT_FRAMING_BYTES = 48
"""A SnapshotRecord's version and creation time, framed."""


def _framed(size: int) -> int:
    """Bytes of a length-delimited protobuf field of `size` bytes (none when empty)."""
    return 1 + len(varint(size)) + size if size else 0


def _stored_bytes(event: NewEvent) -> int:
    """An upper bound of the event's EventRecord as the store encodes it, without stream id."""
    texts = (event.event_id, event.event_type, event.content_type, event.metadata_content_type)
    return (
        _RECORD_FRAMING_BYTES
        + sum(_framed(len(t.encode())) for t in texts)
        + _framed(len(event.data))
        + _framed(len(event.metadata))
        + sum(_framed(len(t)) for t in event.tags)
    )


def _untoken(token: str, field: str) -> Any:
    try:
        return json.loads(base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, RecursionError):  # UnicodeErrors are ValueErrors
        raise InvalidArgumentError(field, _NOT_OUR_TOKEN) from None


class Edge:
    """The request rules, with the node's limits and default store."""

    def __init__(self, limits: Limits, default_store: str) -> None:
        self.limits = limits
        self.default_store = default_store

    # -- names -------------------------------------------------------------------------------

    def store(self, value: str, field: str = "store") -> str:
        """A store to use: "" is the default store; the reserved audit store is usable (what
        the caller may do there is admission's question) but never created or removed."""
        if not value:
            return self.default_store
        if value == AUDIT_STORE:
            return value
        return self.store_id(value, field)

    def store_id(self, value: str, field: str = "store_id") -> str:
        if not value:
            raise InvalidArgumentError(field, "must not be empty")
        if len(value) > self.limits.max_store_id_chars or not _STORE_ID.match(value):
            raise InvalidArgumentError(
                field,
                f"must be 1..{self.limits.max_store_id_chars} characters of [a-z0-9_-] "
                f"starting with a letter or digit, got {value[:80]!r}",
            )
        return value

    def _name(self, value: str, field: str, max_bytes: int) -> str:
        if not value:
            raise InvalidArgumentError(field, "must not be empty")
        size = len(value.encode())
        if size > max_bytes:
            raise InvalidArgumentError(field, f"must be at most {max_bytes} bytes of UTF-8, got {size}")
        if _CONTROL.search(value):
            raise InvalidArgumentError(field, "must not contain control characters")
        return value

    def stream_id(self, value: str, field: str = "stream_id") -> str:
        """A stream to write to: names starting with "$" are reserved."""
        self._name(value, field, self.limits.max_stream_id_bytes)
        if value.startswith("$"):
            hint = ' ("$all" can be read, not written)' if value == ALL_STREAM else ""
            raise InvalidArgumentError(field, f"names starting with '$' are reserved{hint}")
        return value

    def read_stream_id(self, value: str, field: str = "stream_id") -> str:
        """A stream to read or ask the version of: "$all", a stream id, or the seed's
        spelling of one, "$<stream id>" (as subscriptions take it). Writes take no "$"."""
        if value == ALL_STREAM:
            return value
        return self.stream_id(value[1:] if value.startswith("$") else value, field)

    def stream_prefix(self, value: str, field: str = "stream_prefix") -> str:
        """A prefix of stream ids to read or subscribe by ("order-"; "order-*" and the seed's
        "$order-*" say the same): `_query.check_prefix`, then a stream id's length and
        character rules."""
        return self._name(check_prefix(value, field), field, self.limits.max_stream_id_bytes)

    def streams_page_token(self, token: str, field: str = "page_token") -> str:
        """The stream id a ListStreams token carries; "" for no token."""
        if not token:
            return ""
        after = _untoken(token, field)
        if not (isinstance(after, str) and self._is_name(after, self.limits.max_stream_id_bytes)):
            raise InvalidArgumentError(field, _NOT_OUR_TOKEN)
        return after

    def snapshots_page_token(self, token: str, field: str = "page_token") -> tuple[str, str, int] | None:
        """The (source, stream, version) key a ListSnapshots token carries; None for none."""
        if not token:
            return None
        key = _untoken(token, field)
        if not (isinstance(key, list) and len(key) == 3):
            raise InvalidArgumentError(field, _NOT_OUR_TOKEN)
        source_uuid, stream_uuid, version = key
        size = self.limits.max_stream_id_bytes
        if not (
            isinstance(source_uuid, str) and self._is_name(source_uuid, size)
            and isinstance(stream_uuid, str) and self._is_name(stream_uuid, size)
            and type(version) is int and 0 <= version < 2**63
        ):  # fmt: skip
            raise InvalidArgumentError(field, _NOT_OUR_TOKEN)
        return source_uuid, stream_uuid, version

    @staticmethod
    def _is_name(value: str, max_bytes: int) -> bool:
        try:
            size = len(value.encode())
        except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
            return False
        return 0 < size <= max_bytes and not _CONTROL.search(value)

    def event_type(self, value: str, field: str) -> str:
        return self._name(value, field, self.limits.max_name_bytes)

    def content_type(self, value: str, field: str) -> str:
        if not value:
            return JSON
        return self._name(value, field, self.limits.max_content_type_bytes)

    @staticmethod
    def uuid(value: str, field: str) -> str:
        if _CANONICAL_UUID.match(value):
            return value
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise InvalidArgumentError(field, f"must be a UUID, got {value[:80]!r}") from None

    @staticmethod
    def non_negative(value: int, field: str) -> int:
        if value < 0:
            raise InvalidArgumentError(field, f"must be >= 0, got {value}")
        return value

    def page_size(self, value: int, field: str = "page_size") -> int:
        if value == 0:
            return 100
        if value < 0 or value > self.limits.max_page_size:
            raise InvalidArgumentError(field, f"must be 1..{self.limits.max_page_size} (0 means 100), got {value}")
        return value

    @staticmethod
    def enum(value: int, allowed: frozenset[int], field: str) -> int:
        if value not in allowed:
            raise InvalidArgumentError(field, f"unknown value {value}")
        return value

    # -- requests ----------------------------------------------------------------------------

    def expected(self, request: streams_pb2.AppendEventsRequest) -> int:
        which = request.WhichOneof("expected")
        if which is None:
            return EXPECT_ANY
        if which == "expected_state":
            state = _EXPECTED_STATES.get(request.expected_state)
            if state is None:
                raise InvalidArgumentError("expected_state", f"unknown value {request.expected_state}")
            return state
        if request.expected_version < -1:
            raise InvalidArgumentError(
                "expected_version", f"must be >= -1 (-1 means no stream), got {request.expected_version}"
            )
        return request.expected_version

    def new_events(self, events: Any, stream_id: str, traceparent: str | None = None) -> list[NewEvent]:
        """The events of an AppendEvents request, validated. With `traceparent` (the node's
        trace_metadata option), each event's JSON object metadata gets it under the key
        "traceparent" — a consumer hands the metadata to an OpenTelemetry propagator to go
        on with the trace — and events without metadata get {"traceparent": ...}. Metadata
        that is not a JSON object, or already has that key, is left as it is."""
        count = len(events)
        if count == 0:
            raise InvalidArgumentError("events", "at least one event is needed")
        if count > self.limits.max_events_per_append:
            raise LimitExceededError(
                "events",
                f"at most {self.limits.max_events_per_append} events per append, got {count} (max_events_per_append)",
                limit="max_events_per_append",
            )
        out = []
        seen: dict[str, int] = {}
        depth = self.limits.max_json_depth
        stream_bytes = _framed(len(stream_id.encode()))
        # What data and metadata may weigh together before the rest of the record (names,
        # ids, content types and framing, each bounded) could take it over the limit: below
        # that, an event fits without counting.
        limits = self.limits
        room = (
            limits.max_event_bytes
            - _RECORD_FRAMING_BYTES
            - stream_bytes
            - sum(_framed(n) for n in (36, limits.max_name_bytes, limits.max_content_type_bytes, limits.max_content_type_bytes))
            - 2 * 6  # the framing of data and metadata: a tag and a length of up to 5 bytes each
        )
        for i, e in enumerate(events):
            where = f"events[{i}]"
            # Ids the server assigns sort by time: they go to the end of the id index.
            event_id = self.uuid(e.event_id, f"{where}.event_id") if e.event_id else str(uuid7())
            if seen.setdefault(event_id, i) != i:
                raise InvalidArgumentError(f"{where}.event_id", f"repeats events[{seen[event_id]}].event_id")
            data = json_bytes(e.data_json, f"{where}.data_json", depth) if e.WhichOneof("body") == "data_json" else e.data
            if e.WhichOneof("meta") == "metadata_json":
                metadata = json_bytes(e.metadata_json, f"{where}.metadata_json", depth)
            else:
                metadata = e.metadata
            metadata_content_type = ""
            if metadata or traceparent is not None:
                metadata_content_type = self.content_type(e.metadata_content_type, f"{where}.metadata_content_type")
            if traceparent is not None:
                metadata = traced_metadata(metadata, metadata_content_type, traceparent)
            tags = check_tags(e.tags, f"{where}.tags") if e.tags else ()
            event = NewEvent(
                event_id=event_id,
                event_type=self.event_type(e.event_type, f"{where}.event_type"),
                data=data,
                metadata=metadata,
                content_type=self.content_type(e.content_type, f"{where}.content_type"),
                # No metadata, no content type for it.
                metadata_content_type=metadata_content_type if metadata else "",
                tags=tags,
            )
            tag_bytes = sum(_framed(len(t)) for t in tags)
            if len(data) + len(metadata) + tag_bytes > room:  # else it fits, whatever its names: no need to count
                self._fits(where, stream_bytes + _stored_bytes(event))
            out.append(event)
        return out

    def _fits(self, field: str, size: int) -> None:
        """An event or snapshot of `size` bytes as stored must fit a response message alone."""
        if size > self.limits.max_event_bytes:
            raise LimitExceededError(
                field,
                f"is {size:,} bytes as stored, over the {self.limits.max_event_bytes:,} bytes an event or "
                "snapshot may have (max_event_bytes)",
                limit="max_event_bytes",
            )

    def read(self, request: streams_pb2.ReadEventsRequest) -> tuple[str, str, int | None, int, bool]:
        """(store, stream_id, start, count, backward) of a ReadEventsRequest."""
        store = self.store(request.store)
        stream_id = self.read_stream_id(request.stream_id)
        start = self.non_negative(request.from_version, "from_version") if request.HasField("from_version") else None
        count = self.non_negative(request.count, "count")
        direction = self.enum(request.direction, _DIRECTIONS, "direction")
        return store, stream_id, start, count, direction == streams_pb2.READ_DIRECTION_BACKWARD

    def snapshot(self, message: types_pb2.SnapshotRecord, field: str = "snapshot") -> Snapshot:
        source_uuid = self._name(message.source_uuid, f"{field}.source_uuid", self.limits.max_stream_id_bytes)
        stream_uuid = self._name(message.stream_uuid, f"{field}.stream_uuid", self.limits.max_stream_id_bytes)
        version = self.non_negative(message.source_version, f"{field}.source_version")
        if message.source_type:
            self._name(message.source_type, f"{field}.source_type", self.limits.max_name_bytes)
        depth = self.limits.max_json_depth
        data = json_bytes(message.data_json, f"{field}.data_json", depth) if message.HasField("data_json") else message.data
        if message.HasField("metadata_json"):
            metadata = json_bytes(message.metadata_json, f"{field}.metadata_json", depth)
        else:
            metadata = message.metadata
        snapshot = Snapshot(source_uuid, stream_uuid, version, message.source_type, data, metadata)
        self._fits(field, _SNAPSHOT_FRAMING_BYTES + sum(_framed(len(v)) for v in (
            source_uuid.encode(), stream_uuid.encode(), message.source_type.encode(), data, metadata
        )))  # fmt: skip
        return snapshot

    def snapshot_key(
        self, request: snapshots_pb2.ReadSnapshotRequest | snapshots_pb2.DeleteSnapshotRequest
    ) -> tuple[str, str, int | None]:
        source_uuid = self._name(request.source_uuid, "source_uuid", self.limits.max_stream_id_bytes)
        stream_uuid = self._name(request.stream_uuid, "stream_uuid", self.limits.max_stream_id_bytes)
        version = self.non_negative(request.version, "version") if request.HasField("version") else None
        return source_uuid, stream_uuid, version

    def optional_name(self, value: str, field: str) -> str | None:
        return self._name(value, field, self.limits.max_stream_id_bytes) if value else None
