"""gater._wire.subscribe_event_messages: a batch of records cut into SubscribeResponse messages
that each fit a size limit, the envelope counted, nothing lost, reordered or repeated."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from exesdb.v1 import subscriptions_pb2, types_pb2
from gater import _wire


def record(position: int, data_bytes: int) -> bytes:
    return types_pb2.EventRecord(position=position, stream_id="s", data=b"x" * data_bytes).SerializeToString()


def unpack(messages: list[bytes]) -> list[int]:
    out = []
    for message in messages:
        parsed = subscriptions_pb2.SubscribeResponse.FromString(message)
        assert parsed.WhichOneof("message") == "events"
        out.extend(e.position for e in parsed.events.events)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5000), max_size=60), st.integers(64, 20_000))
def test_every_message_fits_and_carries_the_records_in_order(sizes: list[int], limit: int) -> None:
    records = [record(i, n) for i, n in enumerate(sizes)]
    messages = _wire.subscribe_event_messages(records, limit)
    assert unpack(messages) == list(range(len(records)))
    for message in messages:
        alone = len(subscriptions_pb2.SubscribeResponse.FromString(message).events.events) == 1
        assert len(message) <= limit or alone, "only a record too big for any message goes alone"
    # As few messages as the greedy cut allows: no two neighbours would have fitted together.
    for first, second in zip(messages, messages[1:], strict=False):
        merged = _wire.subscribe_events(
            [e.SerializeToString() for m in (first, second) for e in subscriptions_pb2.SubscribeResponse.FromString(m).events.events]
        )
        assert len(merged) > limit


def test_a_batch_exactly_at_the_limit_stays_one_message() -> None:
    records = [record(i, 1000) for i in range(10)]
    whole = _wire.subscribe_events(records)
    assert len(_wire.subscribe_event_messages(records, len(whole))) == 1
    assert len(_wire.subscribe_event_messages(records, len(whole) - 1)) == 2


def test_the_default_limit_is_grpcs_default_receive_limit() -> None:
    assert _wire.MAX_RESPONSE_BYTES == 4 * 1024 * 1024
    records = [record(i, 100 * 1024) for i in range(60)]  # 6 MB in all
    messages = _wire.subscribe_event_messages(records)
    assert len(messages) == 2 and all(len(m) <= 4 * 1024 * 1024 for m in messages)
