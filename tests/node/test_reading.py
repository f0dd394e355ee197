"""The pure parts of paced reads: how a page is cut into messages, how a read's allowance grows,
and the node-wide budget. Real reads go through tests/node/test_streams.py and
test_response_size.py; what unread reads cost a real process is in tests/test_node_process.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gater import _wire
from gater.node._reading import FIRST_MESSAGE_BYTES, MAX_MESSAGE_BYTES, ReadPacer, SendBudget


def framed(records: list[bytes]) -> int:
    return len(_wire.read_response(records))


@given(
    st.lists(st.integers(0, 5000), min_size=1, max_size=60),
    st.integers(1, 20_000),
    st.integers(1, 30_000),
)
def test_a_page_is_cut_into_messages_that_fit_unless_one_record_alone_does_not(sizes, allowance, max_message):
    records = [b"x" * n for n in sizes]
    start, messages = 0, []
    while start < len(records):
        end = ReadPacer.cut(records, start, allowance, max_message)
        assert end > start  # every message carries at least one record
        messages.append(records[start:end])
        start = end
    assert [r for m in messages for r in m] == records
    for message in messages:
        assert len(message) == 1 or framed(message) <= min(allowance, max_message)
        # as many as fit: one more would not have
    for message, following in zip(messages, messages[1:], strict=False):
        assert framed([*message, following[0]]) > min(allowance, max_message)


def test_the_allowance_starts_small_and_doubles_up_to_the_maximum():
    pacer = ReadPacer(max_events=500)
    seen = [pacer.allowance]
    for _ in range(12):
        pacer.taken()
        seen.append(pacer.allowance)
    assert seen[0] == FIRST_MESSAGE_BYTES and seen[-1] == MAX_MESSAGE_BYTES
    assert all(b == min(2 * a, MAX_MESSAGE_BYTES) for a, b in zip(seen, seen[1:], strict=False))


def test_pages_are_sized_from_the_records_seen():
    pacer = ReadPacer(max_events=500)
    assert pacer.page_events(16 * 1024, None) == 16  # 1 KiB assumed before any record
    pacer.observe([b"x" * 100] * 10)
    assert pacer.page_events(16 * 1024, None) == 163
    assert pacer.page_events(1024 * 1024, None) == 500  # never more than max_events
    assert pacer.page_events(1024 * 1024, 7) == 7  # nor more than the read still wants
    pacer.observe([b"x" * 4_000_000])
    assert pacer.page_events(16 * 1024, None) == 1  # at least one


@given(st.lists(st.tuples(st.integers(1, 2_000_000), st.booleans()), max_size=80))
def test_the_budget_grants_what_it_has_then_the_minimum(requests):
    budget = SendBudget(8 * 1024 * 1024)
    held = []
    for wanted, give_back in requests:
        before = budget.used_bytes
        granted = budget.acquire(wanted, FIRST_MESSAGE_BYTES)
        if before + wanted <= budget.limit_bytes:
            assert granted == wanted
        else:
            assert granted == min(wanted, FIRST_MESSAGE_BYTES)
        held.append(granted)
        if give_back:
            budget.release(held.pop(0))
        assert budget.used_bytes == sum(held)
