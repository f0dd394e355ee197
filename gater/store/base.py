"""The storage contract: one interface that the SQLite and PostgreSQL backends implement.

Owns: the domain records (NewEvent, RecordedEvent, Snapshot, ...), the expected-version
constants and the abstract `StorageBackend` / `EventStore`. The conformance suite in
tests/store/ is written against this module only.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Records are encoded once, at append time, in the exesdb.v1 `EventRecord` wire format
(`RecordedEvent.encoded`): reads and subscriptions ship those bytes as they are, so the hot
paths never build protobuf messages.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import _wire
from ._query import AppendCondition, Query, QueryItem

if TYPE_CHECKING:
    from ._lifecycle import ScavengeStatus, StreamMetadata
    from ._transfer import ExportView, ImportedEvent, StreamState

__all__ = [
    "ALL_STREAM",
    "EXPECT_ANY",
    "EXPECT_NO_STREAM",
    "EXPECT_STREAM_EXISTS",
    "AppendCondition",
    "AppendResult",
    "EncodedBatch",
    "EventStore",
    "Lease",
    "NewEvent",
    "Query",
    "QueryItem",
    "RecordedEvent",
    "Snapshot",
    "StorageBackend",
    "StoreConfig",
    "StoreInfo",
    "StoreStatus",
    "StreamAppend",
    "describe_expected",
    "encoded_batches",
]

ALL_STREAM = "$all"
"""The pseudo-stream of every event of a store in global order."""

# Expected versions: an exact version is >= 0 (or EXPECT_NO_STREAM, which is -1 and means
# "version -1"); the other two are checks, not versions.
EXPECT_NO_STREAM = -1
EXPECT_ANY = -2
EXPECT_STREAM_EXISTS = -4


def describe_expected(expected: int) -> str:
    """How an expected version reads in an error message and in WrongExpectedVersion."""
    return {EXPECT_ANY: "any", EXPECT_NO_STREAM: "no_stream", EXPECT_STREAM_EXISTS: "stream_exists"}.get(
        expected, str(expected)
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append, already validated (event_id is a lower-case hyphenated UUID)."""

    event_id: str
    event_type: str
    data: bytes = b""
    metadata: bytes = b""
    content_type: str = "application/json"
    metadata_content_type: str = "application/json"
    tags: tuple[str, ...] = ()
    """Short strings ("course:c1") that DCB queries select by; the rules are
    `_query.check_tags` (the store refuses others with InvalidArgumentError)."""


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """One stream's part of an atomic multi-stream append."""

    stream_id: str
    events: Sequence[NewEvent]
    expected: int = EXPECT_ANY


class RecordedEvent(NamedTuple):
    """A stored event: the fields subscriptions match on, plus its wire encoding.

    A named tuple, not a frozen dataclass: reads make one per event from a database row, and
    a tuple is made in a quarter of the time (0.4 against 1.6 µs, a tenth of a catch-up's
    cost per event)."""

    position: int
    stream_id: str
    version: int
    event_id: str
    event_type: str
    encoded: bytes
    """The exesdb.v1.EventRecord, serialized."""

    @property
    def created_epoch_us(self) -> int:
        """The commit time (µs since the epoch), read from the end of `encoded` without
        decoding it: stored records end with created_epoch (field 11, tag 0x58, a varint;
        `_records.encode_record`). A record that does not is decoded by protobuf."""
        record = self.encoded
        end = len(record) - 1
        i = end
        while i > 0 and record[i - 1] & 0x80:
            i -= 1
        if i > 0 and record[i - 1] == 0x58 and end - i < 10 and not record[end] & 0x80:
            value = 0
            for shift, byte in enumerate(record[i : end + 1]):
                value |= (byte & 0x7F) << (7 * shift)
            return value
        from exesdb.v1 import types_pb2  # only for a record not framed by encode_record

        return int(types_pb2.EventRecord.FromString(record).created_epoch)


