"""The rules of a stream's lifecycle: deletion, metadata, and which events readers still see.

Owns: `StreamMetadata` (max_count, max_age, truncate_before and the user's JSON object, with
its own version), the deletion states (`LIVE`, `SOFT_DELETED`, `TOMBSTONED`), `visible` (is
one stored event still in view), `keep_visible` (a page of read rows, filtered), the checks of
a delete and of a metadata write (`plan_delete`, `check_metadata_write`), `hidden_cutoff`
(what the scavenger may remove) — plain functions: no I/O, no clock (time is passed in), no
awaits. Each backend reads what they need in its own transaction and carries out the answer.
docs/lifecycle.md says what each guarantees.
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.

Why reads filter here, in one place, rather than in SQL: the same rule then holds on both
backends and for every read path (stream, `$all`, query, subscriptions); the read statements
only add the stream's rule columns to each row (a LEFT JOIN that finds nothing for streams
without metadata), and a page whose rows are all hidden is followed by the next one, so a page
is empty only when nothing visible is left to read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gater.errors import (
    InvalidArgumentError,
    StreamDeletedError,
    StreamNotFoundError,
    WrongExpectedVersionError,
)

from .base import (
    EXPECT_ANY,
    EXPECT_NO_STREAM,
    EXPECT_STREAM_EXISTS,
    RecordedEvent,
    describe_expected,
)

__all__ = [
    "HIDE_ALL",
    "SCAVENGE_BATCH",
    "SCAVENGE_STEPS",
    "SCAVENGE_TRANSACTION_S",
    "LIVE",
    "MAX_CUSTOM_BYTES",
    "SOFT_DELETED",
    "TOMBSTONED",
    "DeletePlan",
    "StreamMetadata",
    "check_metadata_write",
    "expected_holds_deleted",
    "REDACTED",
    "ScavengeStatus",
    "keep_visible",
    "plan_delete",
    "redacted_record",
    "removable",
    "visible",
]

LIVE, SOFT_DELETED, TOMBSTONED = 0, 1, 2
"""streams.deleted: a stream in use, soft-deleted (reads as missing; an append brings it back,
continuing its versions), tombstoned (never written again)."""

HIDE_ALL = 1 << 62
"""The truncate_before of a tombstoned stream: every version is below it."""

SCAVENGE_BATCH = 1000
"""Positions one scavenge step examines."""
SCAVENGE_TRANSACTION_S = 0.005
"""One scavenge transaction runs steps until it has spent this long (at least one step, at
most SCAVENGE_STEPS): appends wait for about that much at most, never for a whole scavenge,
and a commit (a sync) is shared by several steps."""
SCAVENGE_STEPS = 16

REDACTED = b'{"$redacted":true}'
"""What a redacted event's data and metadata become (JSON)."""

MAX_CUSTOM_BYTES = 64 * 1024
"""The user's JSON object in a stream's metadata, as stored: at most 64 KiB."""


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """What a stream keeps. Every rule is optional (None: no limit); together they hide the
    union of what each hides."""

    max_count: int | None = None
    """Keep only the newest max_count events (>= 1)."""
    max_age_s: int | None = None
    """Hide events committed more than max_age_s seconds ago (>= 1)."""
    truncate_before: int | None = None
    """Hide every version below this one (>= 0). Soft delete raises it to version + 1."""
    custom: Mapping[str, Any] = field(default_factory=dict)
    """The user's JSON object, kept as given."""
    meta_version: int = -1
    """0 for the first metadata written, +1 per write; -1: the stream never had any."""
    deleted: int = LIVE
    """The stream's lifecycle state when read (LIVE, SOFT_DELETED, TOMBSTONED); not written."""

    def custom_json(self) -> str:
        return json.dumps(dict(self.custom), separators=(",", ":"), sort_keys=True)

    @property
    def max_age_us(self) -> int | None:
        return None if self.max_age_s is None else self.max_age_s * 1_000_000

    @staticmethod
    def from_row(meta_version: int, truncate_before: int | None, max_count: int | None,
                 max_age_us: int | None, custom: str) -> StreamMetadata:
        return StreamMetadata(
            max_count=max_count,
            max_age_s=None if max_age_us is None else max_age_us // 1_000_000,
            truncate_before=truncate_before,
            custom=json.loads(custom) if custom else {},
            meta_version=meta_version,
        )


def visible(version: int, created_us: int, truncate_before: int | None, max_count: int | None,
            max_age_us: int | None, stream_version: int | None, now_us: int) -> bool:
    """Whether a stored event is still in view under its stream's rules (all None: it is)."""
    if truncate_before is not None and version < truncate_before:
        return False
    if max_count is not None and stream_version is not None and version <= stream_version - max_count:
        return False
    return max_age_us is None or created_us >= now_us - max_age_us


def keep_visible(rows: Iterable[Sequence[Any]], now_us: int) -> list[RecordedEvent]:
    """The visible events of rows read with their rules: (position, stream_id, version,
    event_id, event_type, record, created_epoch, truncate_before, max_count, max_age_us,
    stream_version) — the column order of every read statement."""
    out = []
    make = RecordedEvent._make  # from the row's first six columns, as they are
    for row in rows:
        if (row[7] is None and row[8] is None and row[9] is None  # no rule: the common case
                or visible(row[2], row[6], row[7], row[8], row[9], row[10], now_us)):
            out.append(make(row[:6]))
    return out


