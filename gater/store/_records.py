"""Encoding of stored events into the exesdb.v1 EventRecord wire format, shared by backends.

Owns: `encode_record` (done once per event, inside the append transaction, when the
version, position and commit time are known) and `now_epoch_us`.
Must not import grpc or anything above gater.store.
"""

from __future__ import annotations

import time

from exesdb.v1 import types_pb2

from .base import NewEvent

__all__ = ["encode_record", "now_epoch_us"]

_EventRecord = types_pb2.EventRecord


def now_epoch_us() -> int:
    """The current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def encode_record(stream_id: str, version: int, position: int, event: NewEvent, created_epoch_us: int) -> bytes:
    """The serialized EventRecord for one event, as reads and subscriptions ship it."""
    record = _EventRecord(
        stream_id=stream_id,
        version=version,
        position=position,
        event_id=event.event_id,
        event_type=event.event_type,
        data=event.data,
        metadata=event.metadata,
        content_type=event.content_type,
        metadata_content_type=event.metadata_content_type,
        created_epoch=created_epoch_us,
    )
    seconds, micros = divmod(created_epoch_us, 1_000_000)
    record.created.seconds = seconds
    record.created.nanos = micros * 1000
    return record.SerializeToString()
