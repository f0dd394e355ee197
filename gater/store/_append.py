"""The one append core of every backend: which appends of a batch go ahead, and what they write.

Owns: `plan_batch`, a function with no I/O, no clock and no awaits, and the records it takes
and gives. Each backend's writer reads the store's head — the last position, the versions of
the batch's streams and, when needed, where the batch's event ids already are — while it alone
may write (SQLite: its one writer thread in an immediate transaction; PostgreSQL: under the
store's advisory lock), calls `plan_batch`, and inserts the rows it returns in the same
transaction. Every rule of an append lives here and nowhere else: event ids (valid, canonical,
not repeated), the expected version, idempotent repeats, duplicate ids, dense versions and
positions, the encoded record. Because every check is made before anything is inserted, one
failing append never aborts the transaction the others share.

A conditional append (DCB) is decided here too: the writer asks the database, in the same
transaction, for the first committed event after the condition's `after` that matches its
query (`conflicts`), and the planner adds what the batch's earlier appends would write; it is
checked after the idempotent repeat and the expected version, so a retried conditional append
that already succeeded answers duplicate=true.

Writers plan optimistically with `existing={}` (most appends carry new ids) and look the ids
up only when the database's unique index objects or a request failed (a failure may be an
idempotent repeat, which only the look-up reveals), then plan again.
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from gater.errors import (
    AppendConditionFailedError,
    DuplicateEventIdError,
    InvalidArgumentError,
    StreamDeletedError,
    WrongExpectedVersionError,
)

from ._lifecycle import SOFT_DELETED, TOMBSTONED, expected_holds_deleted
from ._query import AppendCondition, Query, check_tags, first_positions_sql, matches, positions_sql
from ._records import created_tail, encode_record
from .base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    AppendResult,
    NewEvent,
    StreamAppend,
    describe_expected,
)

__all__ = [
    "MAX_STREAM_CHECKS",
    "AppendRequest",
    "BatchPlan",
    "EventRow",
    "ExistingEvent",
    "canonical_ids",
    "conflict_queries",
    "conflict_query",
    "plan_batch",
    "request_streams",
    "streams_request",
    "streams_results",
]

MAX_STREAM_CHECKS = 1_000
"""Checks on streams not written that one multi-stream append may carry."""


@dataclass(frozen=True, slots=True)
class AppendRequest:
    stream_id: str
    events: Sequence[NewEvent]
    expected: int
    condition: AppendCondition | None = None
    more: tuple[AppendRequest, ...] = ()
    """Further streams of an atomic multi-stream append (their own `condition`, `more` and
    `checks` are not used)."""
    checks: tuple[tuple[str, int], ...] = ()
    """(stream id, expected version) of streams not written that must hold too."""


class ExistingEvent(NamedTuple):
    """Where an event id already is."""

    stream_id: str
    version: int
    position: int


EventRow = tuple[int, str, int, str, str, int, bytes]
"""One row to insert: (position, stream_id, version, event_id, event_type, created_epoch,
record) — the column order of SQLite's INSERT. Plain tuples, because one is made per event on
the writer's hot path (a named tuple costs several times more to build)."""


@dataclass(slots=True)
class BatchPlan:
    outcomes: list[AppendResult | Exception] = field(default_factory=list)
    """One per request, in request order: its result or the error to raise to its caller."""
    rows: list[EventRow] = field(default_factory=list)
    tag_rows: list[tuple[str, int]] = field(default_factory=list)
    """(tag, position) of every tag of the rows."""
    stream_versions: dict[str, int] = field(default_factory=dict)
    """The new version of every stream written."""
    new_streams: int = 0
    last_position: int = -1
    record_bytes: int = 0
    created_epoch_us: int = 0
    """The commit time of every row."""
    written: list[tuple[int, str, tuple[str, ...]]] | None = None
    """(position, event_type, tags) of the rows, kept only when a request has a condition."""


def streams_request(
    appends: Sequence[StreamAppend], checks: Sequence[tuple[str, int]], condition: AppendCondition | None
) -> AppendRequest:
    """The one request of an atomic multi-stream append (EventStore.append_streams)."""
    if not appends:
        raise InvalidArgumentError("streams", "at least one stream to append to is needed")
    first, *rest = appends
    return AppendRequest(
        first.stream_id, tuple(first.events), first.expected, condition,
        more=tuple(AppendRequest(a.stream_id, tuple(a.events), a.expected) for a in rest),
        checks=tuple(checks),
    )


def streams_results(result: AppendResult) -> list[AppendResult]:
    """append_streams' answer: one result per stream, in request order."""
    return [dataclasses.replace(result, others=()), *result.others]


