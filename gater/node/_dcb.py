"""The node's side of the Dynamic Consistency Boundary: converting queries and append
conditions at the edge, and query reads as a paced stream of messages that carry the head.

Owns: `query_from_proto`, `condition_from_proto`, `read_query_messages`.
Must not import grpc's runtime or gater.gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
    EventStore,
    NewEvent,
    Query,
    RecordedEvent,
    StreamAppend,
)
from ._convert import Edge
from ._reading import SendBudget, paged_messages

__all__ = [
    "append_response",
    "condition_from_proto",
    "more_streams",
    "query_from_proto",
    "query_stream_id",
    "read_query_messages",
    "with_head",
]

_HEAD = b"\x10"  # ReadEventsResponse.head: field 2, varint
_INT64 = (1 << 64) - 1


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
    """A query read is a read of "$all" (empty says the same)."""
    if value not in ("", ALL_STREAM):
        raise InvalidArgumentError("stream_id", 'a read with a query reads "$all" (or leave stream_id empty)')


def with_head(message: bytes, head: int) -> bytes:
    """A serialized ReadEventsResponse with its `head` field added."""
    return message + _HEAD + _wire.varint(head & _INT64)


async def read_query_messages(
    store: EventStore,
    query: Query,
    start: int | None,
    count: int,
    backward: bool,
    head: int | None,
    *,
    as_json: bool,
    limits: Limits,
    budget: SendBudget,
) -> AsyncIterator[bytes]:
    """ReadEventsResponse messages of a query read, each carrying the head of its first page
    (every later page is cut at the same head; `head` given: at that one); one empty message
    when nothing matches.
    Paced as `_reading.read_messages`: the next page is read once the client took a message."""
    if head is not None:
        # A resumed read's head (from a gateway): never past what the store holds, so no
        # client can name a head beyond the events it could have seen.
        head = min(head, await store.last_position())
    cut = head

    async def fetch(key: int | None, wanted: int) -> list[RecordedEvent]:
        nonlocal cut
        page, cut = await store.read_query(query, key, wanted, backward, cut)
        return page

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
        frame=lambda records: with_head(_wire.read_response(records), cut),
        reserve=11,  # room for the head
    ):
        sent = True
        yield message
    if not sent:
        yield with_head(b"", cut if cut is not None else await store.last_position())
