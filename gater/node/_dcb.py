"""The node's side of the Dynamic Consistency Boundary: converting queries and append
conditions at the edge, and filtered reads of "$all" (by query, stream prefix and/or from a
time) as a paced stream of messages that carry the head.

Owns: `query_from_proto`, `condition_from_proto`, `ReadFilter` and `read_filter` (a request's
filters, checked), `read_query_messages`.
Must not import grpc's runtime or gater.gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from exesdb.v1 import streams_pb2, types_pb2

from .. import _wire
from ..config import Limits
from ..errors import InvalidArgumentError, LimitExceededError
from ..store._append import MAX_STREAM_CHECKS
from ..store._query import check_query
from ..store.base import (
    ALL_STREAM,
    AppendCondition,
    AppendResult,
    EncodedBatch,
    EventStore,
    NewEvent,
    Query,
    RecordedEvent,
    StreamAppend,
)
from ._convert import Edge
from ._reading import SendBudget, paged_messages

__all__ = [
    "ReadFilter",
    "append_response",
    "condition_from_proto",
    "more_streams",
    "query_from_proto",
    "query_stream_id",
    "read_filter",
    "read_query_messages",
    "with_head",
]

_HEAD = b"\x10"  # ReadEventsResponse.head: field 2, varint
_INT64 = (1 << 64) - 1
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
"""google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z."""


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """What a filtered read of "$all" selects, checked at the edge."""

    query: Query = Query()
    stream_prefix: str = ""
    """"" for every stream; else `_query.check_prefix`'s form ("order-")."""
    from_time_us: int | None = None
    """Start at this time (µs since the epoch, rounded up) rather than at a position."""


def query_from_proto(message: types_pb2.Query, field: str) -> Query:
    """The store's Query for a request's, checked (INVALID_ARGUMENT naming `field`...)."""
    return check_query(message, field)  # counts items, types and tags before converting any


def condition_from_proto(request: streams_pb2.AppendEventsRequest) -> AppendCondition | None:
    if not request.HasField("condition"):
        return None
    condition = request.condition
    after = condition.after if condition.HasField("after") else -1
    if after < -1:
        raise InvalidArgumentError("condition.after", f"must be >= 0 (unset: no event at all), got {after}")
    return AppendCondition(query_from_proto(condition.fail_if_events_match, "condition.fail_if_events_match"), after)


def _prefixed(error: InvalidArgumentError, prefix: str) -> InvalidArgumentError:
    if isinstance(error, LimitExceededError):
        return LimitExceededError(prefix + error.field, error.description, error.limit)
    return InvalidArgumentError(prefix + error.field, error.description)


def more_streams(
    edge: Edge, request: streams_pb2.AppendEventsRequest, first: list[NewEvent]
) -> tuple[list[StreamAppend], list[tuple[str, int]]]:
    """The further streams and the checks of a multi-stream append, checked at the edge."""
    appends, checks = [], []
    most = edge.limits.max_events_per_append
    # Counted before any event is read: every stream holds at least one event.
    parts = request.more_streams
    total = len(first) + (len(parts) if len(parts) > most else sum(len(part.events) for part in parts))
    if total > most:
        raise LimitExceededError(
            "more_streams",
            f"at most {most} events per append, all streams together, got {'at least ' if len(parts) > most else ''}"
            f"{total} (max_events_per_append)",
            limit="max_events_per_append",
        )
    if len(request.checks) > MAX_STREAM_CHECKS:
        raise LimitExceededError(
            "checks", f"at most {MAX_STREAM_CHECKS} checks per append, got {len(request.checks)} (max_stream_checks)",
            limit="max_stream_checks",
        )
    for k, part in enumerate(request.more_streams):
        prefix = f"more_streams[{k}]."
        try:
            stream_id = edge.stream_id(part.stream_id)
            events = edge.new_events(part.events, stream_id)
            expected = edge.expected(part)  # type: ignore[arg-type] - the same `expected` oneof
        except InvalidArgumentError as e:
            raise _prefixed(e, prefix) from None
        appends.append(StreamAppend(stream_id, events, expected))
    for k, check in enumerate(request.checks):
        try:
            checks.append((edge.read_stream_id(check.stream_id), edge.expected(check)))  # type: ignore[arg-type]
        except InvalidArgumentError as e:
            raise _prefixed(e, f"checks[{k}].") from None
    return appends, checks


