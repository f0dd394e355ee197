"""Conversions between the client's values and exesdb.v1 messages, and statuses → gater.errors.

Owns: encoding events and bodies for the wire (`new_event_message`), decoding records
(`event`, `snapshot`, `subscription_info`, `member`), subscription selections and starts, and
`error_from_status`, which picks the gater.errors class with `errors.decode_status` from the
status code and typed details only, never from the message's text.
Must not import anything from gater but gater.errors and gater.ids; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from exesdb.v1 import cluster_pb2, stores_pb2, streams_pb2, subscriptions_pb2, types_pb2

from ..errors import STATUS_DETAILS_KEY, GaterError, InvalidArgumentError, decode_status
from ..ids import uuid7
from ._values import (
    ALL,
    BEGINNING,
    EXPECTED_STATES,
    JSON,
    NOW,
    OCTETS,
    AppendCondition,
    Event,
    Member,
    NewEvent,
    Query,
    ScavengeStatus,
    Snapshot,
    StreamMetadata,
    SubscriptionInfo,
    SubscriptionType,
)

__all__ = [
    "as_new_event",
    "condition_message",
    "encode",
    "error_from_status",
    "event",
    "member",
    "new_event_message",
    "query_message",
    "positions",
    "selection",
    "snapshot",
    "start_from",
    "scavenge_status",
    "set_expected",
    "stream_metadata",
    "stream_metadata_message",
    "struct_dict",
    "subscription_info",
    "when",
]

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


def encode(value: Any, content_type: str | None, field_name: str) -> tuple[bytes, str]:
    if isinstance(value, bytes | bytearray):
        return bytes(value), content_type or OCTETS
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


def as_new_event(item: Any, index: int) -> NewEvent:
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


def new_event_message(event: NewEvent, index: int) -> types_pb2.NewEvent:
    data, content_type = encode(event.data, event.content_type, f"events[{index}].data")
    message = types_pb2.NewEvent(
        event_id=event.event_id or str(uuid7()),
        event_type=event.event_type,
        data=data,
        content_type=content_type,
        tags=event.tags,
    )
    if event.metadata is not None:
        meta, meta_type = encode(event.metadata, event.metadata_content_type, f"events[{index}].metadata")
        message.metadata = meta
        message.metadata_content_type = meta_type
    return message


def struct_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values, whole numbers as ints (a Struct holds every number as a
    double: 2.0 reads back as 2, as it was written)."""

    def plain(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(json_format.MessageToDict(struct))


def set_expected(request: Any, expected: int | str, int_field: str) -> None:
    """Sets a request's `expected` oneof from ANY / NO_STREAM / STREAM_EXISTS or an int."""
    if isinstance(expected, int) and not isinstance(expected, bool):
        setattr(request, int_field, expected)
    elif expected in EXPECTED_STATES:
        request.expected_state = EXPECTED_STATES[expected]
    else:
        raise InvalidArgumentError(int_field, f'must be "any", "no_stream", "stream_exists" or an int, not {expected!r}')


def stream_metadata_message(metadata: StreamMetadata) -> streams_pb2.StreamMetadata:
    message = streams_pb2.StreamMetadata()
    for name in ("max_count", "max_age_s", "truncate_before"):
        if getattr(metadata, name) is not None:
            setattr(message, name, getattr(metadata, name))
    message.custom.update(dict(metadata.custom))
    return message


def stream_metadata(r: streams_pb2.GetStreamMetadataResponse) -> StreamMetadata:
    m = r.metadata
    return StreamMetadata(
        max_count=m.max_count if m.HasField("max_count") else None,
        max_age_s=m.max_age_s if m.HasField("max_age_s") else None,
        truncate_before=m.truncate_before if m.HasField("truncate_before") else None,
        custom=struct_dict(m.custom),
        meta_version=r.meta_version,
        state=streams_pb2.StreamState.Name(r.state).removeprefix("STREAM_STATE_").lower(),
    )


def scavenge_status(r: stores_pb2.ScavengeResponse) -> ScavengeStatus:
    return ScavengeStatus(r.running, r.next_position, r.removed, when(r.started_at))


def when(ts: Any) -> _dt.datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=_dt.UTC)