def request_streams(requests: Sequence[AppendRequest]) -> list[str]:
    """Every stream the batch writes or checks, sorted: the writer reads their versions."""
    streams = {r.stream_id for r in requests}
    for r in requests:
        if r.more or r.checks:
            streams.update(part.stream_id for part in r.more)
            streams.update(stream_id for stream_id, _ in r.checks)
    return sorted(streams)


def canonical_ids(requests: Sequence[AppendRequest]) -> list[str]:
    """The batch's event ids in canonical form (valid UUIDs only), for the lookup query."""
    ids = []
    for request in requests:
        for event in (e for part in (request, *request.more) for e in part.events):
            try:
                ids.append(_canonical(event.event_id))
            except (ValueError, AttributeError, TypeError):
                pass
    return ids


def _to_check(requests: Sequence[AppendRequest], last_position: int) -> list[tuple[int, tuple[Query, int, int]]]:
    """(request index, (query, low, high)) of each request whose condition could fail: some
    event stored after its `after`, up to `last_position`."""
    return [
        (i, (r.condition.fail_if_events_match, r.condition.after + 1, last_position))
        for i, r in enumerate(requests)
        if r.condition is not None and r.condition.after < last_position
    ]


def conflict_queries(
    requests: Sequence[AppendRequest], last_position: int, dialect: str, store_id: str | None = None
) -> list[tuple[int, str, list[object]]]:
    """(request index, statement, parameters) finding, for each request with a condition, the
    first stored position after its `after` (up to `last_position`) whose event matches its
    query — the `conflicts` of plan_batch. Run by the writer in its transaction."""
    return [
        (i, *positions_sql(q, dialect=dialect, low=low, high=high, limit=1, backward=False, store_id=store_id))
        for i, (q, low, high) in _to_check(requests, last_position)
    ]


def conflict_query(
    requests: Sequence[AppendRequest], last_position: int, dialect: str, store_id: str | None = None
) -> tuple[list[int], str, list[object]] | None:
    """conflict_queries in one statement, for a writer a round trip away from its database:
    (the request indexes, the statement, its parameters); its one row holds each listed
    request's first conflicting position, or NULL. None when no request has a condition to check."""
    checked = _to_check(requests, last_position)
    if not checked:
        return None
    sql, params = first_positions_sql([spec for _, spec in checked], dialect, store_id)
    return [i for i, _ in checked], sql, params


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_UUID = re.compile(_UUID)
_CANONICAL_UUIDS = re.compile(rf"(?:{_UUID}\n)*{_UUID}")
"""Canonical ids joined by newlines: one regex call checks a whole request."""


def _canonical(event_id: str) -> str:
    """The id in canonical spelling; ValueError (or TypeError) when it is not a UUID."""
    # Most ids arrive canonical already (clients and the node make them so): a regex is
    # several times cheaper than parsing, and gives the same answer for those.
    if _CANONICAL_UUID.fullmatch(event_id):
        return event_id
    return str(uuid.UUID(event_id))


def _check_ids(request: AppendRequest) -> list[str] | Exception:
    """The request's ids in canonical spelling, or the error naming the first bad one."""
    # The common case in a few C calls: every id canonical already, none repeated. (The
    # length check makes sure no id smuggled in a newline and a second UUID.)
    ids = [event.event_id for event in request.events]
    try:
        joined = "\n".join(ids)
    except TypeError:
        joined = ""  # an id that is no string: the loop below names it
    if (
        len(joined) == 37 * len(ids) - 1
        and _CANONICAL_UUIDS.fullmatch(joined)
        and len(set(ids)) == len(ids)
    ):
        return ids
    ids = []
    seen: set[str] = set()
    for i, event in enumerate(request.events):
        try:
            event_id = _canonical(event.event_id)
        except (ValueError, AttributeError, TypeError):
            return InvalidArgumentError(f"events[{i}].event_id", "must be a UUID")
        if event_id in seen:
            return DuplicateEventIdError(f"events[{i}].event_id", event_id)
        seen.add(event_id)
        ids.append(event_id)
    return ids


def _version_check(stream_id: str, expected: int, current: int, deleted: Mapping[str, int]) -> Exception | None:
    """The failure of an expected version against a stream (None: it holds), with the
    lifecycle's rules for deleted streams (store/_lifecycle.py)."""
    state = deleted.get(stream_id)
    if state == TOMBSTONED:
        return StreamDeletedError(stream_id)
    if state == SOFT_DELETED:
        if expected_holds_deleted(expected, current):
            return None
        return WrongExpectedVersionError(stream_id, describe_expected(expected), -1)
    if not _expected_holds(expected, current):
        return WrongExpectedVersionError(stream_id, describe_expected(expected), current)
    return None


def _expected_holds(expected: int, current: int) -> bool:
    if expected == EXPECT_ANY:
        return True
    if expected == EXPECT_STREAM_EXISTS:
        return current >= 0
    return expected == current  # EXPECT_NO_STREAM is -1, the version of a missing stream


