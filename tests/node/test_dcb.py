"""Tags, query reads and conditional appends over real gRPC, on each backend (the `api`
fixture), and through a gateway that relays a failed condition without retrying it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from gater.errors import AppendConditionFailedError, decode_status
from tests.helpers import details

__all__: list[str] = []


def tagged(event_type: str, *tags: str, event_id: str | None = None) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=event_id or str(uuid.uuid4()), event_type=event_type, data=b"{}", tags=tags)


def query(*items: tuple[tuple[str, ...], tuple[str, ...]]) -> types_pb2.Query:
    return types_pb2.Query(items=[types_pb2.QueryItem(types=t, tags=g) for t, g in items])


async def read_query(stub: Any, q: types_pb2.Query, **kw: Any) -> tuple[list[types_pb2.EventRecord], list[int]]:
    """The events of a query read and the head of every message."""
    events, heads = [], []
    async for message in stub.ReadEvents(streams_pb2.ReadEventsRequest(query=q, **kw)):
        events.extend(message.events)
        heads.append(message.head)
    return events, heads


async def course(stub: Any) -> None:
    await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="course-c1", events=[
        tagged("course_defined", "course:c1"),
        tagged("student_subscribed", "course:c1", "student:s1"),
    ]))
    await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="student-s2", events=[
        tagged("student_registered", "student:s2"),
        tagged("student_subscribed", "student:s2", "course:c1"),
    ]))


async def test_tags_round_trip_and_query_reads_carry_the_head(api: Any) -> None:
    await course(api.streams)
    events, heads = await read_query(api.streams, query(((), ("course:c1",))))
    assert [e.position for e in events] == [0, 1, 3]
    assert list(events[1].tags) == ["course:c1", "student:s1"]
    assert set(heads) == {3}
    events, _ = await read_query(api.streams, query((("student_subscribed",), ("student:s2",))), stream_id="$all")
    assert [e.position for e in events] == [3]
    events, _ = await read_query(
        api.streams, query(((), ("course:c1",))), direction=streams_pb2.READ_DIRECTION_BACKWARD, count=2
    )
    assert [e.position for e in events] == [3, 1]
    events, _ = await read_query(api.streams, types_pb2.Query(), from_version=2)  # empty query: all
    assert [e.position for e in events] == [2, 3]


async def test_a_query_that_matches_nothing_still_says_the_head(api: Any) -> None:
    events, heads = await read_query(api.streams, query(((), ("nobody",))))
    assert (events, heads) == ([], [-1])
    await course(api.streams)
    assert await read_query(api.streams, query(((), ("nobody",)))) == ([], [3])


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"stream_id": "$all", "events": [tagged("t", "fine", "not fine")]}, "events[0].tags[1]"),
    ],
)
async def test_bad_tags_are_invalid_argument_naming_the_field(api: Any, request_fields: dict[str, Any], field: str) -> None:
    request_fields = {**request_fields, "stream_id": "s"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(**request_fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field)


async def test_a_query_read_of_a_stream_is_refused(api: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_query(api.streams, query(((), ("a",))), stream_id="orders")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_query(api.streams, query((("t",), ("bad tag",))))
    assert caught.value.details().startswith("query.items[0].tags[0]")


def conditional(stream_id: str, events: list[types_pb2.NewEvent], q: types_pb2.Query, after: int | None) -> streams_pb2.AppendEventsRequest:
    condition = types_pb2.AppendCondition(fail_if_events_match=q)
    if after is not None:
        condition.after = after
    return streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events, condition=condition)


async def test_conditional_append_over_grpc(api: Any) -> None:
    await course(api.streams)
    c1 = query((("student_subscribed",), ("course:c1",)))
    _, heads = await read_query(api.streams, c1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(conditional("x", [tagged("student_subscribed", "course:c1")], c1, 1))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = decode_status(
        caught.value.code().name, caught.value.details(),
        dict(caught.value.trailing_metadata() or ()).get("grpc-status-details-bin"),
    )
    assert isinstance(error, AppendConditionFailedError)
    assert (error.conflicting_position, error.head) == (3, 3)
    # Decided on the read's head: goes ahead; sent again (a retry), it is a duplicate.
    request = conditional("x", [tagged("student_subscribed", "course:c1", "student:s3")], c1, heads[0])
    first = await api.streams.AppendEvents(request)
    again = await api.streams.AppendEvents(request)
    assert (first.position, first.duplicate, again.position, again.duplicate) == (4, False, 4, True)
    # No `after`: any matching event at all fails it.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(conditional("x", [tagged("t")], c1, None))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_concurrent_conditional_appends_over_grpc_have_one_winner(api: Any) -> None:
    seat = query((("seat_taken",), ("course:c1",)))
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="c", events=[tagged("course_defined", "course:c1")]))
    _, heads = await read_query(api.streams, seat)
    calls = [api.streams.AppendEvents(conditional(f"s{i}", [tagged("seat_taken", "course:c1")], seat, heads[0])) for i in range(12)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, streams_pb2.AppendEventsResponse)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 11
    assert {e.code() for e in lost} == {grpc.StatusCode.FAILED_PRECONDITION}


async def test_a_gateway_relays_a_failed_condition_without_retrying(api: Any, gateway: Any) -> None:
    await course(api.streams)
    c1 = query(((), ("course:c1",)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.api.streams.AppendEvents(conditional("x", [tagged("t", "course:c1")], c1, 0))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not details(caught.value)  # not a WrongExpectedVersion
    raw = dict(caught.value.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(decode_status("FAILED_PRECONDITION", caught.value.details(), raw), AppendConditionFailedError)
    events, heads = await read_query(gateway.api.streams, c1)
    assert [e.position for e in events] == [0, 1, 3] and set(heads) == {3}
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version == 3


async def test_multi_stream_append_over_grpc(api: Any) -> None:
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="account-1", events=[tagged("opened")]))
    request = streams_pb2.AppendEventsRequest(
        stream_id="account-1", expected_version=0, events=[tagged("debited")],
        more_streams=[streams_pb2.StreamEvents(
            stream_id="account-2", expected_state=types_pb2.EXPECTED_STATE_NO_STREAM, events=[tagged("credited")] * 1,
        )],
        checks=[streams_pb2.StreamCheck(stream_id="ledger-closed", expected_state=types_pb2.EXPECTED_STATE_NO_STREAM)],
    )
    reply = await api.streams.AppendEvents(request)
    assert (reply.version, reply.position) == (1, 1)
    assert [(r.version, r.position) for r in reply.more_streams] == [(0, 2)]
    again = await api.streams.AppendEvents(request)  # the same ids: a duplicate, nothing written
    assert again.duplicate and [r.duplicate for r in again.more_streams] == [True]
    # A check that does not hold: nothing of the call is written.
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="ledger-closed", events=[tagged("closed")]))
    request.ClearField("expected_version")
    for event in [*request.events, *request.more_streams[0].events]:
        event.event_id = str(uuid.uuid4())
    request.more_streams[0].expected_version = 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(request)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    (detail,) = details(caught.value)
    assert (detail.stream_id, detail.current_version) == ("ledger-closed", 0)
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version == 3


async def test_multi_stream_append_names_the_bad_field(api: Any) -> None:
    request = streams_pb2.AppendEventsRequest(
        stream_id="a", events=[tagged("x")],
        more_streams=[streams_pb2.StreamEvents(stream_id="b", events=[tagged("y"), tagged("y", "bad tag")])],
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("more_streams[0].events[1].tags[0]")
    request = streams_pb2.AppendEventsRequest(
        stream_id="a", events=[tagged("x")], checks=[streams_pb2.StreamCheck(stream_id="", expected_version=0)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(request)
    assert caught.value.details().startswith("checks[0].stream_id")


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"checks": [streams_pb2.StreamCheck(stream_id="x")] * 1_001}, "checks"),
        # More streams than events allowed: refused before any stream is read (each needs an event).
        ({"more_streams": [streams_pb2.StreamEvents(stream_id="x")] * 20_000}, "more_streams"),
    ],
)
async def test_long_lists_are_refused_before_they_are_read(api: Any, request_fields: dict[str, Any], field: str) -> None:
    """Counts first: a 4 MiB list costs the node a length check, not a walk over every entry."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="a", events=[tagged("x")], **request_fields))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
    assert [d.field for d in details(caught.value)] == [field]
    items = [types_pb2.QueryItem(types=["t"])] * 10_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_query(api.streams, types_pb2.Query(items=items))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [d.field for d in details(caught.value)] == ["query.items"]
    assert (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version == -1


async def test_a_read_pinned_to_a_head_stops_there_and_never_past_the_store(api: Any) -> None:
    await course(api.streams)
    c1 = query(((), ("course:c1",)))
    events, heads = await read_query(api.streams, c1, head=1)
    assert ([e.position for e in events], set(heads)) == ([0, 1], {1})
    events, heads = await read_query(api.streams, c1, head=1000)
    assert ([e.position for e in events], set(heads)) == ([0, 1, 3], {3})


async def test_query_reads_of_mixed_sizes_agree_in_every_form(api: Any) -> None:
    """Pages the store framed go out as they are when they fit a message and are cut by bytes
    when they do not; JSON, backward and counted reads take each event: every form reads
    the same events, in messages within the 4 MiB a default client takes."""
    sizes = [10, 200_000, 50, 3_000, 900_000, 20, 70_000, 5, 400_000, 1_200]
    for i, size in enumerate(sizes * 3):
        event = tagged("sized", "k:1" if i % 3 else "k:2")
        event.data = b'{"x":"' + b"y" * size + b'"}'
        await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"s-{i % 4}", events=[event]))
    wanted = [i for i in range(len(sizes) * 3) if i % 3]
    sizes_seen: list[int] = []

    async def read(**kw: Any) -> list[int]:
        positions = []
        async for message in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(query=query(((), ("k:1",))), **kw)):
            sizes_seen.append(message.ByteSize())
            positions += [e.position for e in message.events]
            if kw.get("json"):
                assert all(len(e.data_json["x"]) == sizes[e.position % len(sizes)] for e in message.events)
            else:
                assert all(len(e.data) == sizes[e.position % len(sizes)] + 8 for e in message.events)
        return positions

    assert await read() == wanted
    assert await read(json=True) == wanted
    assert await read(count=7) == wanted[:7]
    assert await read(from_version=11) == [p for p in wanted if p >= 11]
    assert await read(direction=streams_pb2.READ_DIRECTION_BACKWARD) == wanted[::-1]
    assert max(sizes_seen) <= 4 * 1024 * 1024
