"""The exesdb.v1.Subscriptions servicer: transient and persistent subscriptions over gRPC
server streams, plus the persistent subscriptions' management, acks and nacks.

Owns: request validation for subscriptions and the framing of SubscribeResponse messages
(batches cut to fit a client's default receive limit). The work is the subscription layer's:
`Hub.subscribe` (transient: start, catch-up, live), `PersistentSubscriptions` (definitions,
dispatch) and `OwnerRelay` (the owner of a persistent subscription, here or on another node).
Must not import gater.gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import json_format, struct_pb2

from exesdb.v1 import subscriptions_pb2 as pb

from .. import _wire
from ..errors import InvalidArgumentError, LimitExceededError, SubscriptionNotFoundError
from ..security import ALL_STREAM, Operation, Scope
from ..security import context as security
from ..security.access import stream_of_selector
from ..store.base import EncodedBatch, RecordedEvent
from ..subscriptions.dispatch import (
    Definition,
    Dispatcher,
    PersistentSubscriptions,
    consume,
    nack_action,
)
from ..subscriptions.hub import CaughtUp, Checkpoint, Delivery, Heartbeat, Hub, Message
from ..subscriptions.matching import EventFilter, make_filter
from ..subscriptions.persistent import PersistentSettings
from ..subscriptions.start import Start
from ._convert import Edge, record_as_json
from ._relay import OwnerRelay

__all__ = ["SubscriptionsServicer"]

TRANSIENT = "transient"
_ORIGINS = frozenset(pb.StartFrom.Origin.values())
_MAX_NAME_BYTES = 128


def _pattern(request: Any) -> dict[str, Any] | None:
    if not request.HasField("pattern"):
        return None
    try:
        return json_format.MessageToDict(request.pattern)
    except ValueError as e:  # protobuf's only refusal of a Struct: a NaN or Infinity number
        raise InvalidArgumentError("pattern", "holds NaN or Infinity, which JSON has no value for") from e


def _control(**kw: Any) -> bytes:
    return pb.SubscribeResponse(**kw).SerializeToString()


class SubscriptionsServicer:
    def __init__(
        self, edge: Edge, hub: Hub, persistent: PersistentSubscriptions, relay: OwnerRelay, node_id: str
    ) -> None:
        self.edge = edge
        self.hub = hub
        self.persistent = persistent
        self.relay = relay
        self.node_id = node_id
        # Every message must fit the client's default receive limit, and our own send limit.
        self.max_message_bytes = min(_wire.MAX_RESPONSE_BYTES, edge.limits.max_message_bytes)

    # -- validation and framing -------------------------------------------------------------

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

    def _start(self, start: pb.StartFrom) -> Start:
        which = start.WhichOneof("point")
        if which == "revision":
            return Start.at(self.edge.non_negative(start.revision, "start_from.revision"))
        origin = start.origin if which == "origin" else pb.StartFrom.ORIGIN_BEGINNING
        self.edge.enum(origin, _ORIGINS, "start_from.origin")
        return Start.NOW if origin == pb.StartFrom.ORIGIN_NOW else Start.BEGINNING

    def _events(self, events: list[RecordedEvent], as_json: bool, retry_counts: list[int] | None = None) -> list[bytes]:
        """SubscribeResponse{events} messages for `events`, each within the size limit."""
        records = [record_as_json(e.encoded) for e in events] if as_json else [e.encoded for e in events]
        if retry_counts is not None:
            # EventRecord.retry_count is field 14 (varint): appended fields win when parsed.
            records = [r + b"\x70" + _wire.varint(n) if n else r for r, n in zip(records, retry_counts, strict=True)]
        return _wire.subscribe_event_messages(records, self.max_message_bytes)

    def _frames(self, message: Message, as_json: bool) -> list[bytes]:
        if isinstance(message, EncodedBatch):  # framed by the store: sent as it is
            if as_json:
                return _wire.subscribe_event_messages([record_as_json(r) for r in message.records()], self.max_message_bytes)
            return _wire.subscribe_framed(message.framed, self.max_message_bytes)
        if isinstance(message, Delivery):
            return self._events(message.events, as_json)
        if isinstance(message, CaughtUp):
            return [_control(caught_up=pb.CaughtUp(position=message.position))]
        if isinstance(message, Checkpoint):
            return [_control(checkpoint=pb.Checkpoint(position=message.position))]
        return [_control(heartbeat=pb.Heartbeat(position=message.position))]

    # -- management ---------------------------------------------------------------------------

    async def SaveSubscription(self, request: pb.SaveSubscriptionRequest, context: Any) -> pb.SaveSubscriptionResponse:
        store_id = self.edge.store(request.store)
        name = self._name(request.name)
        event_filter = make_filter(request.type, request.selector, _pattern(request))
        definition = Definition(int(event_filter.kind), event_filter.selector, _pattern(request), self._settings(request.settings))
        existing = {s.name for s in await self.persistent.list(store_id)}
        most = self.edge.limits.max_persistent_subscriptions
        if name not in existing and len(existing) >= most:
            raise LimitExceededError(
                "name", f"store {store_id!r} has {most} persistent subscriptions, the most allowed", "max_persistent_subscriptions"
            )
        created = await self.persistent.save(store_id, name, definition, self._start(request.start_from))
        (info,) = [s for s in await self.persistent.list(store_id) if s.name == name]
        return pb.SaveSubscriptionResponse(subscription=_info(info), created=created)

    async def RemoveSubscription(self, request: pb.RemoveSubscriptionRequest, context: Any) -> pb.RemoveSubscriptionResponse:
        await self.persistent.remove(self.edge.store(request.store), self._name(request.name))
        return pb.RemoveSubscriptionResponse()

    async def ListSubscriptions(self, request: pb.ListSubscriptionsRequest, context: Any) -> pb.ListSubscriptionsResponse:
        store_id = self.edge.store(request.store)
        stats = await self.persistent.list(store_id)
        visible = security.scope(Operation.SUBSCRIBE, store_id)
        if not visible.everything:  # only subscriptions whose events the caller may read
            stats = [s for s in stats if _selects_within(s.definition, visible)]
        return pb.ListSubscriptionsResponse(subscriptions=[_info(s) for s in stats])

    # -- at the owner: acks, nacks, replay ----------------------------------------------------

    async def AckEvent(self, request: pb.AckEventRequest, context: Any) -> bytes:
        store_id = self.edge.store(request.store)
        name = self._name(request.subscription_name, "subscription_name")
        positions = list(request.positions)

        async def here(dispatcher: Dispatcher) -> bytes:
            await dispatcher.ack(positions)
            return b""  # AckEventResponse{}

        return await self.relay.call(store_id, name, "AckEvent", request, here, time_left_s=context.time_remaining())

    async def NackEvent(self, request: pb.NackEventRequest, context: Any) -> bytes:
        store_id = self.edge.store(request.store)
        action = nack_action(request.action)
        name = self._name(request.subscription_name, "subscription_name")
        positions = list(request.positions)

        async def here(dispatcher: Dispatcher) -> bytes:
            await dispatcher.nack(positions, action)
            return b""  # NackEventResponse{}

        return await self.relay.call(store_id, name, "NackEvent", request, here, time_left_s=context.time_remaining())

    async def ReplayParkedEvents(self, request: pb.ReplayParkedEventsRequest, context: Any) -> bytes:
        store_id = self.edge.store(request.store)
        name = self._name(request.subscription_name, "subscription_name")

        async def here(dispatcher: Dispatcher) -> bytes:
            return pb.ReplayParkedEventsResponse(replayed=await dispatcher.replay_parked()).SerializeToString()

        return await self.relay.call(
            store_id, name, "ReplayParkedEvents", request, here, time_left_s=context.time_remaining()
        )

    # -- Subscribe ----------------------------------------------------------------------------

    async def Subscribe(self, request: pb.SubscribeRequest, context: Any) -> AsyncIterator[bytes]:
        store_id = self.edge.store(request.store)
        max_batch = request.max_batch or 100
        if max_batch > 1000:
            raise InvalidArgumentError("max_batch", f"must be 1..1000 (0 means 100), got {max_batch}")
        if request.heartbeat_ms and request.heartbeat_ms < 100:
            raise InvalidArgumentError("heartbeat_ms", "must be >= 100 (0 means 5000)")
        heartbeat_s = (request.heartbeat_ms or 5000) / 1000
        if request.subscription_name in ("", TRANSIENT):
            event_filter = make_filter(request.type, request.selector, _pattern(request))
            start = self._start(request.start_from)
            visible = security.scope(Operation.SUBSCRIBE, store_id)
            subscription = self.hub.subscribe(
                store_id,
                event_filter,
                start,
                max_batch=max_batch,
                heartbeat_s=heartbeat_s,
                streams=None if visible.everything or event_filter.stream is not None else visible.allows,
            )
            async with subscription as messages:
                yield _control(confirmation=pb.SubscriptionConfirmation(subscription_name=TRANSIENT, node_id=self.node_id))
                async for message in messages:
                    for frame in self._frames(message, request.json):
                        yield frame
            return
        name = self._name(request.subscription_name, "subscription_name")
        if security.current_caller().restricted:
            await self._may_consume(store_id, name)
        asked = None
        if request.type or request.selector or request.HasField("pattern"):
            asked = make_filter(request.type, request.selector, _pattern(request))

        def here(dispatcher: Dispatcher) -> AsyncIterator[bytes]:
            return self._consume(dispatcher, name, asked, request.json, max_batch, heartbeat_s)

        async for message in self.relay.stream(store_id, name, request, here):
            yield message

    async def _may_consume(self, store_id: str, name: str) -> None:
        """A persistent subscription hands out every event it selects: its consumers need read
        access to all of them — its one stream, or `$all`."""
        definitions = {s.name: s.definition for s in await self.persistent.list(store_id)}
        definition = definitions.get(name)
        if definition is None:
            raise SubscriptionNotFoundError(name)
        stream = stream_of_selector(definition.kind, definition.selector) or ALL_STREAM
        security.require(Operation.SUBSCRIBE, store_id, stream)

    async def _consume(
        self, dispatcher: Dispatcher, name: str, asked: EventFilter | None, as_json: bool, max_batch: int, heartbeat_s: float
    ) -> AsyncIterator[bytes]:
        """A consumer of this node's dispatcher (ends by raising why the dispatcher stopped)."""
        if asked is not None and asked != dispatcher.filter:
            raise InvalidArgumentError(
                "subscription_name", f"subscription {name!r} selects other events than this request describes"
            )
        consumer_id, queue = dispatcher.connect()
        try:
            yield _control(
                confirmation=pb.SubscriptionConfirmation(subscription_name=name, consumer_id=consumer_id, node_id=self.node_id)
            )
            async for item in consume(dispatcher, consumer_id, queue, heartbeat_s, max_batch):
                if isinstance(item, Heartbeat):
                    yield _control(heartbeat=pb.Heartbeat(position=item.position))
                elif isinstance(item, CaughtUp):
                    yield _control(caught_up=pb.CaughtUp(position=item.position))
                else:
                    for frame in self._events([d.event for d in item], as_json, [d.retry_count for d in item]):
                        yield frame
        finally:
            dispatcher.disconnect(consumer_id)


def _selects_within(definition: Definition, visible: Scope) -> bool:
    stream = stream_of_selector(definition.kind, definition.selector)
    return stream is not None and visible.allows(stream)


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
