"""Export to and import from transfer files: the client side of Stores.ExportStore / ImportEvents.

Owns: reading and writing the portable transfer format (docs/transfer.md: varint-length-
delimited exesdb.v1.TransferEntry messages — a header, the events in position order, the
snapshots, the subscriptions, an end entry), `export_to_file` (streaming, resumable from the
last complete event entry) and `import_from_file` (bounded batches, resumable after the
target's head), and `TransferSummary`.
Must not import anything from gater but gater.errors and this package.

An export appends the `entries` of each ExportStore message to the file as they come: the
node frames them already, so the client neither parses nor builds event messages. An import
slices each event's record out of its entry (an event entry is field 2, then the record) and
sends records as they are; the node checks them.
"""

from __future__ import annotations

import asyncio
import collections
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import grpc
from google.protobuf.message import DecodeError

from exesdb.v1 import stores_pb2, types_pb2

from ..errors import ImportMismatchError, InvalidArgumentError, StoreNotFoundError
from . import _convert as convert

__all__ = [
    "FORMAT_VERSION",
    "IMPORT_BATCH",
    "TransferSummary",
    "export_to_file",
    "import_from_file",
    "read_entries",
]

FORMAT_VERSION = 1
_EVENT = 0x12  # TransferEntry.event: field 2, length-delimited
_READ_BYTES = 4 * 1024 * 1024
IMPORT_BATCH = 10_000
"""Events per ImportEvents call: as many as the node takes in one. Each batch is a transaction
and, on SQLite, a commit: a 200,000-event import went 36.6k -> 39.8k events/s (mean of five)
from 5,000 to 10,000 (docs/BENCHMARKS.md). An append to the store being imported into waits
for one batch's transaction at most: twice as long as with 5,000 (a 5,000-event SQLite job
took 95-105 ms here)."""
_IMPORT_BATCH_BYTES = 3 * 1024 * 1024
"""A batch is cut once it passes this many record bytes (well under the 16 MiB request limit)."""

Progress = Callable[[int], None]
"""Called with the number of positions just passed (to the file, or into the store): the events
written and the gaps a scavenged source has between them, so that progress reaches the head
(`on_start(head, done)` gives the total as a position)."""


@dataclass(frozen=True, slots=True)
class TransferSummary:
    store_id: str
    """The store exported (export), or imported into (import)."""
    head: int
    """The last position the file holds (-1: no events)."""
    events: int
    """Events this call moved (an export resumed or an import resumed: only the rest)."""
    snapshots: int
    subscriptions: int
    complete: bool
    """The file ends with its end entry (an interrupted export's file does not)."""