def plan_batch(
    requests: Sequence[AppendRequest],
    *,
    last_position: int,
    stream_versions: Mapping[str, int],
    existing: Mapping[str, ExistingEvent],
    created_epoch_us: int,
    conflicts: Mapping[int, int] | None = None,
    deleted: Mapping[str, int] | None = None,
) -> BatchPlan:
    """Decides each request in order, as if they were appended one after the other.

    `stream_versions` holds the current version of the batch's streams that exist, and
    `deleted` the lifecycle state of those that are soft-deleted or tombstoned;
    `existing` maps canonical event ids already stored to where they are; `conflicts` maps
    the index of a request with a condition to the first stored position after its `after`
    that matches its query (requests with none are absent).
    """
    plan = BatchPlan(last_position=last_position, created_epoch_us=created_epoch_us)
    if any(r.condition is not None for r in requests):
        plan.written = []
    versions = dict(stream_versions)
    known: dict[str, tuple[str, int, int]] = dict(existing)  # grows with the events planned here
    tail = created_tail(created_epoch_us)  # the commit time, framed once for the batch
    stored = conflicts or {}
    states = dict(deleted or {})  # a write brings a soft-deleted stream back: popped then
    for i, request in enumerate(requests):
        plan.outcomes.append(_plan_one(request, plan, versions, known, tail, stored.get(i), states))
    return plan


def _condition_failure(condition: AppendCondition, stored: int | None, plan: BatchPlan) -> Exception | None:
    """The failure of a condition, given the first stored conflict and the batch so far."""
    if stored is not None:
        return AppendConditionFailedError(stored, plan.last_position)
    query = condition.fail_if_events_match
    for position, event_type, tags in plan.written or ():
        if position > condition.after and matches(query, event_type, tags):
            return AppendConditionFailedError(position, plan.last_position)
    return None


def _normalised_tags(request: AppendRequest) -> list[NewEvent] | Exception:
    """The request's events with their tags checked and sorted (the same objects when they
    carry none, the common case)."""
    events = list(request.events)
    for i, event in enumerate(events):
        if event.tags:
            try:
                tags = check_tags(event.tags, f"events[{i}].tags")
            except InvalidArgumentError as e:
                return e
            if tags != event.tags:
                events[i] = dataclasses.replace(event, tags=tags)
    return events


def _plan_one(
    request: AppendRequest,
    plan: BatchPlan,
    versions: dict[str, int],
    known: dict[str, tuple[str, int, int]],
    tail: bytes,
    stored_conflict: int | None,
    deleted: dict[str, int],
) -> AppendResult | Exception:
    if request.more or request.checks:
        return _plan_streams(request, plan, versions, known, tail, stored_conflict, deleted)
    stream_id, expected = request.stream_id, request.expected
    if not request.events:
        return InvalidArgumentError("events", "must not be empty")
    if expected < 0 and expected not in (EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS):
        return InvalidArgumentError("expected_version", f"unknown expected version {expected}")
    ids = _check_ids(request)
    if isinstance(ids, Exception):
        return ids
    events = _normalised_tags(request)
    if isinstance(events, Exception):
        return events

    # `known` values are (stream_id, version, position): ExistingEvent or plain tuples.
    found = [known.get(event_id) for event_id in ids]
    if all(found):
        repeat = _repeat(stream_id, found)
        if repeat is not None:
            return repeat
    for i, hit in enumerate(found):
        if hit is not None:
            return DuplicateEventIdError(f"events[{i}].event_id", ids[i])

    failure = _version_check(stream_id, expected, versions.get(stream_id, -1), deleted)
    if failure is not None:
        return failure
    if request.condition is not None:
        failure = _condition_failure(request.condition, stored_conflict, plan)
        if failure is not None:
            return failure
    deleted.pop(stream_id, None)
    return _write(stream_id, events, ids, plan, versions, known, tail)


def _repeat(stream_id: str, found: Sequence[tuple[str, int, int] | None]) -> AppendResult | None:
    """The original result when every id is already in this stream as one consecutive run."""
    first = found[0]
    if all(hit[0] == stream_id and hit[1] == first[1] + i for i, hit in enumerate(found)):  # type: ignore[index]
        last = found[-1]
        return AppendResult(first[1], last[1], first[2], last[2], True)  # type: ignore[index]
    return None


