"""The pure core of a group commit: which appends of a batch go ahead, and what they write.

Owns: `plan_batch`, a function with no I/O, no clock and no awaits. The writer reads the
store's head (last position, the versions of the streams involved, which of the batch's
event ids already exist) under the store's lock, calls `plan_batch`, and writes the rows it
returns in the same transaction. Because every check is made here, against state read under
the lock, before anything is inserted, one failing append never aborts the transaction the
others share — no savepoints needed.
Must not import asyncpg, grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gater.errors import DuplicateEventIdError, InvalidArgumentError, WrongExpectedVersionError

from .._records import created_tail, encode_record
from ..base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    AppendResult,
    NewEvent,
    describe_expected,
)

__all__ = ["AppendRequest", "BatchPlan", "EventRow", "ExistingEvent", "canonical_ids", "plan_batch"]


@dataclass(frozen=True, slots=True)
class AppendRequest:
    stream_id: str
    events: Sequence[NewEvent]
    expected: int


@dataclass(frozen=True, slots=True)
class ExistingEvent:
    """Where an event id already is."""

    stream_id: str
    version: int
    position: int


@dataclass(frozen=True, slots=True)
class EventRow:
    position: int
    stream_id: str
    version: int
    event_id: str
    event_type: str
    record: bytes


@dataclass(slots=True)
class BatchPlan:
    outcomes: list[AppendResult | Exception] = field(default_factory=list)
    """One per request, in request order: its result or the error to raise to its caller."""
    rows: list[EventRow] = field(default_factory=list)
    stream_versions: dict[str, int] = field(default_factory=dict)
    """The new version of every stream written."""
    new_streams: int = 0
    last_position: int = -1
    record_bytes: int = 0


def canonical_ids(requests: Sequence[AppendRequest]) -> list[str]:
    """The batch's event ids in canonical form (valid UUIDs only), for the lookup query."""
    ids = []
    for request in requests:
        for event in request.events:
            try:
                ids.append(str(uuid.UUID(event.event_id)))
            except (ValueError, AttributeError, TypeError):
                pass
    return ids


def _check_ids(request: AppendRequest) -> list[str] | Exception:
    ids: list[str] = []
    seen: set[str] = set()
    for i, event in enumerate(request.events):
        try:
            event_id = str(uuid.UUID(event.event_id))
        except (ValueError, AttributeError, TypeError):
            return InvalidArgumentError(f"events[{i}].event_id", "must be a UUID")
        if event_id in seen:
            return DuplicateEventIdError(f"events[{i}].event_id", event_id)
        seen.add(event_id)
        ids.append(event_id)
    return ids


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
) -> BatchPlan:
    """Decides each request in order, as if they were appended one after the other.

    `stream_versions` holds the current version of the batch's streams that exist;
    `existing` maps canonical event ids already stored to where they are.
    """
    plan = BatchPlan(last_position=last_position)
    versions = dict(stream_versions)
    known = dict(existing)  # grows with the events planned in this batch
    tail = created_tail(created_epoch_us)  # the commit time, framed once for the batch
    for request in requests:
        plan.outcomes.append(_plan_one(request, plan, versions, known, tail))
    return plan


def _plan_one(
    request: AppendRequest,
    plan: BatchPlan,
    versions: dict[str, int],
    known: dict[str, ExistingEvent],
    tail: bytes,
) -> AppendResult | Exception:
    stream_id, expected = request.stream_id, request.expected
    if not request.events:
        return InvalidArgumentError("events", "must not be empty")
    if expected < 0 and expected not in (EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS):
        return InvalidArgumentError("expected_version", f"unknown expected version {expected}")
    ids = _check_ids(request)
    if isinstance(ids, Exception):
        return ids

    found = [known.get(event_id) for event_id in ids]
    if all(found):
        # An idempotent repeat: every id already in this stream, as one consecutive run.
        first = found[0]
        if all(
            hit.stream_id == stream_id and hit.version == first.version + i
            for i, hit in enumerate(found)
        ):
            last = found[-1]
            return AppendResult(first.version, last.version, first.position, last.position, True)
    for i, hit in enumerate(found):
        if hit is not None:
            return DuplicateEventIdError(f"events[{i}].event_id", ids[i])

    current = versions.get(stream_id, -1)
    if not _expected_holds(expected, current):
        return WrongExpectedVersionError(stream_id, describe_expected(expected), current)

    first_version, first_position = current + 1, plan.last_position + 1
    for i, (event, event_id) in enumerate(zip(request.events, ids, strict=True)):
        version, position = first_version + i, first_position + i
        if event.event_id != event_id:  # stored and shipped in canonical spelling
            event = dataclasses.replace(event, event_id=event_id)
        record = encode_record(stream_id, version, position, event, tail)
        plan.rows.append(EventRow(position, stream_id, version, event_id, event.event_type, record))
        plan.record_bytes += len(record)
        known[event_id] = ExistingEvent(stream_id, version, position)
    if current == -1:
        plan.new_streams += 1
    last_version = first_version + len(ids) - 1
    versions[stream_id] = last_version
    plan.stream_versions[stream_id] = last_version
    plan.last_position = first_position + len(ids) - 1
    return AppendResult(first_version, last_version, first_position, plan.last_position)
