"""`Client`: the exesdb.v1 API as asyncio methods, store first as in ExESDBGater.API.

Owns: `Client` — `await Client.connect(target)` parses the target (host:port lists or a
gater:// connection string), dials, and returns a client whose methods append, read,
subscribe, settle persistent subscriptions, keep snapshots, manage stores and ask the cluster.
`__init__` only stores state. Calls go through `Connection` (failover) and `convert` (values ↔
messages, statuses → gater.errors).
Must not import anything from gater but gater.errors and this package.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from exesdb.v1 import (
    cluster_pb2,
    snapshots_pb2,
    stores_pb2,
    streams_pb2,
    subscriptions_pb2,
    types_pb2,
)

from ..errors import InvalidArgumentError
from . import _convert as convert
from ._connection import Connection, Stubs
from ._credentials import check_credentials_travel, credential_metadata
from ._lifecycle import UNSET, LifecycleCalls
from ._session import Appender
from ._subscription import Subscription
from ._target import DEFAULT_TARGET, parse_target
from ._tracing import ClientTracing
from ._transfer import IMPORT_BATCH, TransferSummary, export_to_file, import_from_file
from ._values import (
    ANY,
    BACKWARD,
    BEGINNING,
    EXPECTED_STATES,
    FORWARD,
    AppendCondition,
    AppendResult,
    ClusterStatus,
    Event,
    Member,
    NackAction,
    Query,
    QueryResult,
    Snapshot,
    StoreConfig,
    StoreInfo,
    StoreStatus,
    StreamInfo,
    SubscriptionInfo,
    SubscriptionType,
    TLSConfig,
)

__all__ = ["Client"]

_UNSET: Any = UNSET


class Client(LifecycleCalls):
    """A connection to one of several exesdb.v1 servers (nodes or gateways).

    ``client = await Client.connect(["10.0.0.1:50051", "10.0.0.2:50051"])`` dials the first
    that answers; a call that meets UNAVAILABLE moves on to the next address and is tried
    again there (appends are safe to retry: the client gives each event an id, so a repeat is
    a no-op). Use as ``async with``; `close()` is idempotent.

    Store-scoped methods take the store first, as the original API does; "" means the
    server's default store. `timeout_s` (per call, or the client's default) is a deadline.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        timeout_s: float | None = 10.0,
        connect_timeout_s: float = 5.0,
        tls: TLSConfig | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        max_message_bytes: int = 16 * 1024 * 1024,
        api_key: str | None = None,
        token: str | None = None,
        allow_insecure_credentials: bool = False,
        tracing: Any = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.metadata = tuple(metadata) + credential_metadata(api_key, token)
        """Sent with every call and stream: `metadata`, then the credential (an API key as
        x-api-key, a token as `authorization: Bearer`)."""
        check_credentials_travel(
            targets, api_key=api_key, token=token, tls=tls is not None, allow_insecure=allow_insecure_credentials
        )
        self.tracing = ClientTracing(tracing)
        """`tracing`: an OpenTelemetry TracerProvider (e.g. opentelemetry.trace.get_tracer_provider())
        to trace every call with, its `traceparent` sent along; None: no spans."""
        self._connection = Connection(
            targets,
            connect_timeout_s=connect_timeout_s,
            tls=tls,
            metadata=self.metadata,
            max_message_bytes=max_message_bytes,
            tracing=self.tracing,
        )
        self._appender = Appender(self._connection)
        """Unary appends one at a time, one AppendSession once several are in flight."""

    @classmethod
    async def connect(cls, target: str | Sequence[str] = DEFAULT_TARGET, **options: Any) -> Client:
        """Connects to the first of `target` that answers: one "host:port", a comma-separated
        list, a sequence of them, or a connection string
        ``gater://host:port[,host:port...][?tls=true&tls_ca_file=ca.pem&api_key=gtr...&timeout_s=5...]``
        (keyword `options` win over the string's). `api_key=` or `token=` says who calls; it is sent
        only over TLS or to loopback unless `allow_insecure_credentials=True`. UnavailableError when none answers;
        InvalidArgumentError for a target that is none of these (e.g. ``esdb://...``)."""
        parsed = parse_target(target)
        client = cls(parsed.addresses, **{**parsed.client_options(), **options})
        await client._connection.dial(first=True)
        return client

    @property
    def targets(self) -> list[str]:
        """The addresses this client tries, in turn."""
        return self._connection.targets

    @property
    def target(self) -> str:
        """The address in use."""
        return self._connection.target

    async def __aenter__(self) -> Client:
        if not self._connection.connected:
            await self._connection.dial(first=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel; idempotent."""
        await self._appender.close()
        await self._connection.close()

    # -- connection --------------------------------------------------------------------------

    async def _stubs_now(self) -> Stubs:
        return await self._connection.stubs()

    def _deadline(self, timeout_s: float | None) -> float | None:
        return self.timeout_s if timeout_s is _UNSET else timeout_s

    async def _unary(self, service: str, method: str, request: Any, timeout_s: Any, store: str = "") -> Any:
        return await self._connection.unary(service, method, request, self._deadline(timeout_s))

    # -- streams ---------------------------------------------------------------------------

    async def append_events(
        self,
        store: str,
        stream: str,
        events: Iterable[Any],
        expected_version: int | str = ANY,
        *,
        condition: AppendCondition | None = None,
        timeout_s: float | None = _UNSET,
    ) -> AppendResult:
        """Appends `events` (NewEvent, dicts with NewEvent's keys, or dataclasses with an
        `event_type`) atomically if the stream's version is `expected_version` (ANY,
        NO_STREAM, STREAM_EXISTS, or an int). WrongExpectedVersionError carries the current
        version. With a `condition` (DCB), also only if no event matching its query has a
        position after its `after` (AppendConditionFailedError otherwise)."""
        request = streams_pb2.AppendEventsRequest(
            store=store,
            stream_id=stream,
            events=[convert.new_event_message(convert.as_new_event(e, i), i) for i, e in enumerate(events)],
        )
        if isinstance(expected_version, int) and not isinstance(expected_version, bool):
            request.expected_version = expected_version
        elif expected_version in EXPECTED_STATES:
            request.expected_state = EXPECTED_STATES[expected_version]
        else:
            raise InvalidArgumentError(
                "expected_version", f'must be "any", "no_stream", "stream_exists" or an int, not {expected_version!r}'
            )
        if condition is not None:
            request.condition.CopyFrom(convert.condition_message(condition))
        r = await self._appender.append(request, self._deadline(timeout_s))
        return AppendResult(r.version, r.position, r.first_version, r.first_position, r.duplicate)

    async def read_query(
        self,
        store: str,
        query: Query | None,
        start: int | None = None,
        count: int = 0,
        direction: str = FORWARD,
        *,
        stream_prefix: str = "",
        since: datetime | None = None,
        timeout_s: float | None = _UNSET,
    ) -> QueryResult:
        """The events of the store matching a DCB query (None: any event; answered from the
        server's tag and type indexes), from global position `start`, at most `count` (0:
        all), and the head the read was cut at — the `after` of an AppendCondition decided on
        them. `stream_prefix` ("order-", or the seed's "order-*") keeps the events of the
        streams whose id starts with it; `since` (a timezone-aware datetime) starts at the
        first event committed at or after it (backward: the last at or before it)."""
        if direction not in (FORWARD, BACKWARD):
            raise InvalidArgumentError("direction", f'must be "forward" or "backward", not {direction!r}')
        request = streams_pb2.ReadEventsRequest(
            store=store,
            count=count,
            direction=streams_pb2.READ_DIRECTION_BACKWARD if direction == BACKWARD else streams_pb2.READ_DIRECTION_FORWARD,
            stream_prefix=stream_prefix,
        )
        if query is not None or not (stream_prefix or since):
            request.query.CopyFrom(convert.query_message(query or Query()))  # a filtered read, with its head
        if since is not None:
            if since.tzinfo is None:
                raise InvalidArgumentError("since", f"must be a timezone-aware datetime, got {since!r}")
            request.from_time.FromDatetime(since)
        if start is not None:
            request.from_version = start
        stubs = await self._stubs_now()
        call = stubs.streams.ReadEvents(request, timeout=self._deadline(timeout_s), metadata=self.metadata or None)
        events: list[Event] = []
        head: int | None = None
        try:
            async for batch in call:
                if head is None:
                    head = batch.head
                events.extend(convert.event(r) for r in batch.events)
        except grpc.aio.AioRpcError as e:
            raise convert.error_from_status(e) from None
        finally:
            call.cancel()
        return QueryResult(events, -1 if head is None else head)

    async def read_events(
        self,
        store: str,
        stream: str,
        start: int | None = None,
        count: int = 0,
        direction: str = FORWARD,
        *,
        timeout_s: float | None = None,
    ) -> AsyncIterator[list[Event]]:
        """Reads `stream` (or ALL) in batches as the server sends them, from `start` (a
        version, or a global position for ALL; None: the first or, backward, the last
        event), at most `count` events (0: all). Handy for long reads with progress."""
        if direction not in (FORWARD, BACKWARD):
            raise InvalidArgumentError("direction", f'must be "forward" or "backward", not {direction!r}')
        request = streams_pb2.ReadEventsRequest(
            store=store,
            stream_id=stream,
            count=count,
            direction=streams_pb2.READ_DIRECTION_BACKWARD if direction == BACKWARD else streams_pb2.READ_DIRECTION_FORWARD,
        )
        if start is not None:
            request.from_version = start
        stubs = await self._stubs_now()
        span = self.tracing.start("Streams", "ReadEvents", stubs.target)
        call = stubs.streams.ReadEvents(request, timeout=timeout_s, metadata=(self.metadata + span.metadata) or None)
        try:
            async for batch in call:
                yield [convert.event(r) for r in batch.events]
        except grpc.aio.AioRpcError as e:
            error = convert.error_from_status(e)
            span.end(error)
            raise error from None
        finally:
            span.end()
            call.cancel()

    async def get_events(
        self,
        store: str,
        stream: str,
        start: int | None = None,
        count: int = 0,
        direction: str = FORWARD,
        *,
        timeout_s: float | None = _UNSET,
    ) -> list[Event]:
        """The events `read_events` yields, as one list (a missing stream gives [])."""
        out: list[Event] = []
        async for batch in self.read_events(store, stream, start, count, direction, timeout_s=self._deadline(timeout_s)):
            out.extend(batch)
        return out

    async def get_version(self, store: str, stream: str, *, timeout_s: float | None = _UNSET) -> int:
        """The stream's version (-1: no stream); for ALL, the last global position."""
        request = streams_pb2.GetVersionRequest(store=store, stream_id=stream)
        return (await self._unary("streams", "GetVersion", request, timeout_s, store)).version

    async def get_streams(self, store: str, *, page_size: int = 0, timeout_s: float | None = _UNSET) -> list[StreamInfo]:
        """Every stream of the store, in id order (fetched a page at a time)."""
        out: list[StreamInfo] = []
        token = ""
        while True:
            request = streams_pb2.ListStreamsRequest(store=store, page_size=page_size, page_token=token)
            page = await self._unary("streams", "ListStreams", request, timeout_s, store)
            out.extend(StreamInfo(s.stream_id, s.version) for s in page.streams)
            token = page.next_page_token
            if not token:
                return out

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self,
        store: str,
        *,
        stream: str | None = None,
        event_type: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        query: Query | None = None,
        name: str | None = None,
        start_from: str | int = BEGINNING,
        max_batch: int = 0,
        heartbeat_ms: int = 0,
        timeout_s: float | None = None,
    ) -> Subscription:
        """A subscription, as an async iterator of events (``async with`` it to be sure it is
        confirmed before going on). Transient: give one of `stream` (default ALL; "order-*":
        every stream whose id starts with "order-", caught up from the server's index),
        `event_type`, `pattern` (partial match on the record), `payload` (partial match on
        the JSON body; "_" matches any value) or `query` (a DCB Query: catch-up from the
        server's tag and type indexes). Persistent: `name` of a saved subscription —
        then ack (or nack) what you get. `timeout_s`: a deadline for the whole subscription
        (None: none), after which iterating raises DeadlineExceededError."""
        if name is not None and any(v is not None for v in (stream, event_type, pattern, payload, query)):
            kind, selector, struct = convert.selection(stream, event_type, pattern, payload, query)
        elif name is not None:
            kind, selector, struct = SubscriptionType.BY_STREAM, "", None
        else:
            kind, selector, struct = convert.selection(stream, event_type, pattern, payload, query)
        request = subscriptions_pb2.SubscribeRequest(
            store=store,
            type=kind,
            selector=selector,
            subscription_name=name or "",
            max_batch=max_batch,
            heartbeat_ms=heartbeat_ms,
        )
        if struct is not None:
            request.pattern.CopyFrom(struct)
        if name is None:
            request.start_from.CopyFrom(convert.start_from(start_from))
        return Subscription(self, store, request, timeout_s)

    async def save_subscription(
        self,
        store: str,
        name: str,
        *,
        stream: str | None = None,
        event_type: str | None = None,
        pattern: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        query: Query | None = None,
        start_from: str | int = BEGINNING,
        message_timeout_ms: int = 0,
        max_retries: int = 0,
        max_in_flight: int = 0,
        timeout_s: float | None = _UNSET,
    ) -> SubscriptionInfo:
        """Creates (or updates) the persistent subscription `name`; `start_from` applies to a
        new one only. Zero settings take the server's defaults."""
        kind, selector, struct = convert.selection(stream, event_type, pattern, payload, query)
        request = subscriptions_pb2.SaveSubscriptionRequest(
            store=store,
            name=name,
            type=kind,
            selector=selector,
            start_from=convert.start_from(start_from),
            settings=subscriptions_pb2.SubscriptionSettings(
                message_timeout_ms=message_timeout_ms, max_retries=max_retries, max_in_flight=max_in_flight
            ),
        )
        if struct is not None:
            request.pattern.CopyFrom(struct)
        r = await self._unary("subscriptions", "SaveSubscription", request, timeout_s, store)
        return convert.subscription_info(r.subscription, r.created)

    async def remove_subscription(self, store: str, name: str, *, timeout_s: float | None = _UNSET) -> None:
        request = subscriptions_pb2.RemoveSubscriptionRequest(store=store, name=name)
        await self._unary("subscriptions", "RemoveSubscription", request, timeout_s, store)

    async def get_subscriptions(self, store: str, *, timeout_s: float | None = _UNSET) -> list[SubscriptionInfo]:
        request = subscriptions_pb2.ListSubscriptionsRequest(store=store)
        r = await self._unary("subscriptions", "ListSubscriptions", request, timeout_s, store)
        return [convert.subscription_info(s) for s in r.subscriptions]

    async def ack(self, store: str, name: str, positions: Iterable[int], *, timeout_s: float | None = _UNSET) -> None:
        """Acknowledges events of persistent subscription `name` by global position."""
        request = subscriptions_pb2.AckEventRequest(store=store, subscription_name=name, positions=list(positions))
        await self._unary("subscriptions", "AckEvent", request, timeout_s, store)

    async def nack(
        self,
        store: str,
        name: str,
        positions: Iterable[int],
        action: NackAction = NackAction.RETRY,
        reason: str = "",
        *,
        timeout_s: float | None = _UNSET,
    ) -> None:
        """Rejects events: RETRY (deliver again), PARK, or SKIP."""
        request = subscriptions_pb2.NackEventRequest(
            store=store, subscription_name=name, positions=list(positions), action=int(action), reason=reason
        )
        await self._unary("subscriptions", "NackEvent", request, timeout_s, store)

    async def replay_parked(self, store: str, name: str, *, timeout_s: float | None = _UNSET) -> int:
        """Puts parked events back for delivery; returns how many."""
        request = subscriptions_pb2.ReplayParkedEventsRequest(store=store, subscription_name=name)
        return (await self._unary("subscriptions", "ReplayParkedEvents", request, timeout_s, store)).replayed

    # -- snapshots ---------------------------------------------------------------------------

    async def record_snapshot(
        self,
        store: str,
        source_uuid: str,
        stream_uuid: str,
        version: int,
        data: Any,
        *,
        source_type: str = "",
        metadata: Any = None,
        timeout_s: float | None = _UNSET,
    ) -> Snapshot:
        """Records (or replaces) the snapshot at (source_uuid, stream_uuid, version); `data`
        is JSON-encoded unless it is bytes. Returns it without its data."""
        raw, _ = convert.encode(data, None, "snapshot.data")
        record = types_pb2.SnapshotRecord(
            source_uuid=source_uuid, stream_uuid=stream_uuid, source_version=version, source_type=source_type, data=raw
        )
        if metadata is not None:
            record.metadata = convert.encode(metadata, None, "snapshot.metadata")[0]
        request = snapshots_pb2.RecordSnapshotRequest(store=store, snapshot=record)
        return convert.snapshot((await self._unary("snapshots", "RecordSnapshot", request, timeout_s, store)).snapshot)

    async def read_snapshot(
        self, store: str, source_uuid: str, stream_uuid: str, version: int | None = None, *, timeout_s: float | None = _UNSET
    ) -> Snapshot:
        """The snapshot at `version`, or the latest; SnapshotNotFoundError when there is none."""
        request = snapshots_pb2.ReadSnapshotRequest(store=store, source_uuid=source_uuid, stream_uuid=stream_uuid)
        if version is not None:
            request.version = version
        return convert.snapshot((await self._unary("snapshots", "ReadSnapshot", request, timeout_s, store)).snapshot)

    async def delete_snapshot(
        self, store: str, source_uuid: str, stream_uuid: str, version: int | None = None, *, timeout_s: float | None = _UNSET
    ) -> int:
        """Deletes the snapshot at `version`, or all of them; returns how many went."""
        request = snapshots_pb2.DeleteSnapshotRequest(store=store, source_uuid=source_uuid, stream_uuid=stream_uuid)
        if version is not None:
            request.version = version
        return (await self._unary("snapshots", "DeleteSnapshot", request, timeout_s, store)).deleted

    async def list_snapshots(
        self, store: str, source_uuid: str = "", stream_uuid: str = "", *, timeout_s: float | None = _UNSET
    ) -> list[Snapshot]:
        """Snapshots (without data), filtered by source and/or stream."""
        out: list[Snapshot] = []
        token = ""
        while True:
            request = snapshots_pb2.ListSnapshotsRequest(
                store=store, source_uuid=source_uuid, stream_uuid=stream_uuid, page_token=token
            )
            page = await self._unary("snapshots", "ListSnapshots", request, timeout_s, store)
            out.extend(convert.snapshot(s) for s in page.snapshots)
            token = page.next_page_token
            if not token:
                return out

    # -- stores ------------------------------------------------------------------------------

    async def create_store(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreInfo:
        """Creates a store; StoreAlreadyExistsError when it exists."""
        r = await self._unary("stores", "CreateStore", stores_pb2.CreateStoreRequest(store_id=store_id), timeout_s, store_id)
        return StoreInfo(r.store.store_id, convert.when(r.store.created_at))

    async def remove_store(self, store_id: str, *, timeout_s: float | None = _UNSET) -> None:
        """Removes a store and everything in it. Irreversible."""
        await self._unary("stores", "RemoveStore", stores_pb2.RemoveStoreRequest(store_id=store_id), timeout_s, store_id)

    async def list_stores(self, *, timeout_s: float | None = _UNSET) -> list[StoreInfo]:
        r = await self._unary("stores", "ListStores", stores_pb2.ListStoresRequest(), timeout_s)
        return [StoreInfo(s.store_id, convert.when(s.created_at)) for s in r.stores]

    async def get_store_status(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreStatus:
        r = await self._unary(
            "stores", "GetStoreStatus", stores_pb2.GetStoreStatusRequest(store_id=store_id), timeout_s, store_id
        )
        return StoreStatus(
            r.store_id, r.stream_count, r.event_count, r.last_position, r.snapshot_count, r.subscription_count, r.size_bytes
        )

    async def get_store_config(self, store_id: str, *, timeout_s: float | None = _UNSET) -> StoreConfig:
        r = await self._unary(
            "stores", "GetStoreConfig", stores_pb2.GetStoreConfigRequest(store_id=store_id), timeout_s, store_id
        )
        return StoreConfig(
            r.store_id, r.backend, r.location, r.durability, r.max_events_per_append, r.max_message_bytes, convert.when(r.created_at)
        )

    async def export_store(
        self, store_id: str, path: str | os.PathLike[str], *, resume: bool = False,
        on_start: Callable[[int, int], None] | None = None, on_progress: Callable[[int], None] | None = None,
    ) -> TransferSummary:
        """Writes the store into a transfer file (docs/transfer.md), streaming, from one
        consistent view of it. `resume`: continue a file an interrupted export left."""
        stubs = await self._stubs_now()
        return await export_to_file(
            stubs.stores, self.metadata or None, store_id, Path(path), resume=resume, on_start=on_start, on_progress=on_progress
        )

    async def import_store(
        self, store_id: str, path: str | os.PathLike[str], *, create: bool = True,
        on_start: Callable[[int, int], None] | None = None, on_progress: Callable[[int], None] | None = None,
        batch_size: int = IMPORT_BATCH, timeout_s: float | None = _UNSET,
    ) -> TransferSummary:
        """Writes a transfer file into the store (created when missing and `create`), keeping
        every event's id, version, position, created time, tags and body. The store must be
        empty or hold a prefix of the file (then the import goes on after its head);
        ImportMismatchError otherwise. Events go in batches of `batch_size`, two in flight."""
        stubs = await self._stubs_now()
        return await import_from_file(
            stubs.stores, self.metadata or None, store_id, Path(path),
            create=(lambda: self.create_store(store_id)) if create else None,
            on_start=on_start, on_progress=on_progress, timeout_s=self._deadline(timeout_s), batch_size=batch_size,
        )  # fmt: skip

    # -- cluster -----------------------------------------------------------------------------

    async def cluster_status(self, *, timeout_s: float | None = _UNSET) -> ClusterStatus:
        """Who serves this client: its role, ids, version, backend and members."""
        r = await self._unary("cluster", "GetStatus", cluster_pb2.GetStatusRequest(), timeout_s)
        role = {cluster_pb2.ROLE_NODE: "node", cluster_pb2.ROLE_GATEWAY: "gateway"}.get(r.role, "unspecified")
        return ClusterStatus(
            role, r.node_id, r.cluster_id, r.version, r.backend, [convert.member(m) for m in r.members],
            r.discovery, r.discovery_ok, r.address,
        )  # fmt: skip

    async def watch_members(self) -> AsyncIterator[tuple[str, Member]]:
        """(change, member) pairs: "present" for each current member, then "joined", "left",
        "updated" as they happen."""
        stubs = await self._stubs_now()
        span = self.tracing.start("Cluster", "WatchMembers", stubs.target)
        call = stubs.cluster.WatchMembers(cluster_pb2.WatchMembersRequest(), metadata=(self.metadata + span.metadata) or None)
        names = {v: k.removeprefix("CHANGE_").lower() for k, v in cluster_pb2.WatchMembersResponse.Change.items()}
        try:
            async for r in call:
                yield names.get(r.change, "unspecified"), convert.member(r.member)
        except grpc.aio.AioRpcError as e:
            error = convert.error_from_status(e)
            span.end(error)
            raise error from None
        finally:
            span.end()
            call.cancel()


