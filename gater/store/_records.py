"""Encoding of stored events into the exesdb.v1 EventRecord wire format, shared by backends.

Owns: `encode_record` (done once per event, inside the append transaction, when the
version, position and commit time are known) and `now_epoch_us`.
Must not import grpc or anything above gater.store.

Protobuf lets a message's fields come in any order, so a record is built from a part that
protobuf serializes (what the event brought) and a tail framed by hand (version, position
and the commit time, which is the same for every event of an append and framed once).
"""

from __future__ import annotations

import time

from exesdb.v1 import types_pb2

from .._wire import varint as _varint
from .base import NewEvent

__all__ = ["created_tail", "encode_record", "now_epoch_us"]

_EventRecord = types_pb2.EventRecord


def now_epoch_us() -> int:
    """The current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def created_tail(created_epoch_us: int) -> bytes:
    """Fields 10 (created, a Timestamp) and 11 (created_epoch) of an EventRecord, framed."""
    seconds, micros = divmod(created_epoch_us, 1_000_000)
    stamp = b"\x08" + _varint(seconds) + (b"\x10" + _varint(micros * 1000) if micros else b"")
    return b"\x52" + _varint(len(stamp)) + stamp + b"\x58" + _varint(created_epoch_us)


def encode_record(stream_id: str, version: int, position: int, event: NewEvent, tail: bytes) -> bytes:
    """The serialized EventRecord for one event; `tail` is created_tail(commit time)."""
    head = _EventRecord(
        stream_id=stream_id,
        event_id=event.event_id,
        event_type=event.event_type,
        data=event.data,
        metadata=event.metadata,
        content_type=event.content_type,
        metadata_content_type=event.metadata_content_type,
    ).SerializeToString()
    return b"".join((head, b"\x10", _varint(version), b"\x18", _varint(position), tail))
