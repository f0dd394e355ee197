"""Pass-through forwarding of exesdb.v1 calls to nodes, as raw bytes.

Owns: the forwarders for unary calls, server-streaming reads and subscriptions (with
transparent resume on another node), the retry rules (what is safe to send twice), and the
pass-through of statuses, messages, typed details, trailers, deadlines and cancellation.
Must not import gater.store, gater.subscriptions or gater.node.

Requests and responses stay bytes: a call is parsed only where a field must be read — an
append (are all its events' ids set? then it is idempotent and safe to retry), and a read or
a subscription that broke mid-stream (where to resume: only the last message is parsed).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from exesdb.v1 import streams_pb2, subscriptions_pb2

from .. import _wire
from ..errors import UnavailableError
from .pool import ChannelPool

__all__ = ["SAFE_TO_RETRY", "Forwarder", "SubscribeResume", "resume_read"]

log = logging.getLogger(__name__)


def _identity(b: bytes) -> bytes:
    return b


SAFE_TO_RETRY = frozenset(
    {
        "/exesdb.v1.Streams/ReadEvents",
        "/exesdb.v1.Streams/GetVersion",
        "/exesdb.v1.Streams/ListStreams",
        "/exesdb.v1.Subscriptions/SaveSubscription",
        "/exesdb.v1.Subscriptions/ListSubscriptions",
        "/exesdb.v1.Subscriptions/AckEvent",
        "/exesdb.v1.Subscriptions/NackEvent",
        "/exesdb.v1.Subscriptions/Subscribe",
        "/exesdb.v1.Snapshots/RecordSnapshot",
        "/exesdb.v1.Snapshots/ReadSnapshot",
        "/exesdb.v1.Snapshots/DeleteSnapshot",
        "/exesdb.v1.Snapshots/ListSnapshots",
        "/exesdb.v1.Stores/ListStores",
        "/exesdb.v1.Stores/GetStoreStatus",
        "/exesdb.v1.Stores/GetStoreConfig",
    }
)
"""Methods whose repetition has the same effect as one call (reads, acks, upserts)."""

_APPEND = "/exesdb.v1.Streams/AppendEvents"
_HOP_HEADERS = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}


def _forwardable(metadata: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((k, v) for k, v in (metadata or ()) if not k.startswith(":") and k not in _HOP_HEADERS)


def _not_sent(error: grpc.aio.AioRpcError) -> bool:
    """The request never reached the node (it could not even connect): safe to send elsewhere."""
    details = (error.details() or "").lower()
    return "failed to connect" in details or "connection refused" in details or "no route" in details


def _node_failed(error: grpc.aio.AioRpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE


class Forwarder:
    """Builds the handlers that forward each exesdb.v1 method through `pool`."""

    def __init__(self, pool: ChannelPool, *, extra_metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.pool = pool
        self.extra_metadata = extra_metadata

    # -- shared -------------------------------------------------------------------------------

    async def _no_node(self, context: grpc.aio.ServicerContext) -> None:
        known = len(self.pool.state)
        raise UnavailableError(
            f"no healthy node available ({known} known, none usable): check the nodes and the gateway's discovery"
        )

    def _metadata(self, context: grpc.aio.ServicerContext) -> tuple[tuple[str, Any], ...]:
        return _forwardable(context.invocation_metadata()) + self.extra_metadata

    @staticmethod
    def _timeout(context: grpc.aio.ServicerContext) -> float | None:
        return context.time_remaining()

    @staticmethod
    async def _relay_error(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError) -> None:
        trailers = _forwardable(error.trailing_metadata())
        await context.abort(error.code(), error.details() or "", trailing_metadata=trailers)

    # -- unary --------------------------------------------------------------------------------

    def unary(self, method: str) -> Callable[..., Any]:
        always_safe = method in SAFE_TO_RETRY
        pool = self.pool

        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            safe = always_safe or (method == _APPEND and _append_is_idempotent(request))
            metadata = self._metadata(context)
            address = pool.choose()
            tried: set[str] = set()
            while True:
                if address is None or address in tried:
                    await self._no_node(context)
                tried.add(address)
                channel = pool.channel(address)
                if channel is None:
                    address = pool.fallback(address)
                    continue
                call = channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
                pool.acquire(address)
                try:
                    response = await call(request, metadata=metadata, timeout=self._timeout(context))
                except grpc.aio.AioRpcError as e:
                    if not _node_failed(e):
                        pool.report_success(address)  # the node answered: it is alive
                        await self._relay_error(context, e)
                    pool.report_failure(address)
                    if not (safe or _not_sent(e)):
                        await self._relay_error(context, e)
                    log.info("call failed on a node, trying another", extra={"method": method, "member": address})
                    address = pool.fallback(address)
                    continue
                finally:
                    pool.release(address)
                pool.report_success(address)
                return response

        return handler

    # -- server streams -----------------------------------------------------------------------

    def read_stream(self, method: str) -> Callable[..., Any]:
        """ReadEvents (and any plain server stream): on a node failure mid-stream, the read
        goes on from after the last event received, on another node."""
        pool = self.pool

        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            metadata = self._metadata(context)
            address = pool.choose()
            current = request
            attempts = 0
            while True:
                attempts += 1
                if address is None or attempts > len(pool.state) + 2:
                    await self._no_node(context)
                channel = pool.channel(address)
                if channel is None:
                    address = pool.fallback(address)
                    continue
                call = channel.unary_stream(method, request_serializer=_identity, response_deserializer=_identity)(
                    current, metadata=metadata, timeout=self._timeout(context)
                )
                first: bytes | None = None
                last: bytes | None = None
                pool.acquire(address)
                try:
                    async for message in call:
                        if first is None:
                            first = message
                        last = message
                        yield message
                except grpc.aio.AioRpcError as e:
                    if not _node_failed(e):
                        await self._relay_error(context, e)
                    pool.report_failure(address)
                    if method != "/exesdb.v1.Streams/ReadEvents" and last is not None:
                        await self._relay_error(context, e)  # no way to know where to resume
                    resumed = resume_read(current, first, last)
                    if resumed is None:
                        return  # everything asked for was delivered
                    current = resumed
                    address = pool.fallback(address)
                    log.info("read resumed on another node", extra={"member": address})
                    continue
                finally:
                    call.cancel()  # the client left (or the node failed): end the node's call too
                    pool.release(address)
                pool.report_success(address)
                return

        return handler

    def subscribe(self) -> Callable[..., Any]:
        """Subscribe: a node's death is hidden from the client. Transient subscriptions go on
        from after the last event or checkpoint the client received; persistent ones re-attach
        to their durable state. The new node's confirmation (and a repeated caught_up) are not
        passed on."""
        method = "/exesdb.v1.Subscriptions/Subscribe"
        pool = self.pool

        async def handler(
            parsed: subscriptions_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            metadata = self._metadata(context)
            resume = SubscribeResume(parsed)
            current = parsed.SerializeToString()
            address = pool.choose()
            failures = 0
            while True:
                if address is None:
                    await self._no_node(context)
                channel = pool.channel(address)
                if channel is None:
                    address = pool.fallback(address)
                    continue
                call = channel.unary_stream(method, request_serializer=_identity, response_deserializer=_identity)(
                    current, metadata=metadata, timeout=self._timeout(context)
                )
                pool.acquire(address)
                try:
                    async for message in call:
                        if resume.passes(message):
                            yield message
                        failures = 0
                except grpc.aio.AioRpcError as e:
                    if not _node_failed(e):
                        await self._relay_error(context, e)
                    pool.report_failure(address)
                    failures += 1
                    if failures > 5:
                        await self._relay_error(context, e)
                    current = resume.request()
                    address = pool.fallback(address) or pool.choose()
                    log.info("subscription resumed on another node", extra={"member": address, "from": resume.describe()})
                    continue
                finally:
                    call.cancel()
                    pool.release(address)
                return

        return handler


def _append_is_idempotent(request: bytes) -> bool:
    try:
        parsed = streams_pb2.AppendEventsRequest.FromString(request)
    except Exception:  # noqa: BLE001 - the node will answer INVALID_ARGUMENT itself
        return False
    return bool(parsed.events) and all(e.event_id for e in parsed.events)


def resume_read(request: bytes, first: bytes | None, last: bytes | None) -> bytes | None:
    """The ReadEvents request that continues after the last batch received; None when
    nothing is left to read. Versions (and $all positions) are contiguous, so what was
    received is counted from the first and last keys without parsing the batches between."""
    if first is None or last is None:
        return request
    parsed = streams_pb2.ReadEventsRequest.FromString(request)
    head = streams_pb2.ReadEventsResponse.FromString(first).events
    tail = streams_pb2.ReadEventsResponse.FromString(last).events
    if not head or not tail:
        return request
    by_position = parsed.stream_id == "$all"
    first_key = head[0].position if by_position else head[0].version
    last_key = tail[-1].position if by_position else tail[-1].version
    backward = parsed.direction == streams_pb2.READ_DIRECTION_BACKWARD
    if parsed.count:
        left = parsed.count - (abs(last_key - first_key) + 1)
        if left <= 0:
            return None
        parsed.count = left
    if backward and last_key == 0:
        return None
    parsed.from_version = last_key - 1 if backward else last_key + 1
    return parsed.SerializeToString()


class SubscribeResume:
    """What a subscription stream has delivered so far, read from the first byte of each
    message (its oneof tag) and, lazily, the last events or position message."""

    def __init__(self, request: subscriptions_pb2.SubscribeRequest) -> None:
        self.original = request
        self.persistent = request.subscription_name not in ("", "transient")
        self.one_stream = request.type == subscriptions_pb2.SUBSCRIPTION_TYPE_BY_STREAM and request.selector != "$all"
        self.once = _wire.OncePerStream()
        self.last_events: bytes | None = None
        self.last_position_message: bytes | None = None

    def passes(self, message: bytes) -> bool:
        if not self.once.passes(message):
            return False
        tag = message[0] if message else 0
        if tag == _wire.EVENTS:
            self.last_events = message
        elif tag in (_wire.CAUGHT_UP, _wire.CHECKPOINT, _wire.HEARTBEAT):
            self.last_position_message = message
        return True

    def _positions(self) -> tuple[int | None, int | None]:
        """(last global position examined, last stream version delivered)."""
        position = version = None
        if self.last_events is not None:
            events = subscriptions_pb2.SubscribeResponse.FromString(self.last_events).events.events
            if events:
                position, version = events[-1].position, events[-1].version
        if self.last_position_message is not None:
            msg = subscriptions_pb2.SubscribeResponse.FromString(self.last_position_message)
            kind = msg.WhichOneof("message")
            p = getattr(msg, kind).position
            position = p if position is None else max(position, p)
        return position, version

    def request(self) -> bytes:
        if self.persistent:
            return self.original.SerializeToString()
        position, _ = self._positions()
        if position is None:
            return self.original.SerializeToString()
        resumed = subscriptions_pb2.SubscribeRequest()
        resumed.CopyFrom(self.original)
        if self.one_stream:
            # Go on by global position (exact even when no event of the stream came yet): the
            # same stream, as a pattern on the record's stream id.
            stream = self.original.selector
            stream = stream[1:] if stream.startswith("$") else stream
            resumed.type = subscriptions_pb2.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN
            resumed.selector = ""
            resumed.pattern.Clear()
            resumed.pattern.update({"stream_id": stream})
        resumed.start_from.revision = position + 1
        return resumed.SerializeToString()

    def describe(self) -> str:
        position, version = self._positions()
        return f"position={position} version={version}"

