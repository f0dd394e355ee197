"""Hand-made protobuf framing for the hot paths: batches of pre-encoded EventRecords.

Owns: turning stored record bytes into ReadEventsResponse / SubscribeResponse bytes without
building messages (a repeated message field is just tag + length + bytes, repeated); the
first-byte tags that tell a SubscribeResponse's kind without parsing it; `OncePerStream`,
the one rule for a subscription stream that moved to another node (shared by the node that
relays to a subscription's owner and by the gateway that resumes a stream); and
`subscribe_event_messages`, which cuts a batch into messages that fit a receive limit.
Must not import grpc.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

__all__ = [
    "CAUGHT_UP",
    "CHECKPOINT",
    "CONFIRMATION",
    "EVENTS",
    "HEARTBEAT",
    "MAX_RESPONSE_BYTES",
    "OncePerStream",
    "correlation_id",
    "event_batch",
    "read_response",
    "serialize",
    "split_records",
    "subscribe_event_messages",
    "subscribe_events",
    "subscribe_framed",
    "varint",
]

# SubscribeResponse is one oneof: the first byte of a serialized message is the tag (field
# number << 3 | wire type 2) of the field it carries.
CONFIRMATION, EVENTS, CAUGHT_UP, CHECKPOINT, HEARTBEAT = 0x0A, 0x12, 0x1A, 0x22, 0x2A

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""gRPC's default receive limit (grpcio, grpc-js, grpc-go, ...): every response message a
client may meet without settings fits in it."""


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


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def correlation_id(message: bytes) -> int:
    """Field 1 (a uint64) of an AppendSessionRequest or AppendSessionResponse, read without
    parsing the rest of the message (other fields are skipped by their length); 0 when it
    is absent. ValueError for bytes that are not a protobuf message."""
    i, n = 0, len(message)
    try:
        while i < n:
            key, i = _read_varint(message, i)
            wire = key & 7
            if key == 0x08:
                return _read_varint(message, i)[0]
            if wire == 0:
                i = _read_varint(message, i)[1]
            elif wire == 2:
                length, i = _read_varint(message, i)
                i += length
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            else:
                raise ValueError(f"unexpected wire type {wire}")
    except IndexError:
        raise ValueError("truncated message") from None
    if i != n:
        raise ValueError("truncated message")
    return 0


@functools.lru_cache(maxsize=4096)
def _field_1_head(length: int) -> bytes:
    """Tag and length of a field-1 record `length` bytes long. Cached: records of a store
    come in few sizes, and a look-up costs a fraction of framing the varint again."""
    return b"\x0a" + varint(length)


def _repeated_field_1(records: Iterable[bytes]) -> bytes:
    head = _field_1_head
    return b"".join([part for r in records for part in (head(len(r)), r)])


def read_response(records: Iterable[bytes]) -> bytes:
    """ReadEventsResponse{events: records}, serialized."""
    return _repeated_field_1(records)


def split_records(framed: bytes) -> list[bytes]:
    """The records of a repeated field 1 as `read_response` frames them (its inverse).
    ValueError for bytes framed otherwise."""
    records: list[bytes] = []
    i, n = 0, len(framed)
    try:
        while i < n:
            if framed[i] != 0x0A:
                raise ValueError(f"expected field 1 at byte {i}, got tag {framed[i]:#x}")
            length, i = _read_varint(framed, i + 1)
            if i + length > n:
                raise ValueError("truncated record")
            records.append(framed[i : i + length])
            i += length
    except IndexError:
        raise ValueError("truncated record") from None
    return records


def event_batch(records: Iterable[bytes]) -> bytes:
    """EventBatch{events: records}, serialized."""
    return _repeated_field_1(records)


def subscribe_events(records: Iterable[bytes]) -> bytes:
    """SubscribeResponse{events: EventBatch{events: records}}, serialized (field 2)."""
    inner = _repeated_field_1(records)
    return b"\x12" + varint(len(inner)) + inner


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def subscribe_event_messages(records: Sequence[bytes], max_bytes: int = MAX_RESPONSE_BYTES) -> list[bytes]:
    """SubscribeResponse{events} messages carrying `records`, in order, each at most
    `max_bytes` serialized — the whole message counted, envelope included. A record that
    cannot fit even alone goes alone (the append limits keep that from happening)."""
    head = _field_1_head
    heads = [head(len(r)) for r in records]
    inner = sum(map(len, heads)) + sum(map(len, records))
    if 1 + _varint_len(inner) + inner <= max_bytes:  # the common case: all in one message
        whole = b"".join([part for pair in zip(heads, records, strict=True) for part in pair])
        return [b"\x12" + varint(inner) + whole] if records else []
    messages: list[bytes] = []
    batch: list[bytes] = []
    inner = 0
    for record, framed in zip(records, heads, strict=True):
        size = len(framed) + len(record)
        grown = inner + size
        if batch and 1 + _varint_len(grown) + grown > max_bytes:
            messages.append(subscribe_events(batch))
            batch, grown = [], size
        batch.append(record)
        inner = grown
    if batch:
        messages.append(subscribe_events(batch))
    return messages


def subscribe_framed(framed: bytes, max_bytes: int = MAX_RESPONSE_BYTES) -> list[bytes]:
    """subscribe_event_messages for records already framed as field 1 (read_response's
    bytes): one message around them as they are when it fits `max_bytes`, else cut the same
    way."""
    if not framed:
        return []
    if 1 + _varint_len(len(framed)) + len(framed) <= max_bytes:
        return [b"\x12" + varint(len(framed)) + framed]
    return subscribe_event_messages(split_records(framed), max_bytes)


def serialize(message: object) -> bytes:
    """Response serializer that takes a message or bytes already serialized."""
    if type(message) is bytes:
        return message
    return message.SerializeToString()  # type: ignore[attr-defined]


class OncePerStream:
    """A subscription stream carried on after a break (another node, a new owner): the new
    stream starts with its own confirmation and, after its catch-up, its own caught_up; the
    client already has one of each and must see neither again."""

    __slots__ = ("caught_up", "confirmed")

    def __init__(self) -> None:
        self.confirmed = False
        self.caught_up = False

    def passes(self, message: bytes) -> bool:
        """False for a confirmation or caught_up already passed once; True otherwise."""
        tag = message[0] if message else 0
        if tag == CONFIRMATION:
            if self.confirmed:
                return False
            self.confirmed = True
        elif tag == CAUGHT_UP:
            if self.caught_up:
                return False
            self.caught_up = True
        return True
