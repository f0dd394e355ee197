"""The exesdb.v1.Subscriptions servicer: transient and persistent subscriptions over gRPC
server streams, plus the persistent subscriptions' management, acks and nacks.

Owns: request validation for subscriptions and the framing of SubscribeResponse messages.
The work itself is gater.subscriptions' (hub: catch-up then live; dispatch: persistent).
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from exesdb.v1 import subscriptions_pb2 as pb

from .. import _wire
from ..errors import STATUS_DETAILS_KEY, GaterError, InvalidArgumentError, decode_status
from ..store.base import RecordedEvent, StorageBackend
from ..subscriptions.dispatch import Definition, PersistentSubscriptions, consume, nack_action
from ..subscriptions.hub import CaughtUp, Checkpoint, Delivery, Heartbeat, Hub, follow
from ..subscriptions.matching import EventFilter, make_filter
from ..subscriptions.persistent import PersistentSettings
from ._convert import Edge, record_as_json

__all__ = ["SubscriptionsServicer"]

TRANSIENT = "transient"
_ORIGINS = frozenset(pb.StartFrom.Origin.values())
_MAX_NAME_BYTES = 128


def _pattern(request: Any) -> dict[str, Any] | None:
    return json_format.MessageToDict(request.pattern) if request.HasField("pattern") else None


def _framed(events: list[RecordedEvent], as_json: bool, retry_counts: list[int] | None = None) -> bytes:
    records = [record_as_json(e.encoded) for e in events] if as_json else [e.encoded for e in events]
    if retry_counts is not None:
        # EventRecord.retry_count is field 14 (varint): appended fields win when parsed.
        records = [r + b"\x70" + _wire.varint(n) if n else r for r, n in zip(records, retry_counts, strict=True)]
    return _wire.subscribe_events(records)


def _control(**kw: Any) -> bytes:
    return pb.SubscribeResponse(**kw).SerializeToString()


class SubscriptionsServicer:
    def __init__(
        self,
        backend: StorageBackend,
        edge: Edge,
        hub: Hub,
        persistent: PersistentSubscriptions,
        node_id: str,
        cluster_secret: str | None = None,
    ) -> None:
        self.backend = backend
        self.edge = edge
        self.hub = hub
        self.persistent = persistent
        self.node_id = node_id
        self._relay = _Relay(cluster_secret)

    # -- validation -------------------------------------------------------------------------

    def _name(self, value: str, field: str = "name") -> str:
        if not value:
            raise InvalidArgumentError(field, "must not be empty")
        if value == TRANSIENT:
            raise InvalidArgumentError(field, f'"{TRANSIENT}" names transient subscriptions; choose another name')
        if len(value.encode()) > _MAX_NAME_BYTES:
            raise InvalidArgumentError(field, f"must be at most {_MAX_NAME_BYTES} bytes")
        return self.edge.event_type(value, field)

    @staticmethod
    def _settings(settings: pb.SubscriptionSettings) -> PersistentSettings:
        if settings.message_timeout_ms and settings.message_timeout_ms < 10:
            raise InvalidArgumentError("settings.message_timeout_ms", "must be >= 10 (0 means 30000)")
        if settings.max_in_flight > 10_000:
            raise InvalidArgumentError("settings.max_in_flight", "must be at most 10000 (0 means 100)")
        return PersistentSettings.from_proto_values(
            settings.message_timeout_ms, settings.max_retries, settings.max_in_flight
        )

    async def _start(self, store_id: str, event_filter: EventFilter, start: pb.StartFrom | None) -> tuple[int, int]:
        """(cursor, next_version) where a subscription starts: cursor is the last global
        position not to deliver; next_version the first version of a one-stream subscription."""
        store = await self.backend.open_store(store_id)
        which = start.WhichOneof("point") if start is not None else None
        if which == "revision":
            revision = self.edge.non_negative(start.revision, "start_from.revision")
            if event_filter.stream is not None:
                return -1, revision
            return revision - 1, 0
        origin = start.origin if which == "origin" else pb.StartFrom.ORIGIN_BEGINNING
        self.edge.enum(origin, _ORIGINS, "start_from.origin")
        if origin == pb.StartFrom.ORIGIN_NOW:
            last = await store.last_position()
            version = await store.stream_version(event_filter.stream) if event_filter.stream is not None else -1
            return last, version + 1
        return -1, 0

    async def _global_start(self, store_id: str, event_filter: EventFilter, start: pb.StartFrom) -> int:
        """A persistent subscription's first checkpoint (global) for `start`."""
        cursor, next_version = await self._start(store_id, event_filter, start)
        if event_filter.stream is None or next_version == 0:
            return cursor
        store = await self.backend.open_store(store_id)
        page = await store.read_stream(event_filter.stream, next_version, 1)
        return page[0].position - 1 if page else await store.last_position()

    # -- RPCs ---------------------------------------------------------------------------------

    async def SaveSubscription(self, request: pb.SaveSubscriptionRequest, context: Any) -> pb.SaveSubscriptionResponse:
        store_id = self.edge.store(request.store)
        name = self._name(request.name)
        event_filter = make_filter(request.type, request.selector, _pattern(request))
        definition = Definition(int(event_filter.kind), event_filter.selector, _pattern(request), self._settings(request.settings))
        start = await self._global_start(store_id, event_filter, request.start_from)
        created = await self.persistent.save(store_id, name, definition, start)
        (info,) = [s for s in await self.persistent.list(store_id) if s.name == name]
        return pb.SaveSubscriptionResponse(subscription=_info(info), created=created)

    async def RemoveSubscription(self, request: pb.RemoveSubscriptionRequest, context: Any) -> pb.RemoveSubscriptionResponse:
        await self.persistent.remove(self.edge.store(request.store), self._name(request.name))
        return pb.RemoveSubscriptionResponse()

    async def ListSubscriptions(self, request: pb.ListSubscriptionsRequest, context: Any) -> pb.ListSubscriptionsResponse:
        stats = await self.persistent.list(self.edge.store(request.store))
        return pb.ListSubscriptionsResponse(subscriptions=[_info(s) for s in stats])

    async def _at_owner(self, store_id: str, name: str, method: str, request: Any, apply: Any) -> Any:
        """Runs `apply(dispatcher)` on this node when it owns the subscription, else sends the
        call to the owner. While an owner that died still holds the lease, this retries until
        the lease runs out and this node (or another) takes over."""
        give_up = time.monotonic() + 3 * self.persistent.lease_ttl_s
        while True:
            owner = await self.persistent.owner(store_id, name)
            if not isinstance(owner, str):
                return await apply(owner)
            try:
                return await self._relay.unary(owner, method, request)
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > give_up:
                    raise _relayed_error(e) from e
                await asyncio.sleep(_RELAY_RETRY_S)

    async def AckEvent(self, request: pb.AckEventRequest, context: Any) -> pb.AckEventResponse:
        store_id = self.edge.store(request.store)
        name = self._name(request.subscription_name, "subscription_name")
        positions = list(request.positions)
        await self._at_owner(store_id, name, "AckEvent", request, lambda d: d.ack(positions))
        return pb.AckEventResponse()

    async def NackEvent(self, request: pb.NackEventRequest, context: Any) -> pb.NackEventResponse:
        store_id = self.edge.store(request.store)
        action = nack_action(request.action)
        name = self._name(request.subscription_name, "subscription_name")
        positions = list(request.positions)
        await self._at_owner(store_id, name, "NackEvent", request, lambda d: d.nack(positions, action))
        return pb.NackEventResponse()

    async def ReplayParkedEvents(self, request: pb.ReplayParkedEventsRequest, context: Any) -> pb.ReplayParkedEventsResponse:
        store_id = self.edge.store(request.store)
        name = self._name(request.subscription_name, "subscription_name")

        async def replay(dispatcher: Any) -> bytes:
            return pb.ReplayParkedEventsResponse(replayed=await dispatcher.replay_parked()).SerializeToString()

        answer = await self._at_owner(store_id, name, "ReplayParkedEvents", request, replay)
        return pb.ReplayParkedEventsResponse.FromString(answer)

    async def Subscribe(self, request: pb.SubscribeRequest, context: Any) -> AsyncIterator[bytes]:
        store_id = self.edge.store(request.store)
        max_batch = request.max_batch or 100
        if max_batch > 1000:
            raise InvalidArgumentError("max_batch", f"must be 1..1000 (0 means 100), got {max_batch}")
        if request.heartbeat_ms and request.heartbeat_ms < 100:
            raise InvalidArgumentError("heartbeat_ms", "must be >= 100 (0 means 5000)")
        heartbeat_s = (request.heartbeat_ms or 5000) / 1000
        name = request.subscription_name
        if name in ("", TRANSIENT):
            async for message in self._transient(store_id, request, max_batch, heartbeat_s):
                yield message
        else:
            async for message in self._persistent(store_id, request, max_batch, heartbeat_s):
                yield message

    async def _transient(self, store_id: str, request: pb.SubscribeRequest, max_batch: int, heartbeat_s: float) -> AsyncIterator[bytes]:
        event_filter = make_filter(request.type, request.selector, _pattern(request))
        cursor, next_version = await self._start(store_id, event_filter, request.start_from)
        store = await self.backend.open_store(store_id)
        tailer = await self.hub.tailer(store_id)
        yield _control(confirmation=pb.SubscriptionConfirmation(subscription_name=TRANSIENT, node_id=self.node_id))
        messages = follow(
            store, tailer, event_filter, cursor=cursor, next_version=next_version, max_batch=max_batch, heartbeat_s=heartbeat_s
        )
        async for message in messages:
            if isinstance(message, Delivery):
                yield _framed(message.events, request.json)
            elif isinstance(message, CaughtUp):
                yield _control(caught_up=pb.CaughtUp(position=message.position))
            elif isinstance(message, Checkpoint):
                yield _control(checkpoint=pb.Checkpoint(position=message.position))
            elif isinstance(message, Heartbeat):
                yield _control(heartbeat=pb.Heartbeat(position=message.position))

    async def _persistent(self, store_id: str, request: pb.SubscribeRequest, max_batch: int, heartbeat_s: float) -> AsyncIterator[bytes]:
        """Consumes here when this node owns the subscription, else relays the owner's stream;
        when the owner changes (it died, or this node lost the lease) it carries on with the
        new one, so the consumer's stream goes on."""
        name = self._name(request.subscription_name, "subscription_name")
        asked = None
        if request.type or request.selector or request.HasField("pattern"):
            asked = make_filter(request.type, request.selector, _pattern(request))
        once = _wire.OncePerStream()
        give_up = None
        while True:
            owner = await self.persistent.owner(store_id, name)
            if isinstance(owner, str):
                try:
                    async for message in self._relay.stream(owner, "Subscribe", request):
                        give_up = None
                        if once.passes(message):
                            yield message
                    return
                except grpc.aio.AioRpcError as e:
                    give_up = give_up or time.monotonic() + 3 * self.persistent.lease_ttl_s
                    if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > give_up:
                        raise _relayed_error(e) from e
                    await asyncio.sleep(_RELAY_RETRY_S)
                    continue
            dispatcher = owner
            if asked is not None and asked != dispatcher.filter:
                raise InvalidArgumentError(
                    "subscription_name", f"subscription {name!r} selects other events than this request describes"
                )
            consumer_id, queue = dispatcher.connect()
            confirmation = _control(
                confirmation=pb.SubscriptionConfirmation(subscription_name=name, consumer_id=consumer_id, node_id=self.node_id)
            )
            if once.passes(confirmation):
                yield confirmation
            async for batch in consume(dispatcher, consumer_id, queue, heartbeat_s, max_batch):
                if batch is None:
                    yield _control(heartbeat=pb.Heartbeat(position=dispatcher.state.checkpoint))
                else:
                    yield _framed([d.event for d in batch], request.json, [d.retry_count for d in batch])
                if not once.caught_up and dispatcher.state.next_position > await dispatcher.store.last_position():
                    once.passes(caught_up := _control(caught_up=pb.CaughtUp(position=dispatcher.state.next_position - 1)))
                    yield caught_up
            # The dispatcher ended (lease lost, subscription removed): find the owner again.