def expected_holds_deleted(expected: int, version: int) -> bool:
    """An append's expected version against a soft-deleted stream at `version` (its last
    version before the delete). As in KurrentDB, the stream reads as missing, so NO_STREAM
    holds; ANY holds; the exact last version holds too (the append continues from it);
    STREAM_EXISTS does not."""
    return expected in (EXPECT_ANY, EXPECT_NO_STREAM) or expected == version


@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What a delete writes: the stream's new state and the truncate_before that hides it."""

    deleted: int
    truncate_before: int
    version: int
    """The stream's last version (what the response carries)."""


def plan_delete(stream_id: str, version: int | None, state: int | None, expected: int,
                truncate_before: int | None, tombstone: bool) -> DeletePlan:
    """Checks a delete of a stream at `version` in `state` (None, None: no such stream).

    StreamDeletedError for a tombstoned stream; StreamNotFoundError for a stream that never
    had events, and for a soft delete of one soft-deleted already (tombstoning a soft-deleted
    stream is allowed); WrongExpectedVersionError when `expected` does not hold against the
    version reads see (-1 for a soft-deleted stream)."""
    if expected < 0 and expected not in (EXPECT_ANY, EXPECT_NO_STREAM, EXPECT_STREAM_EXISTS):
        raise InvalidArgumentError("expected_version", f"unknown expected version {expected}")
    if state == TOMBSTONED:
        raise StreamDeletedError(stream_id)
    seen = -1 if version is None or state == SOFT_DELETED else version
    if version is None or version < 0 or (not tombstone and seen == -1):
        raise StreamNotFoundError(stream_id)
    holds = (
        expected == EXPECT_ANY
        or (expected == EXPECT_STREAM_EXISTS and seen >= 0)
        or expected == seen
    )
    if not holds:
        raise WrongExpectedVersionError(stream_id, describe_expected(expected), seen)
    if tombstone:
        return DeletePlan(TOMBSTONED, HIDE_ALL, version)
    return DeletePlan(SOFT_DELETED, max(truncate_before or 0, version + 1), version)


def check_metadata_write(stream_id: str, state: int | None, current_meta_version: int, expected: int,
                         metadata: StreamMetadata) -> int:
    """Checks a metadata write; returns the new meta_version. Its expected version is the
    metadata's own (EXPECT_ANY, EXPECT_NO_STREAM: no metadata yet, or an exact meta_version).
    A tombstoned stream's metadata is fixed: StreamDeletedError."""
    if state == TOMBSTONED:
        raise StreamDeletedError(stream_id)
    for name in ("max_count", "max_age_s"):
        value = getattr(metadata, name)
        if value is not None and value < 1:
            raise InvalidArgumentError(name, "must be at least 1 (unset: no limit)")
    if metadata.truncate_before is not None and not 0 <= metadata.truncate_before < HIDE_ALL:
        raise InvalidArgumentError("truncate_before", "must be a version >= 0")
    if not isinstance(metadata.custom, Mapping):
        raise InvalidArgumentError("custom", "must be a JSON object")
    if len(metadata.custom_json().encode()) > MAX_CUSTOM_BYTES:
        raise InvalidArgumentError("custom", f"must be at most {MAX_CUSTOM_BYTES} bytes as JSON")
    if expected < 0 and expected not in (EXPECT_ANY, EXPECT_NO_STREAM):
        raise InvalidArgumentError("expected_meta_version", f"unknown expected version {expected}")
    if expected != EXPECT_ANY and expected != current_meta_version:
        raise WrongExpectedVersionError(f"$$metadata:{stream_id}", describe_expected(expected), current_meta_version)
    return current_meta_version + 1


@dataclass(frozen=True, slots=True)
class ScavengeStatus:
    """Where a scavenge is (persisted with each step, so it resumes after a crash)."""

    running: bool
    next_position: int
    """Every position below this was examined by the scavenge under way (or the last one)."""
    removed: int
    """Events it removed so far."""
    started_epoch: int = 0


def removable(rows: Iterable[Sequence[Any]], now_us: int, head: int) -> list[int]:
    """Positions of rows (read_all_forward's columns) that no reader sees any more, except the
    head: the last event is kept on disk (hidden or not) so the store's last position, which
    SQLite reads off the end of the log, never moves back."""
    return [
        row[0]
        for row in rows
        if row[0] != head and not visible(row[2], row[6], row[7], row[8], row[9], row[10], now_us)
    ]


def redacted_record(record: bytes) -> bytes:
    """The record with its data and metadata replaced by REDACTED (JSON), keeping its id, type,
    stream, version, position, tags and commit time."""
    from exesdb.v1 import types_pb2  # the store frames records by hand; redaction is rare

    message = types_pb2.EventRecord.FromString(record)
    message.data = REDACTED
    message.metadata = REDACTED
    message.content_type = "application/json"
    message.metadata_content_type = "application/json"
    message.ClearField("data_json")
    message.ClearField("metadata_json")
    # Fields in number order, so created_epoch (11) stays near the end for RecordedEvent.
    return message.SerializeToString(deterministic=True)