def append_response(result: AppendResult) -> streams_pb2.AppendEventsResponse:
    return streams_pb2.AppendEventsResponse(
        version=result.version,
        position=result.position,
        first_version=result.first_version,
        first_position=result.first_position,
        duplicate=result.duplicate,
    )


def query_stream_id(value: str) -> None:
    """A filtered read is a read of "$all" (empty says the same)."""
    if value not in ("", ALL_STREAM):
        raise InvalidArgumentError(
            "stream_id", 'a read with a query, stream_prefix or from_time reads "$all" (or leave stream_id empty)'
        )


def read_filter(edge: Edge, request: streams_pb2.ReadEventsRequest) -> ReadFilter | None:
    """The filters of a ReadEventsRequest, checked (INVALID_ARGUMENT naming the field); None
    for a plain read of a stream or of "$all"."""
    if not (request.HasField("query") or request.stream_prefix or request.HasField("from_time")):
        return None
    query_stream_id(request.stream_id)
    query = query_from_proto(request.query, "query") if request.HasField("query") else Query()
    prefix = ""
    if request.stream_prefix:
        prefix = edge.stream_prefix(request.stream_prefix)
    from_time_us = None
    if request.HasField("from_time"):
        seconds, nanos = request.from_time.seconds, request.from_time.nanos
        if not 0 <= nanos < 1_000_000_000:
            raise InvalidArgumentError("from_time.nanos", f"must be 0..999,999,999, got {nanos}")
        if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
            raise InvalidArgumentError("from_time.seconds", f"must be a time in years 1..9999, got {seconds}")
        from_time_us = seconds * 1_000_000 + -(-nanos // 1000)  # events are stamped in whole µs
    return ReadFilter(query, prefix, from_time_us)


def with_head(message: bytes, head: int) -> bytes:
    """A serialized ReadEventsResponse with its `head` field added."""
    return message + _HEAD + _wire.varint(head & _INT64)


async def read_query_messages(
    store: EventStore,
    read: ReadFilter,
    start: int | None,
    count: int,
    backward: bool,
    head: int | None,
    *,
    as_json: bool,
    limits: Limits,
    budget: SendBudget,
) -> AsyncIterator[bytes]:
    """ReadEventsResponse messages of a filtered read, each carrying the head of its first
    page (every later page is cut at the same head; `head` given: at that one); one empty
    message when nothing matches.
    Paced as `_reading.read_messages`: the next page is read once the client took a message."""
    if head is not None:
        # A resumed read's head (from a gateway): never past what the store holds, so no
        # client can name a head beyond the events it could have seen.
        head = min(head, await store.last_position())
    if read.from_time_us is not None:
        # Forward: the first event at or after the time; backward: the last at or before it
        # (-1: none, which reads nothing). A resumed read's from_version moves it further.
        if backward:
            at = await store.position_at(read.from_time_us + 1) - 1
            start = at if start is None else min(start, at)
        else:
            at = await store.position_at(read.from_time_us)
            start = at if start is None else max(start, at)
    cut = head

    async def fetch(key: int | None, wanted: int) -> list[RecordedEvent] | EncodedBatch:
        nonlocal cut
        if backward:
            page, cut = await store.read_query(read.query, key, wanted, True, cut, read.stream_prefix)
            return page
        # Forward, the page as the store framed it (read_query_batches), in one batch.
        batches, cut = await store.read_query_batches(read.query, key, wanted, wanted, cut, read.stream_prefix)
        return EncodedBatch.joined(batches) if batches else []

    sent = False
    async for message in paged_messages(
        fetch,
        start,
        count,
        backward,
        key_of=lambda e: e.position,
        as_json=as_json,
        limits=limits,
        budget=budget,
        frame=lambda framed: with_head(framed, cut),
        reserve=11,  # room for the head
    ):
        sent = True
        yield message
    if not sent:
        yield with_head(b"", cut if cut is not None else await store.last_position())
