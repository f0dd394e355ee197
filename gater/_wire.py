"""Hand-made protobuf framing for the hot paths: batches of pre-encoded EventRecords.

Owns: turning stored record bytes into ReadEventsResponse / SubscribeResponse bytes without
building messages (a repeated message field is just tag + length + bytes, repeated).
Must not import grpc.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["event_batch", "read_response", "serialize", "subscribe_events", "varint"]


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative int."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _repeated_field_1(records: Iterable[bytes]) -> bytes:
    parts: list[bytes] = []
    for r in records:
        parts.append(b"\x0a")
        parts.append(varint(len(r)))
        parts.append(r)
    return b"".join(parts)


def read_response(records: Iterable[bytes]) -> bytes:
    """ReadEventsResponse{events: records}, serialized."""
    return _repeated_field_1(records)


def event_batch(records: Iterable[bytes]) -> bytes:
    """EventBatch{events: records}, serialized."""
    return _repeated_field_1(records)


def subscribe_events(records: Iterable[bytes]) -> bytes:
    """SubscribeResponse{events: EventBatch{events: records}}, serialized (field 2)."""
    inner = _repeated_field_1(records)
    return b"\x12" + varint(len(inner)) + inner


def serialize(message: object) -> bytes:
    """Response serializer that takes a message or bytes already serialized."""
    if type(message) is bytes:
        return message
    return message.SerializeToString()  # type: ignore[attr-defined]
