"""The pure parts of paced reads: how a page is cut into messages, how a read's allowance grows,
and the node-wide budget. Real reads go through tests/node/test_streams.py and
test_response_size.py; what unread reads cost a real process is in tests/test_node_process.py."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given
from hypothesis import strategies as st

from gater import _wire
from gater.config import Limits
from gater.node._reading import (
    FIRST_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    ReadPacer,
    SendBudget,
    paged_messages,
)
from gater.store.base import RecordedEvent


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


class Pages:
    """A store of `total` events of 100 bytes each, read by position, that records the pages
    asked for; every read after the first `answered` waits until cancelled."""

    def __init__(self, total: int, answered: int = 1_000_000) -> None:
        self.total = total
        self.answered = answered
        self.asked: list[tuple[int, int]] = []
        self.waiting = asyncio.Event()
        self.cancelled = 0
        self.dropped = asyncio.Event()

    async def fetch(self, key: int | None, wanted: int) -> list[RecordedEvent]:
        start = key or 0
        self.asked.append((start, wanted))
        if len(self.asked) > self.answered:
            self.waiting.set()
            try:
                await asyncio.Future()
            except asyncio.CancelledError:
                self.cancelled += 1
                self.dropped.set()
                raise
        return [
            RecordedEvent(p, "s", p, f"id-{p}", "t", p.to_bytes(4, "big") * 25)
            for p in range(start, min(self.total, start + wanted))
        ]


def messages_of(pages: Pages, budget: SendBudget, count: int = 0):  # noqa: ANN201 - an async generator
    return paged_messages(
        pages.fetch, None, count, False, key_of=lambda e: e.position, as_json=False, limits=Limits(), budget=budget
    )


def positions(message: bytes) -> list[int]:
    """The positions of a ReadEventsResponse's records (field 1, each 100 bytes: 0x0a 0x64)."""
    assert len(message) % 102 == 0 and message[::102] == b"\x0a" * (len(message) // 102)
    return [int.from_bytes(message[i + 2 : i + 6], "big") for i in range(0, len(message), 102)]


async def test_the_next_page_is_read_while_this_one_goes_out_once_the_client_took_a_message():
    pages, budget = Pages(10_000), SendBudget(32 * 1024 * 1024)
    read = messages_of(pages, budget)
    first = await anext(read)
    assert len(pages.asked) == 1  # a client that took nothing holds one page, and nothing read ahead
    second = await anext(read)  # the first was taken: the second page came, the third is read ahead of its messages
    assert len(pages.asked) == 3
    assert pages.asked[2][0] == pages.asked[1][0] + pages.asked[1][1]
    rest = [m async for m in read]
    got = [p for m in (first, second, *rest) for p in positions(m)]
    assert got == list(range(10_000))  # every event once, in order
    starts = [start for start, _ in pages.asked]
    assert starts == sorted(set(starts))  # no page read twice
    assert budget.used_bytes == 0


async def test_no_read_ahead_while_the_node_wide_budget_has_no_room_for_it():
    pages, budget = Pages(10_000), SendBudget(0)  # every read gets the minimum, and nothing ahead
    read = messages_of(pages, budget)
    await anext(read)
    await anext(read)
    assert len(pages.asked) == 2
    got = [p async for m in read for p in positions(m)]
    assert got[-1] == 9_999
    assert budget.used_bytes == 0


async def test_a_read_cancelled_while_it_waits_for_a_page_gives_its_bytes_back():
    pages, budget = Pages(10_000, answered=1), SendBudget(32 * 1024 * 1024)
    read = messages_of(pages, budget)
    await anext(read)
    second = asyncio.ensure_future(anext(read))
    await pages.waiting.wait()
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
    await read.aclose()
    assert pages.cancelled == 1
    assert budget.used_bytes == 0


async def test_closing_a_read_cancels_the_page_it_reads_ahead_and_gives_its_bytes_back():
    pages, budget = Pages(10_000, answered=2), SendBudget(32 * 1024 * 1024)
    read = messages_of(pages, budget)
    await anext(read)
    await anext(read)
    assert len(pages.asked) == 3 and pages.waiting.is_set()  # the third page, read ahead, waits
    assert budget.used_bytes > 0
    await read.aclose()
    await pages.dropped.wait()  # the read ahead is cancelled (it runs as a task of its own)
    assert pages.cancelled == 1
    assert budget.used_bytes == 0


@given(st.integers(1, 3000), st.integers(0, 3000))
def test_a_read_ends_exactly_at_its_count_or_the_last_event(total, count):
    async def read() -> list[int]:
        pages, budget = Pages(total), SendBudget(32 * 1024 * 1024)
        got = [p async for m in messages_of(pages, budget, count) for p in positions(m)]
        assert budget.used_bytes == 0
        return got

    assert asyncio.run(read()) == list(range(min(total, count) if count else total))
