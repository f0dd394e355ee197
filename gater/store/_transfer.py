"""Export and import at the storage level: the view an export reads, and the plan of an import.

Owns: `ExportView` (what a backend gives an export: one consistent view of a store — its head,
its events in pages, its streams' lifecycle states, its snapshots and subscriptions),
`ImportedEvent` (one event to import, with everything the source stored: id, version,
position, created time, tags, the record), `StreamState` (one stream's lifecycle state as the
store keeps it: version, deletion state, metadata), `check_stream_states` and `plan_import`, a function with no I/O that decides what one import batch writes, given
the store's head, the stored records it overlaps and its streams' versions. Each backend's
writer reads those while it alone may write (SQLite: its writer thread; PostgreSQL: under the
store's advisory lock), calls `plan_import` and inserts the rows in the same transaction.
`prepare_import` does beforehand, away from the writer, what needs no store: every event's
row and tag rows, and each stream's first and last event in the batch — so that `plan_import`
checks a stream once rather than each event, while the writer (the import's bottleneck)
waits for nothing else.
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
import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from gater.errors import ImportMismatchError

from .base import Snapshot

__all__ = [
    "ExportView",
    "ImportPlan",
    "ImportedEvent",
    "PreparedImport",
    "StreamState",
    "check_stream_states",
    "held_range",
    "plan_import",
    "prepare_import",
]


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


@dataclass(frozen=True, slots=True)
class PreparedImport:
    """What `plan_import` may know of a batch before it meets the store (`prepare_import`)."""

    rows: list[tuple[int, str, int, str, str, int, bytes]]
    """Every event's row, as ImportPlan.rows holds them."""
    tag_rows: list[tuple[str, int]]
    """Every event's (tag, position), in position order."""
    firsts: dict[str, tuple[int, int]]
    """Stream id → (position, version) of its first event in the batch."""
    lasts: dict[str, tuple[int, int, int]]
    """Stream id → (position, version, created_epoch) of its last event in the batch."""
    in_order: bool
    """Positions strictly increase, and so do each stream's versions (else `plan_import`
    checks each event, and names the first out of order)."""

    def streams_after(self, head: int) -> list[str]:
        """The streams with an event past `head`: those the batch writes."""
        if not self.in_order:  # then a stream's last event in the batch may not be its furthest
            return list(dict.fromkeys(row[1] for row in self.rows if row[0] > head))
        return [stream_id for stream_id, last in self.lasts.items() if last[0] > head]


def prepare_import(events: Sequence[ImportedEvent]) -> PreparedImport:
    """The rows and per-stream bounds of a batch: no store needed, so the event loop does it
    (SQLite: before the writer's job; PostgreSQL: before the store's lock)."""
    firsts: dict[str, tuple[int, int]] = {}
    lasts: dict[str, tuple[int, int, int]] = {}
    previous = -1
    in_order = True
    for position, stream_id, version, _, _, created_epoch, _, _ in events:
        if position <= previous:
            in_order = False
        previous = position
        last = lasts.get(stream_id)
        if last is None:
            firsts[stream_id] = (position, version)
        elif version <= last[1]:
            in_order = False
        lasts[stream_id] = (position, version, created_epoch)
    return PreparedImport(
        rows=[event[:7] for event in events],
        tag_rows=[(tag, event[0]) for event in events for tag in event[7]],
        firsts=firsts,
        lasts=lasts,
        in_order=in_order,
    )


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
    prepared: PreparedImport | None = None,
) -> ImportPlan:
    """What the batch writes into a store whose last position is `head`; `stored` holds the
    records the store has in the batch's held range (`held_range`), `stream_versions` the
    current versions of the batch's streams that exist; `starts_file`: the batch's first event
    is the file's first; `prepared`: `prepare_import(events)`, for a check per stream instead
    of per event (the same plan, or the same error). Raises ImportMismatchError."""
    if not events:
        return ImportPlan(last_position=head)
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
    if prepared is not None and prepared.in_order:
        plan = _plan_by_stream(events, head, stored, stream_versions, prepared)
        if plan is not None:
            return plan
    return _plan_by_event(events, head, stored, stream_versions)


def _plan_by_stream(
    events: Sequence[ImportedEvent], head: int, stored: Mapping[int, bytes], stream_versions: Mapping[str, int],
    prepared: PreparedImport,
) -> ImportPlan | None:
    """The plan of a batch in order, checking each stream once; None when a check fails
    (`_plan_by_event` then finds the first event at fault).

    Why a stream's first written event is enough: its versions increase along the batch
    (`in_order`), so each later one follows the one before. A stream whose first event is held
    (at or before the head) has its next after its last held one; the store holds that held
    one, and every stored event of the held range is in the batch, so the stream's stored
    version is that last held version — unless the store says more, which is left to
    `_plan_by_event`."""
    held = bisect.bisect_right(prepared.rows, head, key=itemgetter(0))
    held_last: dict[str, int] = {}
    for position, stream_id, version, _, _, _, record, _ in events[:held]:
        if stored.get(position) != record:
            return None
        held_last[stream_id] = version
    if held != len(stored):
        return None
    plan = ImportPlan(last_position=head)
    written = plan.stream_versions
    for stream_id, (position, version, _) in prepared.lasts.items():
        if position <= head:
            continue  # held only: not written
        current = stream_versions.get(stream_id, -1)
        first_position, first_version = prepared.firsts[stream_id]
        if not (first_version > current if first_position > head else current <= held_last[stream_id]):
            return None
        if current == -1:
            plan.new_streams += 1
        written[stream_id] = version
    plan.rows = prepared.rows[held:]
    plan.tag_rows = prepared.tag_rows[bisect.bisect_right(prepared.tag_rows, head, key=itemgetter(1)):]
    plan.record_bytes = sum(len(row[6]) for row in plan.rows)
    if plan.rows:
        plan.last_position = plan.rows[-1][0]
    return plan


def _plan_by_event(
    events: Sequence[ImportedEvent], head: int, stored: Mapping[int, bytes], stream_versions: Mapping[str, int]
) -> ImportPlan:
    plan = ImportPlan(last_position=head)
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
