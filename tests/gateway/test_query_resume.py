"""A query read resumed on another node goes on after the last event the client got, with
the count reduced by what it got, pinned to the head the read began with."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from exesdb.v1 import streams_pb2, types_pb2
from gater.gateway._query_resume import QueryReadResume

__all__: list[str] = []

QUERY = types_pb2.Query(items=[types_pb2.QueryItem(tags=["course:c1"])])


def message(positions: list[int], head: int) -> bytes:
    return streams_pb2.ReadEventsResponse(
        events=[types_pb2.EventRecord(position=p) for p in positions], head=head
    ).SerializeToString()


def resumed(resume: QueryReadResume) -> streams_pb2.ReadEventsRequest | None:
    raw = resume.request()
    return None if raw is None else streams_pb2.ReadEventsRequest.FromString(raw)


def test_only_query_reads_are_resumed_this_way() -> None:
    assert QueryReadResume.of(streams_pb2.ReadEventsRequest(stream_id="$all").SerializeToString()) is None
    assert QueryReadResume.of(b"\xff\xff") is None


def test_forward_with_a_count() -> None:
    request = streams_pb2.ReadEventsRequest(query=QUERY, count=10)
    resume = QueryReadResume.of(request.SerializeToString())
    assert resume is not None
    assert resumed(resume) == request  # nothing received yet: the same request
    resume.passes(message([3, 8, 20], 90))
    resume.passes(message([21, 40], 90))
    again = resumed(resume)
    assert again is not None
    assert (again.from_version, again.count, again.head, again.query) == (41, 5, 90, QUERY)


def test_backward_and_the_end() -> None:
    request = streams_pb2.ReadEventsRequest(query=QUERY, direction=streams_pb2.READ_DIRECTION_BACKWARD)
    resume = QueryReadResume.of(request.SerializeToString())
    assert resume is not None
    resume.passes(message([50, 7], 60))
    again = resumed(resume)
    assert again is not None and (again.from_version, again.head, again.count) == (6, 60, 0)
    resume.passes(message([0], 60))
    assert resumed(resume) is None


def test_count_reached_or_nothing_matched_is_the_end() -> None:
    resume = QueryReadResume.of(streams_pb2.ReadEventsRequest(query=QUERY, count=2).SerializeToString())
    assert resume is not None
    resume.passes(message([1, 2], 5))
    assert resumed(resume) is None
    empty = QueryReadResume.of(streams_pb2.ReadEventsRequest(query=QUERY).SerializeToString())
    assert empty is not None
    empty.passes(message([], 5))
    assert resumed(empty) is None


def test_prefix_and_time_reads_resume_keeping_their_filters() -> None:
    at = timestamp_pb2.Timestamp(seconds=1_800_000_000)
    for request in (
        streams_pb2.ReadEventsRequest(stream_prefix="order-", count=4),
        streams_pb2.ReadEventsRequest(from_time=at, count=4),
        streams_pb2.ReadEventsRequest(stream_prefix="order-", from_time=at, query=QUERY, count=4),
    ):
        resume = QueryReadResume.of(request.SerializeToString())
        assert resume is not None, request
        resume.passes(message([5, 9], 30))
        again = resumed(resume)
        assert again is not None
        # The node starts at the later of from_time and from_version: where the client is.
        assert (again.from_version, again.count, again.head) == (10, 2, 30)
        assert (again.stream_prefix, again.from_time, again.query) == (request.stream_prefix, request.from_time, request.query)