class EncodedBatch(NamedTuple):
    """Consecutive events of a read as the wire carries them: each record framed as field 1
    (tag, length, record), one after the other — the body of a ReadEventsResponse or of a
    SubscribeResponse's EventBatch, ready to be sent without touching each event again."""

    count: int
    last_position: int
    """The global position of its last event (in the read's order)."""
    created_epoch_us: int
    """The commit time of its last event (µs since the epoch)."""
    framed: bytes

    @classmethod
    def of(cls, events: Sequence[RecordedEvent]) -> EncodedBatch:
        """The batch of `events` (at least one), framed here."""
        last = events[-1]
        return cls(len(events), last.position, last.created_epoch_us, _wire.read_response([e.encoded for e in events]))

    @classmethod
    def joined(cls, batches: Sequence[EncodedBatch]) -> EncodedBatch:
        """Consecutive batches (at least one) as one."""
        if len(batches) == 1:
            return batches[0]
        last = batches[-1]
        return cls(sum(b.count for b in batches), last.last_position, last.created_epoch_us, b"".join(b.framed for b in batches))

    def records(self) -> list[bytes]:
        """Its records, in order (for what must look at each: JSON, a message too big)."""
        return _wire.split_records(self.framed)


def encoded_batches(events: Sequence[RecordedEvent], size: int) -> list[EncodedBatch]:
    """`events` in batches of at most `size`, in order."""
    return [EncodedBatch.of(events[i : i + size]) for i in range(0, len(events), size)]


@dataclass(frozen=True, slots=True)
class AppendResult:
    first_version: int
    version: int
    first_position: int
    position: int
    duplicate: bool = False
    """True when the events were already in the stream (an idempotent repeat)."""
    others: tuple[AppendResult, ...] = ()
    """A multi-stream append: the results of its other streams, in request order."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    source_uuid: str
    stream_uuid: str
    source_version: int
    source_type: str = ""
    data: bytes = b""
    metadata: bytes = b""
    created_epoch: int = 0
    """Microseconds since the Unix epoch; set by the store when recorded."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who dispatches a persistent subscription. `fence` grows with every change of owner;
    state writes carry it, so a node that lost the lease cannot overwrite its successor's."""

    held: bool
    """True when the asking node holds it now."""
    fence: int
    owner_node: str
    owner_address: str


@dataclass(frozen=True, slots=True)
class StoreInfo:
    store_id: str
    created_epoch: int


@dataclass(frozen=True, slots=True)
class StoreStatus:
    store_id: str
    stream_count: int
    event_count: int
    last_position: int
    snapshot_count: int
    subscription_count: int
    size_bytes: int
    open: bool = False
    """Whether the store held resources on this node when asked (SQLite: a writer thread or
    database connections; PostgreSQL: a writer task). A store not in use holds none; its next
    call opens what it needs again."""
    open_files: int = 0
    """File descriptors this node held open for the store when asked (SQLite: its database,
    WAL and shared-memory files, per connection). PostgreSQL: 0 — its connections are pooled
    per node, not per store."""
    threads: int = 0
    """Threads this node ran for the store when asked (SQLite: its writer thread while open).
    PostgreSQL: 0."""


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_id: str
    backend: str
    location: str
    durability: str
    created_epoch: int


