"""The Dynamic Consistency Boundary part of the storage conformance suite: tags, query reads
and conditional appends, written against gater/store/base.py only.

Owns: `DcbConformance`, a mixin of `StoreConformance` (so every backend's subclass runs it);
it uses that class's `store` fixture. Kept apart only to keep each module readable.
Must not import a backend module.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exesdb.v1 import types_pb2
from gater._wire import read_response
from gater.errors import (
    AppendConditionFailedError,
    DuplicateEventIdError,
    InvalidArgumentError,
    LimitExceededError,
    WrongExpectedVersionError,
)
from gater.store._query import MAX_TAGS_PER_EVENT, matches
from gater.store.base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    AppendCondition,
    AppendResult,
    EncodedBatch,
    EventStore,
    NewEvent,
    Query,
    QueryItem,
    RecordedEvent,
    StorageBackend,
    StreamAppend,
)

__all__ = ["DcbConformance", "read_query_all", "tagged"]


def tagged(event_type: str, *tags: str, data: bytes = b"{}") -> NewEvent:
    return NewEvent(event_id=str(uuid.uuid4()), event_type=event_type, data=data, tags=tags)


def q(*items: tuple[tuple[str, ...], tuple[str, ...]]) -> Query:
    """Query(((types), (tags)), ...)."""
    return Query(tuple(QueryItem(types, tags) for types, tags in items))


def tags_of(event: RecordedEvent) -> list[str]:
    return list(types_pb2.EventRecord.FromString(event.encoded).tags)


async def read_query_all(
    store: EventStore, query: Query, start: int | None = None, backward: bool = False, page: int = 3
) -> tuple[list[int], int]:
    """Every position a query read returns, in pages of `page`, and the first page's head."""
    found: list[int] = []
    head: int | None = None
    key = start
    while True:
        batch, at = await store.read_query(query, key, page, backward, head)
        head = at if head is None else head
        found.extend(e.position for e in batch)
        if len(batch) < page:
            return found, head
        key = batch[-1].position + (-1 if backward else 1)
        if key < 0:
            return found, head


# The specification's course-subscription example (dcb.events): courses with a capacity,
# students subscribing to courses.
COURSE = [
    ("course_defined", ("course:c1",)),  # 0
    ("course_defined", ("course:c2",)),  # 1
    ("student_subscribed", ("course:c1", "student:s1")),  # 2
    ("course_capacity_changed", ("course:c1",)),  # 3
    ("student_subscribed", ("course:c2", "student:s1")),  # 4
    ("student_registered", ("student:s2",)),  # 5
    ("student_subscribed", ("course:c1", "student:s2")),  # 6
]


