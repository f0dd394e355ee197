"""Stores.ExportStore and Stores.ImportEvents on a node: the portable transfer format.

Owns: `export_messages` (a store's consistent export view → ExportStoreResponse messages whose
`entries` are already framed as the file is: varint length, serialized TransferEntry; the
streams' lifecycle states follow the events) and `import_request` (an ImportEventsRequest —
records, stream states, snapshots, subscriptions — checked and converted at the edge, then
written as one batch). The format is docs/transfer.md's; the storage side is store/_transfer.py.
Must not import gater.gateway.

Event entries are framed by hand around the stored record bytes (an EventRecord is field 2 of
TransferEntry): an export never parses or builds an event message, which is what makes it
run at the speed of reading pages. An import parses each record once for the columns the
store indexes (stream, version, position, id, type, created time, tags) and checks them; the
record is stored as it came — byte for byte the source's — unless it is not in the form a
store writes (an id not in canonical spelling, tags unsorted, `created` and `created_epoch`
apart), which is then encoded again by the append path's own encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from exesdb.v1 import stores_pb2, types_pb2

from .._wire import varint
from ..errors import InvalidArgumentError, LimitExceededError
from ..store._lifecycle import HIDE_ALL, LIVE, MAX_CUSTOM_BYTES, TOMBSTONED
from ..store._query import check_tags
from ..store._records import created_tail, encode_record, now_epoch_us
from ..store._transfer import ExportView, ImportedEvent, StreamState
from ..store.base import EventStore, NewEvent, Snapshot
from ._convert import Edge, snapshot_message, timestamp

__all__ = ["FORMAT_VERSION", "MAX_IMPORT_RECORDS", "export_messages", "import_request"]

FORMAT_VERSION = 1
MAX_IMPORT_RECORDS = 10_000
"""Most records one ImportEvents call carries (README's limits table)."""
_PAGE = 2000
"""Events read per page of an export."""
_MESSAGE_BYTES = 1024 * 1024
"""An ExportStoreResponse is cut once its entries pass this (one event may make it bigger,
never past what a read of that event would send)."""
_EVENT_ENTRY = b"\x12"  # TransferEntry.event: field 2, length-delimited
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _framed(entry: types_pb2.EventRecord | stores_pb2.TransferEntry) -> bytes:
    raw = entry.SerializeToString()
    return varint(len(raw)) + raw


class _Chunks:
    """Framed entries gathered into ExportStoreResponse messages of about _MESSAGE_BYTES: a
    message is cut before an entry that would take it past that, so one holds at most one
    entry more than fits — no bigger than a read of that event or snapshot would send."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = self.events = 0
        self.last = -1

    def add(self, framed: tuple[bytes, ...], size: int, position: int | None = None) -> bytes | None:
        out = None
        if self.parts and self.size + size > _MESSAGE_BYTES:
            out = self.take()
        self.parts += framed
        self.size += size
        if position is not None:
            self.events += 1
            self.last = position
        return out

    def take(self) -> bytes:
        message = stores_pb2.ExportStoreResponse(entries=b"".join(self.parts), last_position=self.last, events=self.events)
        self.parts, self.size, self.events, self.last = [], 0, 0, -1
        return message.SerializeToString()


async def export_messages(
    store: EventStore, from_position: int, to_position: int | None, backend: str
) -> AsyncIterator[bytes]:
    """The ExportStore stream: a header, events from `from_position` to the head (or
    `to_position`, when before it), stream states, snapshots, subscriptions, the end entry."""
    async with store.export_view() as view:
        head = view.head if to_position is None else min(to_position, view.head)
        header = stores_pb2.TransferHeader(
            format_version=FORMAT_VERSION, store_id=store.store_id, head=head,
            exported_at=timestamp(now_epoch_us()), backend=backend,
        )  # fmt: skip
        yield stores_pb2.ExportStoreResponse(header=header, last_position=-1).SerializeToString()
        chunks = _Chunks()
        async with contextlib.aclosing(_pages(view, from_position, head)) as pages:
            async for page in pages:
                for at, record in page:
                    length = varint(len(record))
                    entry_len = 1 + len(length) + len(record)
                    framed = (varint(entry_len), _EVENT_ENTRY, length, record)
                    if (out := chunks.add(framed, entry_len + 5, at)) is not None:
                        yield out
        streams = await view.streams()
        snapshots = await view.snapshots()
        subscriptions = await view.subscriptions()
        entries = [stores_pb2.TransferEntry(stream=_stream_message(s)) for s in streams]
        entries += [stores_pb2.TransferEntry(snapshot=snapshot_message(s)) for s in snapshots]
        for name, definition, state in subscriptions:
            subscription = stores_pb2.TransferSubscription(
                name=name, definition_json=json.dumps(definition), state_json=json.dumps(state),
                checkpoint=int(state.get("checkpoint", -1)),
            )  # fmt: skip
            entries.append(stores_pb2.TransferEntry(subscription=subscription))
        events = await view.count(head)
        end = stores_pb2.TransferEnd(
            events=events, snapshots=len(snapshots), subscriptions=len(subscriptions), streams=len(streams)
        )
        entries.append(stores_pb2.TransferEntry(end=end))
        for entry in entries:
            framed = _framed(entry)
            if (out := chunks.add((framed,), len(framed))) is not None:
                yield out
        yield chunks.take()


async def _pages(view: ExportView, position: int, head: int) -> AsyncIterator[list[tuple[int, bytes]]]:
    """The view's pages from `position` to `head`, the next one read while the last is framed
    and sent (one read at a time: a view is one connection)."""

    def read(start: int) -> asyncio.Future[list[tuple[int, bytes]]] | None:
        return asyncio.ensure_future(view.records(start, min(_PAGE, head - start + 1))) if start <= head else None

    ahead = read(position)
    try:
        while ahead is not None:
            page = await ahead
            ahead = None
            if not page:
                return
            ahead = read(page[-1][0] + 1)
            yield page
    finally:
        if ahead is not None:  # the view is closed after this: no read may still run on it
            await asyncio.wait([ahead])
            if not ahead.cancelled():
                ahead.exception()  # read: the export has ended, this page is not wanted


class _Records:
    """Checks and converts the records of one ImportEventsRequest. Stream ids, event types and
    tag sets repeat from record to record: each distinct one is checked once. (An import runs this a
    million times: the common path reads each field once and checks in as few steps as it can;
    the rare one says which rule a record broke.)"""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.max_bytes = edge.limits.max_event_bytes
        self.streams: set[str] = set()
        self.types: set[str] = set()
        self.tags: dict[tuple[str, ...], tuple[str, ...]] = {}  # as given -> as checked

    def event(self, raw: bytes, i: int) -> ImportedEvent:
        try:
            r = _parse_record(raw)
        except DecodeError:
            raise InvalidArgumentError(f"records[{i}]", "is not a serialized exesdb.v1.EventRecord") from None
        position, version, created_epoch = r.position, r.version, r.created_epoch
        if (
            position < 0 or version < 0 or created_epoch <= 0 or len(raw) > self.max_bytes or r.retry_count
            or r.HasField("data_json") or r.HasField("metadata_json")
        ):  # fmt: skip
            raise self._refused(r, len(raw), i)
        event_id = r.event_id
        canonical = _CANONICAL_UUID.fullmatch(event_id) is not None  # stored ids are: parse only the others
        if not canonical:
            try:
                event_id = str(uuid.UUID(event_id))
            except ValueError:
                raise InvalidArgumentError(f"records[{i}].event_id", "must be a UUID") from None
        stream_id, event_type = r.stream_id, r.event_type
        if stream_id not in self.streams:
            self.streams.add(self.edge.stream_id(stream_id, f"records[{i}].stream_id"))
        if event_type not in self.types:
            self.types.add(self.edge.event_type(event_type, f"records[{i}].event_type"))
        tags: tuple[str, ...] = ()
        as_stored = canonical
        given = r.tags[:]  # a list: protobuf makes it in a third of the time of a tuple
        if given:
            key = tuple(given)
            if (tags := self.tags.get(key)) is None:
                tags = self.tags[key] = check_tags(key, f"records[{i}].tags")
            as_stored = as_stored and tags == key
        created = r.created
        if not as_stored or created.seconds * 1_000_000 + created.nanos // 1000 != created_epoch:
            # Not as a store writes it: stored in the form an append would have given it.
            event = NewEvent(event_id, event_type, r.data, r.metadata, r.content_type, r.metadata_content_type, tags)
            raw = encode_record(stream_id, version, position, event, created_tail(created_epoch))
        return _imported((position, stream_id, version, event_id, event_type, created_epoch, raw, tags))

    def _refused(self, r: types_pb2.EventRecord, size: int, i: int) -> Exception:
        """Which rule of a record as stored `r` breaks."""
        if r.retry_count or r.HasField("data_json") or r.HasField("metadata_json"):
            return InvalidArgumentError(f"records[{i}]", "must be a record as stored (bytes bodies, no retry_count)")
        if r.position < 0 or r.version < 0:
            return InvalidArgumentError(f"records[{i}].position", "position and version must be >= 0")
        if r.created_epoch <= 0:
            return InvalidArgumentError(f"records[{i}].created_epoch", "must be > 0")
        return LimitExceededError(
            f"records[{i}]", f"is {size:,} bytes, over the {self.max_bytes:,} bytes an event may have (max_event_bytes)",
            "max_event_bytes",
        )  # fmt: skip


_parse_record = types_pb2.EventRecord.FromString
_imported = ImportedEvent._make  # from a tuple: 0.4 µs, where the named tuple's __new__ takes 0.7

_CONVERT_SLICE = 500
"""Records converted between two turns of the event loop (see _convert_records)."""


async def _convert_records(records: Any, convert: Callable[[bytes, int], ImportedEvent]) -> list[ImportedEvent]:
    """Every record converted, a slice at a time with a turn of the event loop after each.
    Why: converting a 5,000-record batch takes the loop for 25-50 ms, while the batch before
    is being written (the import pipelines two); on PostgreSQL that write is a COPY that the
    loop feeds, and it stalled for as long (a 200,000-event import: 25.2k → 28.5k events/s)."""
    events: list[ImportedEvent] = []
    for start in range(0, len(records), _CONVERT_SLICE):
        end = min(start + _CONVERT_SLICE, len(records))
        events.extend([convert(records[i], i) for i in range(start, end)])
        if end < len(records):
            await asyncio.sleep(0)
    return events


async def import_request(
    store: EventStore, request: stores_pb2.ImportEventsRequest, edge: Edge
) -> stores_pb2.ImportEventsResponse:
    if len(request.records) > MAX_IMPORT_RECORDS:
        raise LimitExceededError(
            "records", f"{len(request.records)} records, more than {MAX_IMPORT_RECORDS} in one call", "max_import_records"
        )
    events = await _convert_records(request.records, _Records(edge).event)
    snapshots = [_snapshot(s, f"snapshots[{i}]", edge) for i, s in enumerate(request.snapshots)]
    subscriptions = [_subscription(s, f"subscriptions[{i}]") for i, s in enumerate(request.subscriptions)]
    streams = [_stream_state(s, f"streams[{i}]", edge) for i, s in enumerate(request.streams)]
    if events or snapshots or streams:
        last, written = await store.import_events(events, snapshots, streams, starts_file=request.starts_file)
    else:
        last, written = await store.last_position(), 0
    for name, definition, state in subscriptions:
        if not await store.save_subscription(name, definition, state):
            await store.save_subscription_state(name, state)  # its checkpoint moves forward only
    return stores_pb2.ImportEventsResponse(last_position=last, imported=written)


def _snapshot(message: types_pb2.SnapshotRecord, field: str, edge: Edge) -> Snapshot:
    s = edge.snapshot(message, field)
    if message.created_epoch <= 0:
        raise InvalidArgumentError(f"{field}.created_epoch", "must be > 0")
    return Snapshot(s.source_uuid, s.stream_uuid, s.source_version, s.source_type, s.data, s.metadata, message.created_epoch)


def _subscription(message: stores_pb2.TransferSubscription, field: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    if not message.name:
        raise InvalidArgumentError(f"{field}.name", "must not be empty")
    parsed = []
    for what in ("definition_json", "state_json"):
        try:
            value = json.loads(getattr(message, what))
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise InvalidArgumentError(f"{field}.{what}", "must be a JSON object")
        parsed.append(value)
    definition, state = parsed
    state["checkpoint"] = int(state.get("checkpoint", message.checkpoint))
    return message.name, definition, state


def _stream_message(state: StreamState) -> stores_pb2.TransferStream:
    message = stores_pb2.TransferStream(
        stream_id=state.stream_id, version=state.version, deleted=state.deleted, meta_version=state.meta_version,
        custom_json=state.custom,
    )  # fmt: skip
    for name in ("truncate_before", "max_count", "max_age_us"):
        if (value := getattr(state, name)) is not None:
            setattr(message, name, value)
    return message


def _stream_state(message: stores_pb2.TransferStream, field: str, edge: Edge) -> StreamState:
    """A stream state checked at the edge: it is written as given, so each value must be one a
    store could hold."""
    edge.stream_id(message.stream_id, f"{field}.stream_id")
    if message.version < -1:
        raise InvalidArgumentError(f"{field}.version", "must be >= -1 (-1: no events)")
    if not LIVE <= message.deleted <= TOMBSTONED:
        raise InvalidArgumentError(f"{field}.deleted", "must be 0 (live), 1 (soft-deleted) or 2 (tombstoned)")
    if message.deleted != LIVE and message.version < 0:
        raise InvalidArgumentError(f"{field}.deleted", "a stream without events cannot be deleted")
    if message.meta_version < -1:
        raise InvalidArgumentError(f"{field}.meta_version", "must be >= -1 (-1: no metadata)")
    rules = {}
    for name in ("truncate_before", "max_count", "max_age_us"):
        value = getattr(message, name) if message.HasField(name) else None
        if value is not None and (value < (0 if name == "truncate_before" else 1) or value > HIDE_ALL):
            raise InvalidArgumentError(f"{field}.{name}", "is out of range")
        rules[name] = value
    custom = message.custom_json or "{}"
    try:
        parsed = json.loads(custom)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or len(custom.encode()) > MAX_CUSTOM_BYTES:
        raise InvalidArgumentError(f"{field}.custom_json", f"must be a JSON object of at most {MAX_CUSTOM_BYTES} bytes")
    if message.meta_version < 0 and (message.deleted != LIVE or any(v is not None for v in rules.values())):
        raise InvalidArgumentError(f"{field}.meta_version", "a deleted stream or one with rules has metadata (>= 0)")
    return StreamState(
        message.stream_id, message.version, message.deleted, message.meta_version, rules["truncate_before"],
        rules["max_count"], rules["max_age_us"], custom,
    )
