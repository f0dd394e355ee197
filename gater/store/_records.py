"""Encoding of stored events into the exesdb.v1 EventRecord wire format, shared by backends.

Owns: `encode_record` (done once per event, inside the append transaction, when the
version, position and commit time are known) and `now_epoch_us`.
Must not import grpc or anything above gater.store.

A record is framed by hand, field by field (tag, length, bytes), rather than built as a
protobuf message and serialized: it runs once per event in the writer, which also holds the
GIL the event loop needs, and framing costs a fraction of building a message. Protobuf lets
a message's fields come in any order and omits empty strings, so a hand-framed record decodes
exactly as the serialized message would (tests/store/test_records.py checks it against
protobuf's own encoder). The parts that repeat — the stream id, event type and content types
(cached), and the commit time, the same for a whole batch (framed once) — cost almost nothing.
"""

from __future__ import annotations

import functools
import time

from .._wire import varint as _any_varint
from .base import NewEvent

__all__ = ["created_tail", "encode_record", "now_epoch_us"]

# Tags (field number << 3 | wire type) of exesdb.v1.EventRecord's fields.
_STREAM_ID, _VERSION, _POSITION, _EVENT_ID = 0x0A, b"\x10", b"\x18", b"\x22"
_EVENT_TYPE, _DATA, _METADATA = 0x2A, b"\x32", b"\x3A"
_CONTENT_TYPE, _METADATA_CONTENT_TYPE = 0x42, 0x4A
_CREATED, _CREATED_EPOCH = b"\x52", b"\x58"
_TAGS = 0x7A  # field 15, repeated string


def _varint(n: int) -> bytes:
    """_wire.varint, without its loop for the numbers records carry most (below 2**28)."""
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    if n < 0x10000000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, ((n >> 14) & 0x7F) | 0x80, n >> 21))
    return _any_varint(n)


def now_epoch_us() -> int:
    """The current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def created_tail(created_epoch_us: int) -> bytes:
    """Fields 10 (created, a Timestamp) and 11 (created_epoch) of an EventRecord, framed."""
    seconds, micros = divmod(created_epoch_us, 1_000_000)
    stamp = b"\x08" + _varint(seconds) + (b"\x10" + _varint(micros * 1000) if micros else b"")
    return _CREATED + _varint(len(stamp)) + stamp + _CREATED_EPOCH + _varint(created_epoch_us)


@functools.lru_cache(maxsize=4096)
def _text(tag: int, value: str) -> bytes:
    """A string field, framed (nothing when empty, as protobuf omits it). Cached: stream ids,
    event types and content types repeat from event to event."""
    if not value:
        return b""
    raw = value.encode()
    return bytes((tag,)) + _varint(len(raw)) + raw


def encode_record(stream_id: str, version: int, position: int, event: NewEvent, tail: bytes) -> bytes:
    """The serialized EventRecord for one event; `tail` is created_tail(commit time)."""
    event_id = event.event_id.encode()
    parts = [
        _text(_STREAM_ID, stream_id),
        _VERSION, _varint(version),
        _POSITION, _varint(position),
        _EVENT_ID, _varint(len(event_id)), event_id,
        _text(_EVENT_TYPE, event.event_type),
    ]  # fmt: skip
    if event.data:
        parts += (_DATA, _varint(len(event.data)), event.data)
    if event.metadata:
        parts += (_METADATA, _varint(len(event.metadata)), event.metadata)
    parts += (
        _text(_CONTENT_TYPE, event.content_type),
        _text(_METADATA_CONTENT_TYPE, event.metadata_content_type),
        tail,
    )
    if event.tags:
        parts += [_text(_TAGS, tag) for tag in event.tags]
    return b"".join(parts)