def _struct_or_raw(struct: struct_pb2.Struct, has_struct: bool, raw: bytes, content_type: str) -> Any:
    if has_struct:
        return json_format.MessageToDict(struct)
    return _decode(raw, content_type)


def event(record: types_pb2.EventRecord) -> Event:
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
        tags=tuple(record.tags),
    )


def query_message(query: Query) -> types_pb2.Query:
    return types_pb2.Query(items=[types_pb2.QueryItem(types=i.types, tags=i.tags) for i in query.items])


def condition_message(condition: AppendCondition) -> types_pb2.AppendCondition:
    message = types_pb2.AppendCondition(fail_if_events_match=query_message(condition.query))
    if condition.after is not None:
        message.after = condition.after
    return message


def snapshot(s: types_pb2.SnapshotRecord) -> Snapshot:
    return Snapshot(
        source_uuid=s.source_uuid,
        stream_uuid=s.stream_uuid,
        source_version=s.source_version,
        source_type=s.source_type,
        data=_struct_or_raw(s.data_json, s.HasField("data_json"), s.data, JSON),
        metadata=_struct_or_raw(s.metadata_json, s.HasField("metadata_json"), s.metadata, JSON),
        created_at=when(s.created_at),
        created_epoch=s.created_epoch,
    )


def subscription_info(s: subscriptions_pb2.SubscriptionInfo, created: bool | None = None) -> SubscriptionInfo:
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


def member(m: cluster_pb2.Member) -> Member:
    return Member(m.node_id, m.address, m.cluster_id, m.healthy, m.in_flight, m.failures)


def start_from(start: str | int, field_name: str = "start_from") -> subscriptions_pb2.StartFrom:
    if start == BEGINNING:
        return subscriptions_pb2.StartFrom(origin=subscriptions_pb2.StartFrom.ORIGIN_BEGINNING)
    if start == NOW:
        return subscriptions_pb2.StartFrom(origin=subscriptions_pb2.StartFrom.ORIGIN_NOW)
    if isinstance(start, int) and not isinstance(start, bool):
        return subscriptions_pb2.StartFrom(revision=start)
    raise InvalidArgumentError(field_name, f'must be "beginning", "now" or an int, not {start!r}')


def selection(
    stream: str | None, event_type: str | None, pattern: Mapping[str, Any] | None, payload: Mapping[str, Any] | None,
    query: Query | None = None,
) -> tuple[SubscriptionType, str, struct_pb2.Struct | None]:
    """(type, selector, pattern) from the one keyword a caller gave."""
    given = [k for k, v in (("stream", stream), ("event_type", event_type), ("pattern", pattern), ("payload", payload),
                            ("query", query)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise InvalidArgumentError(given[1], f"give one of stream, event_type, pattern, payload, query (got {', '.join(given)})")
    if query is not None:
        items = [{"types": list(i.types), "tags": list(i.tags)} for i in query.items]
        return SubscriptionType.BY_QUERY, "", json_format.ParseDict({"items": items}, struct_pb2.Struct())
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


def error_from_status(error: grpc.aio.AioRpcError) -> GaterError:
    """The gater.errors exception for a failed call, chosen by `errors.decode_status` from the
    status code and its typed details (never from the message's text)."""
    details = dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    return decode_status(error.code().name, error.details() or error.code().name, details)



def positions(events: Event | Iterable[Event | int]) -> list[int]:
    """Global positions of events (or of positions given as ints)."""
    items = [events] if isinstance(events, Event) else list(events)
    return [e.position if isinstance(e, Event) else int(e) for e in items]