class EventStore(abc.ABC):
    """One store: a namespace of streams with one global order.

    Every method may raise gater.errors.StorageUnavailableError when storage cannot be
    reached, StorageFullError when a write finds no room (nothing was written), and
    StoreNotFoundError once the store is removed (or closed with its backend) — every method,
    without exception.

    Reads and listings take a `limit`: below 1 is InvalidArgumentError, above the backend's
    `Limits.max_page_size` (events: also `read_batch`) it is clipped.
    """

    store_id: str

    @abc.abstractmethod
    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected: int, condition: AppendCondition | None = None
    ) -> AppendResult:
        """Appends atomically if `expected` holds (EXPECT_* or an exact version) and, with a
        `condition`, if no event matching its query has a position after `condition.after`
        (else AppendConditionFailedError with the first such position and the head). The
        idempotent-repeat rule below comes first: a repeat is a duplicate, not a conflict.

        Raises WrongExpectedVersionError (with the current version) when it does not hold,
        DuplicateEventIdError when an id is used by another event. When every event id is
        already in this stream as one consecutive run in the same order, nothing is written
        and the original result is returned with duplicate=True (whatever `expected` says).
        Concurrent appends are group-committed: one transaction and one sync for many.
        """

    @abc.abstractmethod
    async def append_streams(
        self,
        appends: Sequence[StreamAppend],
        checks: Sequence[tuple[str, int]] = (),
        condition: AppendCondition | None = None,
    ) -> list[AppendResult]:
        """Appends to several streams atomically: every stream's expected version, every
        (stream, expected version) of `checks` (streams not written) and the condition hold,
        or nothing is written and the first failure is raised. The events take contiguous
        positions, stream after stream in request order; one result per stream. A stream may
        appear once (written or checked). An exact repeat of the whole call is a duplicate."""

    @abc.abstractmethod
    async def read_stream(
        self, stream_id: str, start: int | None, limit: int, backward: bool = False
    ) -> list[RecordedEvent]:
        """One page of a stream from version `start` (inclusive; None: first or last event),
        at most `limit` events (1..read_batch). A start past the end is clipped: forward
        gives [], backward starts at the last event. A missing stream gives []."""

    @abc.abstractmethod
    async def read_all(self, start: int | None, limit: int, backward: bool = False) -> list[RecordedEvent]:
        """One page of "$all" from global position `start`, with read_stream's rules."""

    @abc.abstractmethod
    async def read_query(
        self,
        query: Query,
        start: int | None,
        limit: int,
        backward: bool = False,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[RecordedEvent], int]:
        """One page of the events of "$all" that match a DCB query (see `_query`) — and, with
        a `stream_prefix`, belong to a stream whose id starts with it (`_query.check_prefix`)
        — from global position `start` with read_all's rules, answered from the tag, type and
        category indexes; and the head the page was cut at: `head` when given (the next pages
        of one read pass the first page's), else the last position when read. Only events at
        or before the head are returned, so "nothing matches after head" is exactly what the
        page says — a conditional append may take it as its `after`."""

    async def read_query_batches(
        self,
        query: Query,
        start: int | None,
        limit: int,
        batch: int,
        head: int | None = None,
        stream_prefix: str = "",
    ) -> tuple[list[EncodedBatch], int]:
        """read_query's page forward, as the wire carries it: its events in batches of at
        most `batch` (1..limit), each framed once. What a catch-up sends as it is; a backend
        may frame in its database instead (SQLite does), so that no event of the page
        becomes a Python object."""
        page, head = await self.read_query(query, start, limit, head=head, stream_prefix=stream_prefix)
        return encoded_batches(page, batch), head

    @abc.abstractmethod
    async def position_at(self, epoch_us: int) -> int:
        """Where the events committed at or after `epoch_us` (µs since the epoch) begin: the
        first position whose event's created_epoch is >= it, or the last position + 1 when
        every event is older (`_query.TimeBisection`: log2(head) primary-key look-ups). A
        read forward from a time starts here; backward, at position_at(t + 1) - 1."""

    @abc.abstractmethod
    async def stream_version(self, stream_id: str) -> int:
        """The stream's version, -1 when it does not exist or is deleted."""

    # -- the lifecycle of streams (store/_lifecycle.py, docs/lifecycle.md) ---------------------
    # Reads (stream, "$all", query) and so subscriptions see only the events a stream's
    # deletion state and metadata leave in view, from the moment those are written.

    @abc.abstractmethod
    async def delete_stream(self, stream_id: str, expected: int, tombstone: bool) -> int:
        """Soft-deletes (reads answer as for a missing stream; an append brings it back,
        continuing its versions) or tombstones (never written again: StreamDeletedError) a
        stream whose version holds `expected`; returns its last version. StreamNotFoundError,
        WrongExpectedVersionError, StreamDeletedError as `_lifecycle.plan_delete` says."""

    @abc.abstractmethod
    async def stream_metadata(self, stream_id: str) -> StreamMetadata:
        """The stream's metadata (meta_version -1: none written) and its deletion state."""

    @abc.abstractmethod
    async def set_stream_metadata(self, stream_id: str, metadata: StreamMetadata, expected: int) -> int:
        """Replaces the stream's metadata if its meta version is `expected` (EXPECT_ANY,
        EXPECT_NO_STREAM: none yet, or exact; else WrongExpectedVersionError); returns the new
        meta version. Reads honour it at once."""

    @abc.abstractmethod
    async def scavenge(
        self, restart: bool = False, progress: Callable[[ScavengeStatus], None] | None = None
    ) -> ScavengeStatus:
        """Removes from disk the events no reader sees any more (deleted, truncated, expired),
        a bounded step at a time between appends, and returns when it has passed the head.
        Positions of the remaining events never change. Continues a scavenge that was under
        way (after a crash) unless `restart`. `progress(status)` after each step but the
        last (its progress is saved by then)."""

    @abc.abstractmethod
    async def scavenge_status(self) -> ScavengeStatus:
        """Where the scavenge under way (or the last one) is."""

    @abc.abstractmethod
    async def redact(self, stream_id: str, version: int) -> None:
        """Replaces one event's data and metadata with the redaction marker, keeping its id,
        type, stream, version, position and tags. NotFoundError when there is no such event."""

    @abc.abstractmethod
    async def last_position(self) -> int:
        """The last global position, -1 when the store is empty."""

    @abc.abstractmethod
    async def list_streams(self, after: str, limit: int) -> list[tuple[str, int]]:
        """(stream_id, version) in stream id order, ids > `after` ("" for the first page)."""

    @abc.abstractmethod
    async def record_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """Stores a snapshot (replacing one at the same key); returns it with created_epoch."""

    @abc.abstractmethod
    async def read_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> Snapshot:
        """The snapshot at `version`, or the highest version when None.
        Raises SnapshotNotFoundError."""

    @abc.abstractmethod
    async def delete_snapshot(self, source_uuid: str, stream_uuid: str, version: int | None) -> int:
        """Deletes one version, or all of them when None; returns how many were deleted."""

    @abc.abstractmethod
    async def list_snapshots(
        self,
        source_uuid: str | None,
        stream_uuid: str | None,
        after: tuple[str, str, int] | None,
        limit: int,
    ) -> list[Snapshot]:
        """Snapshots ordered by (source_uuid, stream_uuid, source_version), after the key
        `after`, filtered by source and/or stream; data and metadata are left empty."""

    @abc.abstractmethod
    async def status(self) -> StoreStatus:
        """Counts and sizes."""

    @abc.abstractmethod
    async def config(self) -> StoreConfig:
        """How this store is configured."""

    # -- persistent subscriptions: definitions and delivery state live with the events ------

    @abc.abstractmethod
    async def save_subscription(self, name: str, definition: dict[str, Any], state: dict[str, Any]) -> bool:
        """Creates (with `state`) or updates the definition of a named subscription, keeping
        the stored state of an existing one. Returns True when it was created."""

    @abc.abstractmethod
    async def load_subscriptions(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """name -> (definition, state) of every persistent subscription of this store."""

    @abc.abstractmethod
    async def save_subscription_state(self, name: str, state: dict[str, Any], fence: int | None = None) -> None:
        """Stores a subscription's delivery state (its checkpoint never moves backwards:
        a state with a lower checkpoint than the stored one is ignored). With a `fence`, the
        write happens only while that lease is still the current one, else LeaseLostError;
        and SubscriptionNotFoundError when there is no such subscription."""

    @abc.abstractmethod
    async def acquire_lease(self, name: str, node_id: str, address: str, ttl_s: float) -> Lease:
        """Takes or renews the lease on dispatching subscription `name`: granted when it is
        free, expired, or already this node's. A store served by one process (SQLite) always
        grants it. Raises SubscriptionNotFoundError."""

    @abc.abstractmethod
    async def release_lease(self, name: str, node_id: str, fence: int) -> None:
        """Gives the lease up (another node may take it at once). A single-process store has
        nothing to release."""

    @abc.abstractmethod
    async def remove_subscription(self, name: str) -> None:
        """Raises SubscriptionNotFoundError."""

    # -- export and import (store/_transfer.py) ---------------------------------------------

    @abc.abstractmethod
    def export_view(self) -> contextlib.AbstractAsyncContextManager[ExportView]:
        """`async with store.export_view() as view`: one consistent, read-only view of the
        whole store (its head, events, snapshots, subscriptions) while appends go on."""

    @abc.abstractmethod
    async def import_events(
        self, events: Sequence[ImportedEvent], snapshots: Sequence[Snapshot] = (), streams: Sequence[StreamState] = (),
        *, starts_file: bool = False,
    ) -> tuple[int, int]:
        """Writes one import batch in one transaction (the rules are `_transfer.plan_import`'s;
        ImportMismatchError when it does not fit), preserving every field of each event, then
        the streams' lifecycle states (`_transfer.StreamState`: version, deletion state,
        metadata, as given) and the snapshots with their created times. `starts_file`: the first
        event is the file's first (an empty store takes a batch past position 0 only then). Returns (the last position after it, events
        written); waiters and subscribers see the new head as after an append."""

    @abc.abstractmethod
    def known_position(self) -> int:
        """The last position this node knows to be committed, without I/O (-1: none known):
        what metrics and subscription lags read at scrape time. SQLite: exact. PostgreSQL: as
        of the last commit, notification or read of the head seen on this node."""

    @abc.abstractmethod
    async def wait_for_position(self, after: int, timeout_s: float) -> int:
        """Waits until the last position is > `after` or the timeout passes; returns the
        last position either way. Wakes as soon as a commit (from any node) is known.
        Raises StoreNotFoundError once the store is removed — also to callers already
        waiting, at once — so nobody waits on (or spins over) a store that is gone."""


class StorageBackend(abc.ABC):
    """Where stores live. Lifecycle: `await start()`, then use, then `await stop()` (safe to
    call twice); also works as `async with`."""

    name: str
    """"sqlite" or "postgres"."""

    @property
    @abc.abstractmethod
    def cluster_id(self) -> str:
        """The id of the storage this backend uses: nodes sharing it report the same id."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> StorageBackend:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abc.abstractmethod
    async def check(self, timeout_s: float = 2.0) -> None:
        """Returns when the storage answers now; raises StorageUnavailableError (saying why)
        when it does not answer within `timeout_s` or cannot serve calls. Node health asks
        this every second or so: it must stay cheap, and must not open (or keep open) any
        store."""

    @abc.abstractmethod
    async def create_store(self, store_id: str) -> StoreInfo:
        """Raises StoreAlreadyExistsError, or StorageFullError when there is no room — then
        nothing of the store is left behind, and a retry succeeds once there is."""

    @abc.abstractmethod
    async def remove_store(self, store_id: str) -> None:
        """Removes a store and all it holds. Raises StoreNotFoundError."""

    @abc.abstractmethod
    async def list_stores(self) -> list[StoreInfo]: ...

    async def count_stores(self) -> int:
        """How many stores there are (a backend may count without opening them)."""
        return len(await self.list_stores())

    @abc.abstractmethod
    async def open_store(self, store_id: str) -> EventStore:
        """The store's handle, made once and cached. Raises StoreNotFoundError. A handle holds
        no thread or file by itself: a backend opens what a call needs, and may close it again
        once the store is idle, transparently."""
