"""What a fuzz run did to the node, and what must be true of its stores afterwards.

Owns: `Outcome` (one call: its request as the server decoded it, its status, its responses),
`Ledger` (the writes that were answered: appends, snapshots, stores created and removed) and
`check_stores` — after the run, through a node's API: `$all` positions are dense from 0, each
stream's versions are contiguous from 0 and match GetVersion and ListStreams, every stored
event belongs to exactly one append that was answered OK (and every such append's events are
there, as sent), so an append answered with an error wrote nothing; the stores are the ones
created and not removed; every snapshot listed is readable and is the last one recorded.
Nothing here generates requests.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from exesdb.v1 import snapshots_pb2, stores_pb2, streams_pb2, types_pb2
from tests.conftest import Stubs

__all__ = ["Ledger", "Outcome", "check_stores"]

DEFAULT_STORE = "default"
JSON = "application/json"


@dataclass
class Outcome:
    """One call and its answer. `request` is None when the bytes did not decode."""

    method: str
    request: Message | None
    code: grpc.StatusCode
    details: str
    responses: list[Message] = field(default_factory=list)

    def describe(self) -> str:
        shown = repr(self.request) if self.request is not None else "<undecodable bytes>"
        if len(shown) > 2000:
            shown = shown[:2000] + f"… ({len(shown):,} characters)"
        return f"{self.method} answered {self.code.name} {self.details!r} to:\n{shown}"


def _python(struct: struct_pb2.Struct) -> dict[str, Any]:
    def value(v: struct_pb2.Value) -> Any:
        kind = v.WhichOneof("kind")
        if kind == "struct_value":
            return _python(v.struct_value)
        if kind == "list_value":
            return [value(i) for i in v.list_value.values]
        return None if kind in (None, "null_value") else getattr(v, kind)

    return {k: value(v) for k, v in struct.fields.items()}


def _body(message: Message, raw: str, as_json: str, oneof: str | None) -> tuple[str, Any]:
    """("json", value) or ("bytes", data) for what the server should have stored."""
    chosen = message.WhichOneof(oneof) if oneof else (as_json if message.HasField(as_json) else raw)
    if chosen == as_json:
        return "json", _python(getattr(message, as_json))
    return "bytes", getattr(message, raw)


def _same_body(expected: tuple[str, Any], stored: bytes) -> bool:
    kind, value = expected
    if kind == "bytes":
        return stored == value
    return json.loads(stored) == value


def _canonical(event_id: str) -> str:
    return event_id if not event_id else str(uuid.UUID(event_id))


@dataclass
class _Append:
    stream_id: str
    events: list[types_pb2.NewEvent]
    response: streams_pb2.AppendEventsResponse

    def check(self, stored: dict[int, types_pb2.EventRecord]) -> None:
        r = self.response
        count = len(self.events)
        assert r.position - r.first_position + 1 == count, self
        assert r.version - r.first_version + 1 == count, self
        for i, sent in enumerate(self.events):
            record = stored.get(r.first_position + i)
            where = f"event {i} of an append to {self.stream_id!r} answered {r}"
            assert record is not None, f"{where}: no event at its position"
            assert record.stream_id == self.stream_id, where
            assert record.version == r.first_version + i, where
            if sent.event_id:
                assert record.event_id == _canonical(sent.event_id), where
            if r.duplicate:
                continue  # an idempotent repeat: the ids are what the first append wrote
            assert record.event_type == sent.event_type, where
            assert _same_body(_body(sent, "data", "data_json", "body"), record.data), where
            metadata = _body(sent, "metadata", "metadata_json", "meta")
            assert _same_body(metadata, record.metadata), where
            assert record.content_type == (sent.content_type or JSON), where
            expected_type = (sent.metadata_content_type or JSON) if record.metadata else ""
            assert record.metadata_content_type == expected_type, where


@dataclass
class _Snapshot:
    source_type: str
    data: tuple[str, Any]
    metadata: tuple[str, Any]


@dataclass
class _Store:
    appends: list[_Append] = field(default_factory=list)
    snapshots: dict[tuple[str, str, int], _Snapshot] = field(default_factory=dict)


class Ledger:
    """The writes of a run that were answered, per store, since the store was (re)created."""

    def __init__(self) -> None:
        self.stores: dict[str, _Store] = {DEFAULT_STORE: _Store()}
        self.codes: Counter[tuple[str, str]] = Counter()
        self.calls = 0

    def note(self, outcome: Outcome) -> None:
        self.calls += 1
        self.codes[outcome.method.rsplit("/", 1)[-1], outcome.code.name] += 1
        request = outcome.request
        if outcome.code != grpc.StatusCode.OK or request is None:
            return
        name = outcome.method.rsplit("/", 1)[-1]
        if name == "CreateStore":
            self.stores[request.store_id] = _Store()
        elif name == "RemoveStore":
            self.stores.pop(request.store_id, None)
        elif name == "AppendEvents":
            (response,) = outcome.responses
            store = self._store(request.store, outcome)
            store.appends.append(_Append(request.stream_id, list(request.events), response))
        elif name == "RecordSnapshot":
            s = request.snapshot
            store = self._store(request.store, outcome)
            store.snapshots[(s.source_uuid, s.stream_uuid, s.source_version)] = _Snapshot(
                s.source_type,
                _body(s, "data", "data_json", None),
                _body(s, "metadata", "metadata_json", None),
            )
        elif name == "DeleteSnapshot":
            snapshots = self._store(request.store, outcome).snapshots
            for key in [
                k for k in snapshots if k[:2] == (request.source_uuid, request.stream_uuid)
            ]:
                if not request.HasField("version") or key[2] == request.version:
                    del snapshots[key]

    def _store(self, store_id: str, outcome: Outcome) -> _Store:
        store = self.stores.get(store_id or DEFAULT_STORE)
        assert store is not None, (
            f"a write to a store that was not created, or was removed: {outcome.describe()}"
        )
        return store

    def summary(self) -> str:
        lines = [f"{self.calls} calls"]
        by_method: dict[str, list[str]] = {}
        for (method, code), n in sorted(self.codes.items()):
            by_method.setdefault(method, []).append(f"{code}={n}")
        lines += [f"  {method}: {' '.join(codes)}" for method, codes in by_method.items()]
        events = sum(
            len(a.events)
            for s in self.stores.values()
            for a in s.appends
            if not a.response.duplicate
        )
        lines.append(f"  stores now: {len(self.stores)}, events in them: {events}")
        return "\n".join(lines)


async def _read_all(api: Stubs, store: str, **kw: Any) -> list[types_pb2.EventRecord]:
    out: list[types_pb2.EventRecord] = []
    request = streams_pb2.ReadEventsRequest(store=store, stream_id="$all", **kw)
    async for batch in api.streams.ReadEvents(request, timeout=60):
        out.extend(batch.events)
    return out


async def _pages(call: Any, request: Any, items: str) -> list[Any]:
    out: list[Any] = []
    while True:
        page = await call(request, timeout=30)
        out.extend(getattr(page, items))
        if not page.next_page_token:
            return out
        request.page_token = page.next_page_token


async def check_stores(api: Stubs, ledger: Ledger) -> None:
    """The invariants of every store the node has, against what the ledger saw answered."""
    stores = (await api.stores.ListStores(stores_pb2.ListStoresRequest(), timeout=30)).stores
    assert sorted(s.store_id for s in stores) == sorted(ledger.stores), (
        "the stores are not those created and not removed"
    )
    for store_id, expected in ledger.stores.items():
        await _check_events(api, store_id, expected)
        await _check_snapshots(api, store_id, expected)


async def _check_events(api: Stubs, store_id: str, expected: _Store) -> None:
    events = await _read_all(api, store_id)
    last = (
        await api.streams.GetVersion(
            streams_pb2.GetVersionRequest(store=store_id, stream_id="$all"), timeout=30
        )
    ).version
    where = f"store {store_id!r}"
    assert [e.position for e in events] == list(range(last + 1)), (
        f"{where}: $all positions are not dense from 0 to {last}"
    )
    backward = await _read_all(api, store_id, direction=streams_pb2.READ_DIRECTION_BACKWARD)
    assert [e.position for e in backward] == list(range(last, -1, -1)), f"{where}: $all backward"
    as_json = await _read_all(api, store_id, json=True)
    assert [(e.position, e.event_id) for e in as_json] == [
        (e.position, e.event_id) for e in events
    ], where

    streams: dict[str, list[int]] = {}
    for e in events:
        streams.setdefault(e.stream_id, []).append(e.version)
    for stream_id, versions in streams.items():
        assert versions == list(range(len(versions))), (
            f"{where}: versions of {stream_id!r} are not contiguous from 0"
        )
        request = streams_pb2.GetVersionRequest(store=store_id, stream_id=stream_id)
        assert (await api.streams.GetVersion(request, timeout=30)).version == len(versions) - 1, (
            where,
            stream_id,
        )
    listed = await _pages(
        api.streams.ListStreams,
        streams_pb2.ListStreamsRequest(store=store_id, page_size=1000),
        "streams",
    )
    assert {s.stream_id: s.version for s in listed} == {
        s: len(v) - 1 for s, v in streams.items()
    }, f"{where}: ListStreams"

    # Every event was written by exactly one append answered OK: their ranges tile $all.
    stored = {e.position: e for e in events}
    written = sorted(
        (a for a in expected.appends if not a.response.duplicate),
        key=lambda a: a.response.first_position,
    )
    at = 0
    for append in written:
        assert append.response.first_position == at, (
            f"{where}: position {at} was written by no append answered OK (or by two): next OK append is {append}"
        )
        at = append.response.position + 1
    assert at == last + 1, f"{where}: positions {at}..{last} were written by no append answered OK"
    for append in expected.appends:
        append.check(stored)
    ids = Counter(e.event_id for e in events)
    assert not [i for i, n in ids.items() if n > 1], f"{where}: an event id is stored twice"


async def _check_snapshots(api: Stubs, store_id: str, expected: _Store) -> None:
    where = f"store {store_id!r}"
    request = snapshots_pb2.ListSnapshotsRequest(store=store_id, page_size=1000)
    listed = await _pages(api.snapshots.ListSnapshots, request, "snapshots")
    keys = [(s.source_uuid, s.stream_uuid, s.source_version) for s in listed]
    assert sorted(keys) == sorted(expected.snapshots), (
        f"{where}: the snapshots listed are not those recorded and not deleted"
    )
    for key, snapshot in expected.snapshots.items():
        source_uuid, stream_uuid, version = key
        read = snapshots_pb2.ReadSnapshotRequest(
            store=store_id, source_uuid=source_uuid, stream_uuid=stream_uuid, version=version
        )
        got = (await api.snapshots.ReadSnapshot(read, timeout=30)).snapshot
        assert got.source_type == snapshot.source_type, (where, key)
        assert _same_body(snapshot.data, got.data), (where, key)
        assert _same_body(snapshot.metadata, got.metadata), (where, key)
        read.json = True
        await api.snapshots.ReadSnapshot(read, timeout=30)