_RELAY_RETRY_S = 0.5


def _relayed_error(error: grpc.aio.AioRpcError) -> GaterError:
    """The owner's answer, as this node's own (same class, message and details)."""
    details = dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    return decode_status(error.code().name, error.details() or "the owning node failed", details)


class _Relay:
    """Calls to other nodes of the cluster (the owner of a persistent subscription), as bytes."""

    _OPTIONS = [
        ("grpc.keepalive_time_ms", 2000),
        ("grpc.keepalive_timeout_ms", 2000),
        ("grpc.http2.ping_timeout_ms", 2000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]

    def __init__(self, cluster_secret: str | None) -> None:
        self._metadata = (("x-gater-secret", cluster_secret),) if cluster_secret else ()
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address, options=self._OPTIONS)
        return channel

    async def unary(self, address: str, method: str, request: Any) -> Any:
        call = self._channel(address).unary_unary(f"/exesdb.v1.Subscriptions/{method}")
        return await call(request.SerializeToString(), metadata=self._metadata, timeout=30)

    async def stream(self, address: str, method: str, request: Any) -> AsyncIterator[bytes]:
        call = self._channel(address).unary_stream(f"/exesdb.v1.Subscriptions/{method}")(
            request.SerializeToString(), metadata=self._metadata
        )
        try:
            async for message in call:
                yield message
        finally:
            call.cancel()


def _info(s: Any) -> pb.SubscriptionInfo:
    d = s.definition
    info = pb.SubscriptionInfo(
        name=s.name,
        type=d.kind,
        selector=d.selector,
        settings=pb.SubscriptionSettings(
            message_timeout_ms=int(d.settings.message_timeout_s * 1000),
            max_retries=d.settings.max_retries,
            max_in_flight=d.settings.max_in_flight,
        ),
        checkpoint=s.checkpoint,
        lag=s.lag,
        in_flight=s.in_flight,
        parked=s.parked,
        consumers=s.consumers,
    )
    if d.pattern:
        info.pattern.CopyFrom(json_format.ParseDict(d.pattern, struct_pb2.Struct()))
    return info