def _write(
    stream_id: str,
    events: Sequence[NewEvent],
    ids: Sequence[str],
    plan: BatchPlan,
    versions: dict[str, int],
    known: dict[str, tuple[str, int, int]],
    tail: bytes,
) -> AppendResult:
    """Plans the rows of one stream's events, checked already, at the next positions."""
    current = versions.get(stream_id, -1)
    first_version, first_position = current + 1, plan.last_position + 1
    version, position = first_version, first_position
    rows, size, created, written = plan.rows, 0, plan.created_epoch_us, plan.written
    for event, event_id in zip(events, ids, strict=True):
        if event.event_id != event_id:  # stored and shipped in canonical spelling
            event = dataclasses.replace(event, event_id=event_id)
        record = encode_record(stream_id, version, position, event, tail)
        rows.append((position, stream_id, version, event_id, event.event_type, created, record))
        if event.tags:
            plan.tag_rows.extend((tag, position) for tag in event.tags)
        if written is not None:
            written.append((position, event.event_type, event.tags))
        size += len(record)
        known[event_id] = (stream_id, version, position)
        version += 1
        position += 1
    plan.record_bytes += size
    if current == -1:
        plan.new_streams += 1
    last_version = first_version + len(ids) - 1
    versions[stream_id] = last_version
    plan.stream_versions[stream_id] = last_version
    plan.last_position = first_position + len(ids) - 1
    return AppendResult(first_version, last_version, first_position, plan.last_position)


def _prefixed(error: Exception, prefix: str) -> Exception:
    """An error about a part of a multi-stream append, its field named from the request."""
    if isinstance(error, DuplicateEventIdError):
        return DuplicateEventIdError(prefix + error.field, error.event_id)
    if isinstance(error, InvalidArgumentError) and type(error) is InvalidArgumentError:
        return InvalidArgumentError(prefix + error.field, error.description)
    return error


def _plan_streams(
    request: AppendRequest,
    plan: BatchPlan,
    versions: dict[str, int],
    known: dict[str, tuple[str, int, int]],
    tail: bytes,
    stored_conflict: int | None,
    deleted: dict[str, int],
) -> AppendResult | Exception:
    """An atomic multi-stream append: every part and check holds, or nothing is written. Its
    events take contiguous positions, part after part; the result is the first part's, with
    the others' in `others`. Fields are named as the request names them: the first part is
    the request's own stream, the others `more_streams[k]` (as AppendEventsRequest names them),
    the checks `checks[k]`."""
    parts = [AppendRequest(request.stream_id, request.events, request.expected), *request.more]
    prefixes = ["", *(f"more_streams[{k}]." for k in range(len(request.more)))]
    seen_streams: set[str] = set()
    checked: list[tuple[list[str], list[NewEvent]]] = []
    all_ids: dict[str, str] = {}
    for part, prefix in zip(parts, prefixes, strict=True):
        if part.stream_id in seen_streams:
            return InvalidArgumentError(f"{prefix}stream_id", f"stream {part.stream_id!r} appears twice")
        seen_streams.add(part.stream_id)
        if not part.events:
            return InvalidArgumentError(f"{prefix}events", "must not be empty")
        if part.expected < 0 and part.expected not in (EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS):
            return InvalidArgumentError(f"{prefix}expected_version", f"unknown expected version {part.expected}")
        ids = _check_ids(part)
        if isinstance(ids, Exception):
            return _prefixed(ids, prefix)
        events = _normalised_tags(part)
        if isinstance(events, Exception):
            return _prefixed(events, prefix)
        for i, event_id in enumerate(ids):
            if event_id in all_ids:
                return DuplicateEventIdError(f"{prefix}events[{i}].event_id", event_id)
            all_ids[event_id] = prefix
        checked.append((ids, events))
    for k, (stream_id, _) in enumerate(request.checks):
        if stream_id in seen_streams:
            return InvalidArgumentError(f"checks[{k}].stream_id", f"stream {stream_id!r} is written or checked already")
        seen_streams.add(stream_id)

    found = [[known.get(event_id) for event_id in ids] for ids, _ in checked]
    if all(all(hits) for hits in found):
        repeats = [_repeat(part.stream_id, hits) for part, hits in zip(parts, found, strict=True)]
        if all(r is not None for r in repeats):
            first, *others = repeats
            return dataclasses.replace(first, others=tuple(others))  # type: ignore[arg-type]
    for (ids, _), hits, prefix in zip(checked, found, prefixes, strict=True):
        for i, hit in enumerate(hits):
            if hit is not None:
                return DuplicateEventIdError(f"{prefix}events[{i}].event_id", ids[i])

    for stream_id, expected in [(part.stream_id, part.expected) for part in parts] + list(request.checks):
        failure = _version_check(stream_id, expected, versions.get(stream_id, -1), deleted)
        if failure is not None:
            return failure
    if request.condition is not None:
        failure = _condition_failure(request.condition, stored_conflict, plan)
        if failure is not None:
            return failure
    for part in parts:
        deleted.pop(part.stream_id, None)
    results = [
        _write(part.stream_id, events, ids, plan, versions, known, tail)
        for part, (ids, events) in zip(parts, checked, strict=True)
    ]
    first, *others = results
    return dataclasses.replace(first, others=tuple(others))
