"""The hand-framed EventRecord (gater.store._records) decodes exactly as protobuf's own
serialization of the same record would, for any event."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from exesdb.v1 import types_pb2
from gater.store._records import created_tail, encode_record
from gater.store.base import NewEvent

__all__: list[str] = []

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)  # no lone surrogates


@given(
    stream_id=text,
    version=st.integers(0, 2**62),
    position=st.integers(0, 2**62),
    event_id=text,
    event_type=text,
    data=st.binary(max_size=2000),
    metadata=st.binary(max_size=300),
    content_type=text,
    metadata_content_type=text,
    created=st.integers(0, 2**55),
    tags=st.lists(st.text(min_size=1, max_size=20), max_size=5).map(tuple),  # tags are never empty
)
def test_a_record_decodes_as_protobuf_would_encode_it(
    stream_id: str, version: int, position: int, event_id: str, event_type: str, data: bytes,
    metadata: bytes, content_type: str, metadata_content_type: str, created: int, tags: tuple[str, ...],
) -> None:
    event = NewEvent(event_id, event_type, data, metadata, content_type, metadata_content_type, tags)
    ours = types_pb2.EventRecord.FromString(encode_record(stream_id, version, position, event, created_tail(created)))
    seconds, micros = divmod(created, 1_000_000)
    theirs = types_pb2.EventRecord(
        stream_id=stream_id, version=version, position=position, event_id=event_id,
        event_type=event_type, data=data, metadata=metadata, content_type=content_type,
        metadata_content_type=metadata_content_type, created_epoch=created, tags=tags,
    )
    theirs.created.seconds, theirs.created.nanos = seconds, micros * 1000
    assert ours == theirs


@given(st.one_of(st.integers(0, 2**30), st.integers(0, 2**63 - 1)))
@example(0x7F)
@example(0x80)
@example(0x3FFF)
@example(0x4000)
@example(0x1FFFFF)
@example(0x200000)
@example(0xFFFFFFF)
@example(0x10000000)
def test_numbers_are_framed_as_protobuf_frames_them(n: int) -> None:
    event = NewEvent("e", "t")
    record = types_pb2.EventRecord.FromString(encode_record("s", n, n, event, created_tail(n)))
    assert (record.version, record.position, record.created_epoch) == (n, n, n)
