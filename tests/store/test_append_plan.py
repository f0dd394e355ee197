"""The one append core of every backend (gater.store._append): one batch of appends decided
against the state its writer read while it alone may write. No database needed: each
backend's writer only reads, calls it, and inserts what it planned."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exesdb.v1 import types_pb2
from gater.errors import DuplicateEventIdError, InvalidArgumentError, WrongExpectedVersionError
from gater.store._append import AppendRequest, BatchPlan, ExistingEvent, plan_batch
from gater.store.base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    AppendResult,
    NewEvent,
)

__all__: list[str] = []


class Row(NamedTuple):
    """A planned row (a plain tuple in the plan), with names to read it by."""

    position: int
    stream_id: str
    version: int
    event_id: str
    event_type: str
    created_epoch: int
    record: bytes


def rows(plan: BatchPlan) -> list[Row]:
    return [Row(*r) for r in plan.rows]


def new(n: int) -> list[NewEvent]:
    return [NewEvent(str(uuid.uuid4()), "t", b"{}") for _ in range(n)]


def test_each_request_is_decided_on_its_own_in_order() -> None:
    stored = new(1)[0]
    first, second = new(2), new(1)
    plan = plan_batch(
        [
            AppendRequest("a", first, EXPECT_NO_STREAM),
            AppendRequest("a", new(1), EXPECT_NO_STREAM),  # "a" exists by now
            AppendRequest("a", second, 1),
            AppendRequest("b", new(1), EXPECT_STREAM_EXISTS),  # "b" does not
            AppendRequest("a", first, 99),  # a repeat of the first request: its result
            AppendRequest("c", [stored], EXPECT_ANY),  # id stored elsewhere before
            AppendRequest("c", [second[0], *new(1)], EXPECT_ANY),  # partial overlap
        ],
        last_position=9,
        stream_versions={},
        existing={stored.event_id: ExistingEvent("z", 0, 3)},
        created_epoch_us=1_700_000_000_123_456,
    )
    ok_first, wrong_1, ok_second, wrong_2, repeat, dup_1, dup_2 = plan.outcomes
    assert ok_first == AppendResult(0, 1, 10, 11)
    assert isinstance(wrong_1, WrongExpectedVersionError) and wrong_1.current_version == 1
    assert ok_second == AppendResult(2, 2, 12, 12)
    assert isinstance(wrong_2, WrongExpectedVersionError) and wrong_2.current_version == -1
    assert repeat == AppendResult(0, 1, 10, 11, duplicate=True)
    assert isinstance(dup_1, DuplicateEventIdError) and dup_1.field == "events[0].event_id"
    assert isinstance(dup_2, DuplicateEventIdError) and dup_2.event_id == second[0].event_id
    assert [r.position for r in rows(plan)] == [10, 11, 12]
    assert plan.stream_versions == {"a": 2}
    assert (plan.last_position, plan.new_streams) == (12, 1)
    record = types_pb2.EventRecord.FromString(rows(plan)[2].record)
    assert (record.stream_id, record.version, record.position, record.event_id) == ("a", 2, 12, second[0].event_id)
    assert record.created_epoch == 1_700_000_000_123_456


@pytest.mark.parametrize(
    ("events", "field"),
    [([], "events"), ([NewEvent("not-a-uuid", "t")], "events[0].event_id")],
)
def test_bad_requests_fail_alone(events: list[NewEvent], field: str) -> None:
    plan = plan_batch(
        [AppendRequest("a", events, EXPECT_ANY), AppendRequest("a", new(1), EXPECT_ANY)],
        last_position=-1, stream_versions={}, existing={}, created_epoch_us=1,
    )
    assert isinstance(plan.outcomes[0], InvalidArgumentError) and plan.outcomes[0].field == field
    assert plan.outcomes[1] == AppendResult(0, 0, 0, 0)


def test_ids_are_stored_in_canonical_spelling() -> None:
    upper = str(uuid.uuid4()).upper()
    plan = plan_batch([AppendRequest("a", [NewEvent(upper, "t")], EXPECT_ANY)],
                      last_position=-1, stream_versions={}, existing={}, created_epoch_us=1)
    assert rows(plan)[0].event_id == upper.lower()
    assert types_pb2.EventRecord.FromString(rows(plan)[0].record).event_id == upper.lower()


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=1, max_size=30))
def test_any_appends_give_dense_positions_and_versions(appends: list[tuple[int, int]]) -> None:
    plan = plan_batch(
        [AppendRequest(f"s{s}", new(n), EXPECT_ANY) for s, n in appends],
        last_position=4, stream_versions={"s0": 6}, existing={}, created_epoch_us=1,
    )
    assert [r.position for r in rows(plan)] == list(range(5, 5 + sum(n for _, n in appends)))
    for stream in {r.stream_id for r in rows(plan)}:
        versions = [r.version for r in rows(plan) if r.stream_id == stream]
        start = 7 if stream == "s0" else 0
        assert versions == list(range(start, start + len(versions)))


def _reference_ids(ids: list[str]) -> list[str] | tuple[str, str]:
    """What the ids of one request must come to: canonical ids, or (error class, field)."""
    canonical: list[str] = []
    for i, event_id in enumerate(ids):
        try:
            c = str(uuid.UUID(event_id))
        except ValueError:
            return ("InvalidArgumentError", f"events[{i}].event_id")
        if c in canonical:
            return ("DuplicateEventIdError", f"events[{i}].event_id")
        canonical.append(c)
    return canonical


_ids = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]
_candidates = st.sampled_from(
    [*_ids, _ids[0].upper(), "{" + _ids[1] + "}", _ids[0] + "\n" + _ids[1], _ids[2][:-1], "", "not-a-uuid"]
)


@given(st.lists(_candidates, min_size=1, max_size=5))
def test_event_ids_are_checked_and_made_canonical(ids: list[str]) -> None:
    plan = plan_batch([AppendRequest("a", [NewEvent(i, "t") for i in ids], EXPECT_ANY)],
                      last_position=-1, stream_versions={}, existing={}, created_epoch_us=1)
    expected = _reference_ids(ids)
    [outcome] = plan.outcomes
    if isinstance(expected, tuple):
        assert (type(outcome).__name__, outcome.field) == expected
        assert plan.rows == []
    else:
        assert outcome == AppendResult(0, len(ids) - 1, 0, len(ids) - 1)
        assert [r.event_id for r in rows(plan)] == expected


def test_a_batchs_conditions_are_one_statement_with_its_parameters_numbered_once() -> None:
    """PostgreSQL checks every condition of a batch in one round trip: one column per
    request with a condition still to check (after < head), parameters $1..$n in order."""
    import re

    from gater.store._append import conflict_queries, conflict_query
    from gater.store._query import AppendCondition, Query, QueryItem

    def cond(after: int, *items: QueryItem) -> AppendCondition:
        return AppendCondition(Query(items), after)

    requests = [
        AppendRequest("a", new(1), EXPECT_ANY, cond(3, QueryItem(tags=("t:1",)))),
        AppendRequest("b", new(1), EXPECT_ANY),  # no condition
        AppendRequest("c", new(1), EXPECT_ANY, cond(9, QueryItem(tags=("t:2",)))),  # after the head: nothing to check
        AppendRequest("d", new(1), EXPECT_ANY, cond(-1, QueryItem(("x:v1",), ("t:3", "t:4")), QueryItem(("y:v1",)))),
    ]
    assert conflict_query(requests[1:3], 9, "postgres", "s") is None
    indexes, sql, params = conflict_query(requests, 9, "postgres", "s")
    assert indexes == [i for i, _, _ in conflict_queries(requests, 9, "postgres", "s")] == [0, 3]
    assert sql.startswith("SELECT (") and sql.count("LIMIT") >= 2
    numbers = [int(n) for n in re.findall(r"\$(\d+)", sql)]
    assert sorted(set(numbers)) == list(range(1, len(params) + 1))
    assert params.count("s") == sum(1 for _ in re.finditer(r"store_id = \$", sql))
