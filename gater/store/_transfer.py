"""Export and import at the storage level: the view an export reads, and the plan of an import.

Owns: `ExportView` (what a backend gives an export: one consistent view of a store — its head,
its events in pages, its streams' lifecycle states, its snapshots and subscriptions),
`ImportedEvent` (one event to import, with everything the source stored: id, version,
position, created time, tags, the record), `StreamState` (one stream's lifecycle state as the
store keeps it: version, deletion state, metadata), `check_stream_states` and `plan_import`, a function with no I/O that decides what one import batch writes, given
the store's head, the stored records it overlaps and its streams' versions. Each backend's
writer reads those while it alone may write (SQLite: its writer thread; PostgreSQL: under the
store's advisory lock), calls `plan_import` and inserts the rows in the same transaction.
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.

The rules of an import batch (every one checked before anything is written):
- its events are at strictly increasing positions — with gaps where the source scavenged;
- events at positions the store holds must equal the stored records byte for byte, and the
  store holds no position of that range the batch does not (a repeated or resumed batch is
  then a no-op);
- when the store is not empty, the batch starts at or before the store's head: the overlap is
  what proves the store holds a prefix of the same source (a batch into a store with other
  events fails at the first stored record that differs); when it is empty, the batch starts at
  position 0 or says it starts the file (`starts_file`: its first position is past 0 when the
  source scavenged there) — so a later batch that overtook the first is refused, not written;
- each event past the head has a version above its stream's (gaps again: scavenged versions).
Anything else is ImportMismatchError (FAILED_PRECONDITION) naming the position.

Stream states come after the events (the file holds them after its events; a batch writes them
after its own): each stream's version, deletion state and metadata become the source's, so the
target hides what the source hid — events still on the source's disk but hidden are imported
as stored, and hidden again by the state. A stored version past the state's is a mismatch.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gater.errors import ImportMismatchError

from .base import Snapshot

__all__ = ["ExportView", "ImportPlan", "ImportedEvent", "StreamState", "check_stream_states", "held_range", "plan_import"]


class ImportedEvent(NamedTuple):
    """One event to import, as its source stored it (a tuple: an import makes millions)."""

    position: int
    stream_id: str
    version: int
    event_id: str
    event_type: str
    created_epoch: int
    record: bytes
    """The exesdb.v1.EventRecord, serialized as the store keeps it."""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamState:
    """One stream's lifecycle state as the store keeps it (streams and stream_meta rows)."""

    stream_id: str
    version: int
    """The stream's last version (-1: no events ever: metadata alone)."""
    deleted: int
    """_lifecycle.LIVE, SOFT_DELETED or TOMBSTONED."""
    meta_version: int
    """-1: no metadata (then the rules below are None and custom is "{}")."""
    truncate_before: int | None
    max_count: int | None
    max_age_us: int | None
    custom: str
    """The user's JSON object, as stored."""


@dataclass(slots=True)
class ImportPlan:
    rows: list[tuple[int, str, int, str, str, int, bytes]] = field(default_factory=list)
    """(position, stream_id, version, event_id, event_type, created_epoch, record) to insert."""
    tag_rows: list[tuple[str, int]] = field(default_factory=list)
    stream_versions: dict[str, int] = field(default_factory=dict)
    """The new version of every stream written."""
    new_streams: int = 0
    record_bytes: int = 0
    last_position: int = -1


class ExportView(abc.ABC):
    """One consistent view of a store for an export, open for the duration of one export:
    what `head` says is what the pages give, whatever is appended meanwhile."""

    head: int
    """The store's last position when the view was opened (-1: empty)."""

    @abc.abstractmethod
    async def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """(position, record) of the events from `start` on, at most `limit`, none past `head`."""

    @abc.abstractmethod
    async def count(self, last: int) -> int:
        """How many events the view holds up to position `last` (positions have gaps once a
        scavenge ran)."""

    @abc.abstractmethod
    async def streams(self) -> list[StreamState]:
        """The lifecycle state of every stream that has one (metadata, a delete), by stream id."""

    @abc.abstractmethod
    async def snapshots(self) -> list[Snapshot]:
        """Every snapshot of the store, with its data."""

    @abc.abstractmethod
    async def subscriptions(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(name, definition, state) of every persistent subscription."""


def held_range(events: Sequence[ImportedEvent], head: int) -> tuple[int, int] | None:
    """The positions (first, last) of the batch that the store holds already, whose stored
    records the writer reads for `plan_import` to compare; None when there are none."""
    if not events or events[0].position > head:
        return None
    return events[0].position, min(head, events[-1].position)


def plan_import(
    events: Sequence[ImportedEvent],
    *,
    head: int,
    stored: Mapping[int, bytes],
    stream_versions: Mapping[str, int],
    starts_file: bool = False,
) -> ImportPlan:
    """What the batch writes into a store whose last position is `head`; `stored` holds the
    records the store has in the batch's held range (`held_range`), `stream_versions` the
    current versions of the batch's streams that exist; `starts_file`: the batch's first event
    is the file's first. Raises ImportMismatchError."""
    plan = ImportPlan(last_position=head)
    if not events:
        return plan
    first = events[0].position
    if head >= 0 and first > head:
        raise ImportMismatchError(
            first, head, "the store is not empty: a batch must start at or before its head, so the "
            "stored events can be compared with the imported ones",
        )
    if head < 0 and first > 0 and not starts_file:
        raise ImportMismatchError(
            first, head, "the store is empty: a batch that starts past position 0 must be the file's first (starts_file)"
        )
    previous = -1
    versions = dict(stream_versions)
    written = plan.stream_versions
    rows, tag_rows = plan.rows, plan.tag_rows
    compared = 0
    record_bytes = 0
    for event in events:  # a million times for an import: each field read once, by unpacking
        position, stream_id, version, _, _, _, record, tags = event
        if position <= previous:
            raise ImportMismatchError(position, head, f"positions must be strictly increasing: {position} follows {previous}")
        previous = position
        if position <= head:
            if stored.get(position) != record:
                raise ImportMismatchError(
                    position, head, "the store holds a different event there: it is not a prefix of the import"
                )
            compared += 1
            continue
        current = versions.get(stream_id, -1)
        if version <= current:
            raise ImportMismatchError(
                position, head, f"event version {version} of stream {stream_id!r} does not "
                f"follow the stream's version {current}",
            )
        if current == -1:
            plan.new_streams += 1
        versions[stream_id] = written[stream_id] = version
        rows.append(event[:7])  # (position, stream_id, version, event_id, event_type, created_epoch, record)
        for tag in tags:
            tag_rows.append((tag, position))
        record_bytes += len(record)
    plan.record_bytes = record_bytes
    if rows:
        plan.last_position = rows[-1][0]
    if compared != len(stored):  # each compared position was found in `stored`: one is left over
        compared_positions = {e.position for e in events if e.position <= head}
        extra = min(p for p in stored if p not in compared_positions)
        raise ImportMismatchError(
            extra, head, "the store holds an event the import does not there: it is not a prefix of the import"
        )
    return plan


def check_stream_states(states: Sequence[StreamState], stream_versions: Mapping[str, int], head: int) -> None:
    """Raises ImportMismatchError when the store holds a stream past the version its state says
    (`stream_versions`: the stored versions, after the batch's events)."""
    for state in states:
        current = stream_versions.get(state.stream_id, -1)
        if current > state.version:
            raise ImportMismatchError(
                head + 1, head, f"stream {state.stream_id!r} is at version {current} in the store, past the "
                f"import's {state.version}: it is not a prefix of the import",
            )