class _FileError(InvalidArgumentError):
    def __init__(self, path: Path, why: str) -> None:
        super().__init__("file", f"{path}: {why}")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_entries(f: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """(serialized TransferEntry, file offset just after it) for every complete entry; stops at
    the end of the file or at an entry cut short (an interrupted write)."""
    buffer, i, base = b"", 0, 0  # `base`: the file offset of buffer[0]
    while True:
        # One entry: a varint length, then that many bytes.
        length = shift = 0
        j = i
        while True:
            if j >= len(buffer):
                more = f.read(_READ_BYTES)
                if not more:
                    return
                base += i
                buffer, j, i = buffer[i:] + more, j - i, 0
            byte = buffer[j]
            j += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 63:
                raise ValueError("an entry length is not a varint")
        while j + length > len(buffer):
            more = f.read(max(_READ_BYTES, j + length - len(buffer)))
            if not more:
                return
            base += i
            buffer, j, i = buffer[i:] + more, j - i, 0
        yield buffer[j : j + length], base + j + length
        i = j + length


def _event_record(entry: bytes) -> bytes | None:
    """The serialized EventRecord of an event entry, sliced out; None for another entry."""
    if not entry or entry[0] != _EVENT:
        return None
    length = shift = 0
    i = 1
    while True:
        byte = entry[i]
        i += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if i + length != len(entry):  # not one field alone: let protobuf read it
        return stores_pb2.TransferEntry.FromString(entry).event.SerializeToString()
    return entry[i:]


def _position(record: bytes) -> int:
    """An EventRecord's position (field 3), read off its first fields: a record as a store
    writes it has stream_id (1), version (2), position (3) first (a 0 is not written);
    anything else is parsed."""
    i, n = 0, len(record)
    while i < n:
        key = record[i]
        if key not in (0x0A, 0x10, 0x18):
            break
        i += 1
        value = shift = 0
        while True:  # the field's varint: its value, or its length (stream_id)
            byte = record[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x18:
            return value
        if key == 0x0A:
            i += value
    else:
        return 0
    return types_pb2.EventRecord.FromString(record).position


def _header(entry: bytes, path: Path) -> stores_pb2.TransferHeader:
    try:
        message = stores_pb2.TransferEntry.FromString(entry)
    except DecodeError:  # another kind of file, whose first bytes happened to read as a length
        raise _FileError(path, "is not a transfer file (its first entry does not parse)") from None
    if message.WhichOneof("entry") != "header":
        raise _FileError(path, "is not a transfer file (its first entry is no header)")
    if message.header.format_version != FORMAT_VERSION:
        raise _FileError(path, f"has format version {message.header.format_version}; this client reads {FORMAT_VERSION}")
    return message.header


# -- export ---------------------------------------------------------------------------------------


def _resume_point(path: Path) -> tuple[stores_pb2.TransferHeader | None, int, int, bool]:
    """(header, position after the last complete event, offset after its entry, complete) of
    a file an export may continue (none: no file there)."""
    if not path.exists():
        return None, 0, 0, False
    with path.open("rb") as f:
        entries = read_entries(f)
        first = next(entries, None)
        if first is None:
            return None, 0, 0, False
        header = _header(first[0], path)
        after, offset, last = 0, first[1], None
        for entry, end in entries:
            if entry and entry[0] == _EVENT:
                last, offset = entry, end
            elif stores_pb2.TransferEntry.FromString(entry).WhichOneof("entry") == "end":
                return header, 0, end, True
        if last is not None:  # positions may have gaps: resume after the last one written
            record = _event_record(last)
            assert record is not None
            after = _position(record) + 1
        return header, after, offset, False


async def export_to_file(
    stub: Any, metadata: Any, store_id: str, path: Path, *, resume: bool = False, on_start: Callable[[int, int], None] | None = None,
    on_progress: Progress | None = None,
) -> TransferSummary:
    """Writes the store into `path`. `resume`: a file an earlier export left (interrupted) is
    continued after its last complete event; a complete one is left as it is. `on_start(head,
    done)` learns the total before events flow."""
    start, header, offset = 0, None, 0
    if resume:
        header, start, offset, complete = await asyncio.to_thread(_resume_point, path)
        if header is not None and header.store_id != store_id:
            raise _FileError(path, f"holds an export of store {header.store_id!r}, not {store_id!r}")
        if complete and header is not None:
            return TransferSummary(store_id, header.head, 0, 0, 0, True)
    request = stores_pb2.ExportStoreRequest(store_id=store_id, from_position=start)
    if header is not None:
        request.to_position = header.head
    call = stub.ExportStore(request, metadata=metadata)
    moved, covered = 0, start
    tail = b""
    with path.open("r+b" if header is not None else "wb") as f:
        f.seek(offset)
        f.truncate()
        try:
            async for message in call:
                if message.HasField("header"):
                    if header is None:
                        header = message.header
                        raw = stores_pb2.TransferEntry(header=header).SerializeToString()
                        f.write(_varint(len(raw)) + raw)
                    if on_start is not None:
                        on_start(header.head, start)
                    continue
                f.write(message.entries)
                moved += message.events
                if on_progress is not None and message.events:
                    on_progress(message.last_position + 1 - covered)
                    covered = message.last_position + 1
                tail = message.entries  # the last message holds the snapshots, subscriptions and end
        except grpc.aio.AioRpcError as e:
            raise convert.error_from_status(e) from None
        finally:
            call.cancel()
            f.flush()
            os.fsync(f.fileno())
    assert header is not None
    return TransferSummary(store_id, header.head, moved, *_tail_counts(tail))


def _tail_counts(entries: bytes) -> tuple[int, int, bool]:
    snapshots = subscriptions = 0
    complete = False
    for entry, _ in read_entries(io.BytesIO(entries)):
        if entry and entry[0] == _EVENT:
            continue
        kind = stores_pb2.TransferEntry.FromString(entry).WhichOneof("entry")
        snapshots += kind == "snapshot"
        subscriptions += kind == "subscription"
        complete = complete or kind == "end"
    return snapshots, subscriptions, complete


# -- import ---------------------------------------------------------------------------------------


async def import_from_file(
    stub: Any, metadata: Any, store_id: str, path: Path, *, create: Callable[[], Any] | None = None,
    on_start: Callable[[int, int], None] | None = None, on_progress: Progress | None = None,
    timeout_s: float | None = None, batch_size: int = IMPORT_BATCH,
) -> TransferSummary:
    """Writes the file into the store (created first by `create()` when it does not exist):
    the store must be empty or hold a prefix of the file; the import goes on after its head."""
    async def send(request: stores_pb2.ImportEventsRequest) -> stores_pb2.ImportEventsResponse:
        try:
            return await stub.ImportEvents(request, metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as e:
            raise convert.error_from_status(e) from None

    snapshots = subscriptions = 0
    complete = False
    with path.open("rb") as f:
        entries = read_entries(f)
        try:
            first = next(entries, None)
        except ValueError:  # no varint: another kind of file
            raise _FileError(path, "is not a transfer file (it does not start with an entry length)") from None
        if first is None:
            raise _FileError(path, "is empty")
        header = _header(first[0], path)  # before the store is made: a wrong file leaves none behind
        try:
            head = await _head(stub, metadata, store_id, timeout_s)
        except StoreNotFoundError:
            if create is None:
                raise
            await create()
            head = -1
        with _Pipeline(send, on_progress, head) as pipeline:
            if head > header.head:
                raise ImportMismatchError(
                    header.head + 1, head, f"the store holds more events than the file ({header.head + 1})"
                )
            if on_start is not None:
                on_start(header.head, max(head, 0))
            # When the store holds events, each batch starts with the last one it holds: the
            # node compares it (the overlap that proves the store is a prefix of this file).
            records: list[bytes] = []
            size, overlap = 0, None
            others: list[stores_pb2.TransferEntry] = []
            for record, position, message in _parsed(entries, path):
                if record is None:
                    if message.WhichOneof("entry") == "end":
                        complete = True
                        break
                    others.append(message)
                    continue
                if position < head:  # positions increase, with gaps where the source scavenged
                    continue
                if position == head:
                    overlap = record
                    continue
                if not records and overlap is not None:
                    records.append(overlap)
                records.append(record)
                size += len(record)
                if len(records) >= batch_size or size >= _IMPORT_BATCH_BYTES:
                    await pipeline.put(
                        stores_pb2.ImportEventsRequest(store_id=store_id, records=records, starts_file=head < 0 and not pipeline.sent)
                    )
                    overlap, records, size = records[-1], [], 0
            if not records and overlap is not None and not pipeline.sent:
                records = [overlap]  # nothing left to write: still compare the store's last event
            if records:
                await pipeline.put(
                    stores_pb2.ImportEventsRequest(store_id=store_id, records=records, starts_file=head < 0 and not pipeline.sent)
                )
            moved = await pipeline.drain()
            request = stores_pb2.ImportEventsRequest(store_id=store_id)
            size = 0
            for message in others:
                if message.WhichOneof("entry") == "stream":
                    request.streams.append(message.stream)
                    size += message.stream.ByteSize()
                elif message.WhichOneof("entry") == "snapshot":
                    request.snapshots.append(message.snapshot)
                    size += message.snapshot.ByteSize()
                    snapshots += 1
                elif message.WhichOneof("entry") == "subscription":
                    request.subscriptions.append(message.subscription)
                    size += message.subscription.ByteSize()
                    subscriptions += 1
                if size >= _IMPORT_BATCH_BYTES:
                    await send(request)
                    request, size = stores_pb2.ImportEventsRequest(store_id=store_id), 0
            if request.snapshots or request.subscriptions or request.streams:
                await send(request)
    return TransferSummary(store_id, header.head, moved, snapshots, subscriptions, complete)


def _parsed(
    entries: Iterator[tuple[bytes, int]], path: Path
) -> Iterator[tuple[bytes, int, None] | tuple[None, int, stores_pb2.TransferEntry]]:
    """The file's entries after its header: (event record, its position, None), or (None, -1,
    the entry) for the others. A damaged file is a _FileError that says where, never a
    protobuf or index error from somewhere inside."""
    offset = 0
    try:
        for entry, end in entries:
            record = _event_record(entry)
            if record is None:
                yield None, -1, stores_pb2.TransferEntry.FromString(entry)
            else:
                yield record, _position(record), None
            offset = end
    except (DecodeError, IndexError, ValueError):
        raise _FileError(path, f"is damaged: the entry after byte {offset:,} does not parse") from None


class _Pipeline:
    """Import batches with at most `depth` in flight, answered in order: the node parses and
    checks the next batch while the one before commits. Batches are written in the order they
    are taken (SQLite: the writer's queue; PostgreSQL: the store's lock); one taken before its
    predecessor committed meets a head before its overlap and is refused, and is then sent
    again once its predecessor is answered."""

    def __init__(
        self, send: Callable[[stores_pb2.ImportEventsRequest], Any], on_progress: Progress | None, head: int,
        depth: int = 2,
    ) -> None:
        self._send, self._on_progress, self._depth = send, on_progress, depth
        self._covered = max(head, 0)  # what on_start reported done
        self._in_flight: collections.deque[asyncio.Task[Any]] = collections.deque()
        self.sent = False
        self.moved = 0

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self._in_flight:  # a failure left them: their outcome no longer matters
            task.cancel()

    async def put(self, request: stores_pb2.ImportEventsRequest) -> None:
        if len(self._in_flight) >= self._depth:
            await self._settle_first()
        previous = self._in_flight[-1] if self._in_flight else None
        self._in_flight.append(asyncio.create_task(self._write(request, previous)))
        self.sent = True

    async def _write(self, request: stores_pb2.ImportEventsRequest, previous: asyncio.Task[Any] | None) -> Any:
        try:
            return await self._send(request)
        except ImportMismatchError:
            if previous is None:
                raise
            await asyncio.wait([previous])  # its own failure is raised where it is settled
            return await self._send(request)

    async def _settle_first(self) -> None:
        answer = await self._in_flight.popleft()
        self.moved += answer.imported
        if self._on_progress is not None and answer.last_position >= self._covered:
            self._on_progress(answer.last_position + 1 - self._covered)
            self._covered = answer.last_position + 1

    async def drain(self) -> int:
        while self._in_flight:
            await self._settle_first()
        return self.moved


async def _head(stub: Any, metadata: Any, store_id: str, timeout_s: float | None) -> int:
    try:
        status = await stub.GetStoreStatus(
            stores_pb2.GetStoreStatusRequest(store_id=store_id), metadata=metadata, timeout=timeout_s
        )
    except grpc.aio.AioRpcError as e:
        raise convert.error_from_status(e) from None
    return status.last_position