class DcbConformance:
    """Mixed into StoreConformance; every test takes its `store` fixture."""

    async def _course(self, store: EventStore) -> None:
        for i, (event_type, tags) in enumerate(COURSE):
            await store.append(f"s-{i % 3}", [tagged(event_type, *tags)], EXPECT_ANY)

    # -- tags ---------------------------------------------------------------------------------

    async def test_tags_round_trip_sorted_without_repeats(self, store: EventStore) -> None:
        await store.append("s", [tagged("t", "b:2", "a:1", "b:2"), tagged("t")], EXPECT_ANY)
        first, second = await store.read_all(None, 10)
        assert tags_of(first) == ["a:1", "b:2"]
        assert tags_of(second) == []
        assert [tags_of(e) for e in await store.read_stream("s", None, 10)] == [["a:1", "b:2"], []]

    @pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "é", "a\nb"])
    async def test_a_bad_tag_is_refused_naming_it(self, store: EventStore, bad: str) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            await store.append("s", [tagged("t"), tagged("t", "ok", bad)], EXPECT_ANY)
        assert caught.value.field == "events[1].tags[1]"
        assert await store.last_position() == -1

    async def test_too_many_tags_are_refused(self, store: EventStore) -> None:
        many = [f"t:{i}" for i in range(MAX_TAGS_PER_EVENT + 1)]
        with pytest.raises(LimitExceededError):
            await store.append("s", [tagged("t", *many)], EXPECT_ANY)
        await store.append("s", [tagged("t", *many[:-1])], EXPECT_ANY)  # the limit itself is fine

    async def test_repeated_tags_count_toward_the_limit(self, store: EventStore) -> None:
        with pytest.raises(LimitExceededError):
            await store.append("s", [tagged("t", *["a:1"] * (MAX_TAGS_PER_EVENT + 1))], EXPECT_ANY)
        assert await store.last_position() == -1
        await store.append("s", [tagged("t", "a:1", "a:1")], EXPECT_ANY)  # within it, repeats are dropped
        assert tags_of((await store.read_all(None, 1))[0]) == ["a:1"]

    # -- query reads --------------------------------------------------------------------------

    async def test_query_semantics_or_and(self, store: EventStore) -> None:
        await self._course(store)

        async def positions(query: Query) -> list[int]:
            return (await read_query_all(store, query))[0]

        assert await positions(q(((), ("course:c1",)))) == [0, 2, 3, 6]
        # Tags in an item are AND'ed.
        assert await positions(q(((), ("course:c1", "student:s2")))) == [6]
        # Types in an item are OR'ed, and AND'ed with the item's tags.
        assert await positions(q((("course_defined", "course_capacity_changed"), ("course:c1",)))) == [0, 3]
        # Items are OR'ed (an event matching two items comes once).
        assert await positions(q((("student_subscribed",), ("student:s1",)), ((), ("course:c2",)))) == [1, 2, 4]
        assert await positions(q((("student_registered",), ()))) == [5]
        assert await positions(q((("nothing",), ()))) == []
        assert await positions(q(((), ("course:c9",)))) == []

    async def test_empty_query_and_empty_item_match_everything(self, store: EventStore) -> None:
        await self._course(store)
        assert (await read_query_all(store, Query()))[0] == list(range(7))
        assert (await read_query_all(store, q((("nothing",), ()), ((), ()))))[0] == list(range(7))

    async def test_query_from_a_position_and_backward(self, store: EventStore) -> None:
        await self._course(store)
        c1 = q(((), ("course:c1",)))
        assert (await read_query_all(store, c1, start=3))[0] == [3, 6]
        assert (await read_query_all(store, c1, start=7))[0] == []
        assert (await read_query_all(store, c1, backward=True))[0] == [6, 3, 2, 0]
        assert (await read_query_all(store, c1, start=5, backward=True))[0] == [3, 2, 0]
        assert (await read_query_all(store, c1, start=100, backward=True))[0] == [6, 3, 2, 0]
        page, head = await store.read_query(c1, None, 2)
        assert [e.position for e in page] == [0, 2] and head == 6
        page, _ = await store.read_query(c1, None, 1, backward=True)
        assert [(e.position, e.event_type) for e in page] == [(6, "student_subscribed")]

    async def test_query_read_stops_at_its_head(self, store: EventStore) -> None:
        await self._course(store)
        c1 = q(((), ("course:c1",)))
        page, head = await store.read_query(c1, None, 2)
        await store.append("late", [tagged("student_subscribed", "course:c1")], EXPECT_ANY)
        rest, same = await store.read_query(c1, page[-1].position + 1, 10, head=head)
        assert ([e.position for e in rest], same) == ([3, 6], 6)  # not 7: it is after the head
        assert (await store.read_query(c1, None, 10))[1] == 7
        assert await store.read_query(c1, None, 5, head=-1) == ([], -1)

    async def test_query_on_an_empty_store(self, store: EventStore) -> None:
        assert await store.read_query(Query(), None, 10) == ([], -1)
        assert await store.read_query(q(((), ("a",))), None, 10, backward=True) == ([], -1)

    async def test_query_reads_agree_with_matching_on_random_data(self, store: EventStore) -> None:
        rng = random.Random(14)
        types = ["a", "b", "c", "d"]
        tags = [f"k:{i}" for i in range(6)]
        written: list[tuple[str, tuple[str, ...]]] = []
        for _ in range(12):
            batch = []
            for _ in range(rng.randint(1, 6)):
                event = (rng.choice(types), tuple(rng.sample(tags, rng.randint(0, 3))))
                written.append(event)
                batch.append(tagged(event[0], *event[1]))
            await store.append(f"s{rng.randint(0, 3)}", batch, EXPECT_ANY)
        for _ in range(40):
            query = Query(tuple(
                QueryItem(tuple(rng.sample(types, rng.randint(0, 2))), tuple(rng.sample(tags, rng.randint(0, 2))))
                for _ in range(rng.randint(0, 3))
            ))
            start = rng.randint(0, len(written))
            want = [p for p, (t, g) in enumerate(written) if p >= start and matches(query, t, g)]
            assert (await read_query_all(store, query, start=start))[0] == want, query
            back = [p for p, (t, g) in enumerate(written) if p <= start and matches(query, t, g)]
            assert (await read_query_all(store, query, start=start, backward=True))[0] == back[::-1], query

    # -- the same reads, framed for the wire (read_query_batches) -------------------------------

    async def _framed_pages(
        self, store: EventStore, query: Query, start: int, page: int, batch: int, prefix: str = ""
    ) -> tuple[list[bytes], int]:
        """Every record read_query_batches returns from `start`, page after page, each batch
        checked against what it says of itself; and the first page's head."""
        records: list[bytes] = []
        head: int | None = None
        key = start
        while True:
            batches, at = await store.read_query_batches(query, key, page, batch, head=head, stream_prefix=prefix)
            head = at if head is None else head
            for b in batches:
                assert isinstance(b, EncodedBatch) and 1 <= b.count <= batch
                these = b.records()
                assert len(these) == b.count
                assert b.framed == read_response(these)  # each length framed as protobuf frames it
                last = types_pb2.EventRecord.FromString(these[-1])
                assert (b.last_position, b.created_epoch_us) == (last.position, last.created_epoch)
                records += these
            if sum(b.count for b in batches) < page:
                return records, head
            key = batches[-1].last_position + 1

    async def test_framed_batches_carry_exactly_what_a_query_read_returns(self, store: EventStore) -> None:
        rng = random.Random(15)
        types = ["a", "b", "c"]
        tags = [f"k:{i}" for i in range(5)]
        # Records on both sides of each varint length boundary (127/128 and 16,383/16,384 bytes).
        sizes = [0, 1, 30, 60, 70, 80, 90, 100, 16_200, 16_300, 16_350, 16_400, 16_500, 40_000]
        for i in range(40):
            batch = [
                tagged(rng.choice(types), *rng.sample(tags, rng.randint(0, 2)), data=b"x" * rng.choice(sizes))
                for _ in range(rng.randint(1, 4))
            ]
            await store.append(rng.choice(["order-1", "order-2", "other", "ord"]) + str(i % 3), batch, EXPECT_ANY)
        head = await store.last_position()
        for _ in range(30):
            query = Query(tuple(
                QueryItem(tuple(rng.sample(types, rng.randint(0, 1))), tuple(rng.sample(tags, rng.randint(0, 2))))
                for _ in range(rng.randint(0, 2))
            ))
            prefix = rng.choice(["", "", "order-", "ord"])
            start, page = rng.randint(0, head + 1), rng.randint(1, 12)
            want: list[bytes] = []
            key: int | None = start
            while key is not None:
                events, _ = await store.read_query(query, key, page, stream_prefix=prefix)
                want += [e.encoded for e in events]
                key = events[-1].position + 1 if len(events) == page else None
            got, got_head = await self._framed_pages(store, query, start, page, rng.randint(1, page), prefix)
            assert got == want, (query, prefix, start)
            assert got_head == head

    async def test_framed_batches_stop_at_the_head_given_and_are_empty_past_it(self, store: EventStore) -> None:
        await self._course(store)
        c1 = q(((), ("course:c1",)))  # 0, 2, 3, 6
        batches, head = await store.read_query_batches(c1, 0, 10, 10, head=3)
        assert head == 3 and [b.last_position for b in batches] == [3] and batches[0].count == 3
        assert await store.read_query_batches(c1, 7, 10, 10) == ([], 6)
        assert await store.read_query_batches(c1, 4, 10, 10, head=3) == ([], 3)
        batches, _ = await store.read_query_batches(c1, 0, 3, 2)  # a page of 3 in batches of 2
        assert [(b.count, b.last_position) for b in batches] == [(2, 2), (1, 3)]

    async def test_framed_batches_pass_over_what_a_streams_rules_hide(self, store: EventStore) -> None:
        from gater.store._lifecycle import StreamMetadata

        for i in range(6):
            await store.append(f"s{i % 2}", [tagged("t", "k:1")], EXPECT_ANY)
        await store.set_stream_metadata("s0", StreamMetadata(max_count=1), EXPECT_ANY)  # hides 0 and 2
        events, _ = await store.read_query(q(((), ("k:1",))), 0, 10)
        assert [e.position for e in events] == [1, 3, 4, 5]
        records, _ = await self._framed_pages(store, q(((), ("k:1",))), 0, 2, 1)
        assert records == [e.encoded for e in events]

    async def test_a_bad_query_is_refused_naming_the_field(self, store: EventStore) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            await store.read_query(q((("t",), ("ok", "not ok"))), None, 10)
        assert caught.value.field == "query.items[0].tags[1]"
        with pytest.raises(InvalidArgumentError) as caught:
            await store.read_query(q((("t", ""), ())), None, 10)
        assert caught.value.field == "query.items[0].types[1]"

    # -- conditional appends ------------------------------------------------------------------

    async def test_condition_fails_exactly_when_a_match_is_after(self, store: EventStore) -> None:
        await self._course(store)
        c1_subscriptions = q((("student_subscribed",), ("course:c1",)))  # at 2 and 6
        for after, conflict in [(-1, 2), (1, 2), (2, 6), (5, 6), (6, None), (100, None)]:
            condition = AppendCondition(c1_subscriptions, after)
            if conflict is None:
                result = await store.append("new", [tagged("student_subscribed", "course:c1")], EXPECT_ANY, condition)
                assert not result.duplicate
                c1_subscriptions = q((("student_subscribed",), ("course:c9",)))  # keep the rest unchanged
                continue
            with pytest.raises(AppendConditionFailedError) as caught:
                await store.append("new", [tagged("x")], EXPECT_ANY, condition)
            assert (caught.value.conflicting_position, caught.value.head) == (conflict, 6)
            assert caught.value.code == "FAILED_PRECONDITION"
        assert await store.last_position() == 8

    async def test_condition_ignores_events_that_do_not_match(self, store: EventStore) -> None:
        await self._course(store)
        condition = AppendCondition(q((("student_subscribed",), ("student:s3",))), -1)
        result = await store.append("s", [tagged("student_subscribed", "student:s3", "course:c1")], EXPECT_ANY, condition)
        assert result.position == 7
        # Now one matches after -1, and after 6, but not after 7.
        with pytest.raises(AppendConditionFailedError):
            await store.append("s", [tagged("y")], EXPECT_ANY, AppendCondition(condition.fail_if_events_match, 6))
        await store.append("s", [tagged("y")], EXPECT_ANY, AppendCondition(condition.fail_if_events_match, 7))

    async def test_empty_condition_query_fails_on_any_event_after(self, store: EventStore) -> None:
        with_empty = AppendCondition(Query(), -1)
        await store.append("s", [tagged("a")], EXPECT_ANY, with_empty)  # empty store: nothing after
        with pytest.raises(AppendConditionFailedError) as caught:
            await store.append("s", [tagged("b")], EXPECT_ANY, with_empty)
        assert caught.value.conflicting_position == 0
        await store.append("s", [tagged("b")], EXPECT_ANY, AppendCondition(Query(), 0))

    async def test_a_retried_conditional_append_is_a_duplicate(self, store: EventStore) -> None:
        await self._course(store)
        condition = AppendCondition(q(((), ("course:c2",))), 4)
        events = [tagged("student_subscribed", "course:c2", "student:s9")]
        first = await store.append("c2", events, EXPECT_ANY, condition)
        again = await store.append("c2", events, EXPECT_ANY, condition)  # its own event now matches
        assert again.duplicate and (again.position, again.version) == (first.position, first.version)
        assert await store.last_position() == first.position

    async def test_expected_version_is_checked_with_the_condition(self, store: EventStore) -> None:
        await store.append("s", [tagged("a", "k")], EXPECT_ANY)
        with pytest.raises(WrongExpectedVersionError):
            await store.append("s", [tagged("b")], EXPECT_NO_STREAM, AppendCondition(q(((), ("k",))), 0))
        with pytest.raises(AppendConditionFailedError):
            await store.append("s", [tagged("b")], 0, AppendCondition(q(((), ("k",))), -1))
        await store.append("s", [tagged("b")], 0, AppendCondition(q(((), ("k",))), 0))

    async def test_concurrent_conditional_appends_on_one_query_one_wins_per_position(self, store: EventStore) -> None:
        """Many appends decided on the same read (the same `after`) race: exactly one wins,
        the others see its event. Then again from the new head, several rounds."""
        seat = q((("seat_taken",), ("course:c1",)))
        await store.append("setup", [tagged("course_defined", "course:c1")], EXPECT_ANY)
        for _ in range(4):
            _, head = await store.read_query(seat, None, 100)
            attempts = [
                store.append(f"student-{i}", [tagged("seat_taken", "course:c1", f"student:{i}")], EXPECT_ANY,
                             AppendCondition(seat, head))
                for i in range(16)
            ]
            outcomes = await asyncio.gather(*attempts, return_exceptions=True)
            won = [o for o in outcomes if not isinstance(o, BaseException)]
            lost = [o for o in outcomes if isinstance(o, AppendConditionFailedError)]
            assert len(won) == 1 and len(lost) == 15, outcomes
            assert all(o.conflicting_position == won[0].position for o in lost)
            await store.append("other", [tagged("unrelated", "course:c1")], EXPECT_ANY)

    async def test_concurrent_conditional_appends_on_disjoint_queries_all_win(self, store: EventStore) -> None:
        await store.append("setup", [tagged("course_defined", "course:c0")], EXPECT_ANY)
        _, head = await store.read_query(Query(), None, 1)
        attempts = [
            store.append(f"c{i}", [tagged("seat_taken", f"course:c{i}")], EXPECT_ANY,
                         AppendCondition(q((("seat_taken",), (f"course:c{i}",))), head))
            for i in range(16)
        ]
        results = await asyncio.gather(*attempts)
        assert sorted(r.position for r in results) == list(range(1, 17))

    # -- atomic multi-stream appends ----------------------------------------------------------

    async def test_multi_stream_append_is_contiguous_and_returns_each_stream(self, store: EventStore) -> None:
        await store.append("a", [tagged("x")], EXPECT_ANY)
        results = await store.append_streams(
            [StreamAppend("a", [tagged("x"), tagged("x")], 0), StreamAppend("b", [tagged("y", "k")], EXPECT_NO_STREAM)],
            checks=[("c", EXPECT_NO_STREAM)],
        )
        assert [(r.first_version, r.version, r.first_position, r.position) for r in results] == [
            (1, 2, 1, 2), (0, 0, 3, 3)
        ]
        assert [(e.stream_id, e.version) for e in await store.read_all(None, 10)] == [
            ("a", 0), ("a", 1), ("a", 2), ("b", 0)
        ]
        assert (await store.stream_version("a"), await store.stream_version("b")) == (2, 0)

    @pytest.mark.parametrize("failing", ["expected", "check", "condition", "duplicate"])
    async def test_multi_stream_append_is_all_or_nothing(self, store: EventStore, failing: str) -> None:
        taken = tagged("x")
        await store.append("a", [taken], EXPECT_ANY)
        await store.append("c", [tagged("x", "k")], EXPECT_ANY)
        second = [tagged("y")]
        if failing == "duplicate":
            second = [tagged("y"), taken]
        appends = [StreamAppend("a", [tagged("x")], 3 if failing == "expected" else 0), StreamAppend("b", second)]
        checks = [("c", EXPECT_NO_STREAM if failing == "check" else 0)]
        condition = AppendCondition(q(((), ("k",))), 0 if failing == "condition" else 1)
        error = {
            "expected": WrongExpectedVersionError, "check": WrongExpectedVersionError,
            "condition": AppendConditionFailedError, "duplicate": DuplicateEventIdError,
        }[failing]
        with pytest.raises(error) as caught:
            await store.append_streams(appends, checks, condition)
        if failing == "duplicate":
            assert caught.value.field == "more_streams[0].events[1].event_id"
        if failing == "check":
            assert (caught.value.stream_id, caught.value.current_version) == ("c", 0)
        assert await store.last_position() == 1
        assert (await store.stream_version("a"), await store.stream_version("b")) == (0, -1)

    async def test_a_retried_multi_stream_append_is_a_duplicate(self, store: EventStore) -> None:
        appends = [StreamAppend("a", [tagged("x")], EXPECT_NO_STREAM), StreamAppend("b", [tagged("y"), tagged("y")])]
        first = await store.append_streams(appends)
        again = await store.append_streams(appends)
        assert [r.duplicate for r in again] == [True, True]
        assert [(r.version, r.position) for r in again] == [(r.version, r.position) for r in first]
        assert await store.last_position() == 2

    async def test_multi_stream_append_refuses_a_stream_twice(self, store: EventStore) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            await store.append_streams([StreamAppend("a", [tagged("x")]), StreamAppend("a", [tagged("x")])])
        assert caught.value.field == "more_streams[0].stream_id"
        with pytest.raises(InvalidArgumentError) as caught:
            await store.append_streams([StreamAppend("a", [tagged("x")])], [("a", EXPECT_ANY)])
        assert caught.value.field == "checks[0].stream_id"
        with pytest.raises(InvalidArgumentError):
            await store.append_streams([])
        assert await store.last_position() == -1

    async def test_concurrent_multi_stream_appends_keep_streams_dense(self, store: EventStore) -> None:
        async def transfer(i: int) -> list[AppendResult]:
            return await store.append_streams(
                [StreamAppend(f"acct-{i % 3}", [tagged("debited")]), StreamAppend(f"acct-{(i + 1) % 3}", [tagged("credited")])]
            )

        results = await asyncio.gather(*(transfer(i) for i in range(30)))
        for first, second in results:
            assert second.position == first.position + 1
        everything, _ = await read_query_all(store, Query(), page=15)  # the conformance limits clip pages at 20
        assert everything == list(range(60))
        for n in range(3):
            versions = [e.version for e in await store.read_stream(f"acct-{n}", None, 20)]
            assert versions == list(range(20))

    # -- property: concurrent conditional appends are serialisable ---------------------------

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.differing_executors
        ],
    )
    @given(
        writers=st.lists(
            st.tuples(
                st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=2),  # the event's tags
                st.sets(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=2),  # the query's tags (OR'ed)
            ),
            min_size=2,
            max_size=6,
        )
    )
    async def test_concurrent_conditional_appends_are_serialisable(
        self, backend: StorageBackend, writers: list[tuple[set[str], set[str]]]
    ) -> None:
        """Writers decided on the same read race. Whatever wins, the outcome is that of some
        serial order: no winner's query matches an earlier winner's event (so two appends whose
        events each match the other's query never both succeed, and disjoint ones both do),
        and every loser names a winner's event that matches its query (no invented conflict)."""
        store_id = f"c{uuid.uuid4().hex[:12]}"
        await backend.create_store(store_id)
        store = await backend.open_store(store_id)
        await store.append("setup", [tagged("setup", "z")], EXPECT_ANY)
        queries = [Query(tuple(QueryItem((), (tag,)) for tag in sorted(query_tags))) for _, query_tags in writers]
        outcomes = await asyncio.gather(
            *(
                store.append(f"w{i}", [tagged("decided", *sorted(event_tags))], EXPECT_ANY, AppendCondition(query, 0))
                for i, ((event_tags, _), query) in enumerate(zip(writers, queries, strict=True))
            ),
            return_exceptions=True,
        )
        winners = sorted(
            (o.position, i) for i, o in enumerate(outcomes) if not isinstance(o, BaseException)
        )
        at = {position: i for position, i in winners}
        for n, (_, j) in enumerate(winners):
            for _, i in winners[:n]:
                assert not matches(queries[j], "decided", writers[i][0]), (writers, outcomes)
        for j, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, AppendConditionFailedError), outcome
                i = at[outcome.conflicting_position]
                assert matches(queries[j], "decided", writers[i][0])
        # Disjoint from everything: always wins.
        for j in range(len(writers)):
            if not any(matches(queries[j], "decided", writers[i][0]) for i in range(len(writers)) if i != j):
                assert not isinstance(outcomes[j], BaseException)
        await backend.remove_store(store_id)
