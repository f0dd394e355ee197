"""Pass-through forwarding of exesdb.v1 calls to nodes, as raw bytes.

Owns: `Forwarder` — one forwarding loop for unary calls, server-streaming reads and
subscriptions (the shell around the pure `retry.Attempts`: it sends, reports each outcome to
the pool, and carries out relay / send again / give up), transparent resume of broken streams
(`ReadResume`, `SubscribeResume`), and the pass-through of statuses, messages, typed details,
trailers, deadlines and cancellation.
Must not import gater.store, gater.subscriptions or gater.node.

Requests and responses stay bytes: a call is parsed only where a field must be read — an
append (are all its events' ids set? then it is idempotent and safe to retry), and a read or
a subscription that broke mid-stream (where to resume: only the last message is parsed).

"Not sent" is a fact, never a guess from an error's text: a request that is not safe to send
twice is issued only on a member whose channel is connected (READY); when the member does not
connect in time the request was not sent, and it may go to another member. Once issued, a
failure of an unsafe request is relayed as it is.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import grpc

from exesdb.v1 import streams_pb2, subscriptions_pb2

from .. import _wire
from ..errors import STATUS_DETAILS_KEY, UnavailableError
from ..metrics import Metrics
from ..security.admission import FORWARDING_HEADERS
from ..tracing import TRACE_HEADERS, Tracing, set_error
from ._query_resume import QueryReadResume
from .pool import ChannelPool
from .retry import RESUMABLE, SAFE_TO_RETRY, Attempts, Verdict

__all__ = ["Forwarder", "ReadResume", "SubscribeResume", "resume_read"]

log = logging.getLogger(__name__)


def _identity(b: bytes) -> bytes:
    return b


_NO_SPAN = contextlib.nullcontext(None)


_APPEND = "/exesdb.v1.Streams/AppendEvents"
_READ = "/exesdb.v1.Streams/ReadEvents"
_SUBSCRIBE = "/exesdb.v1.Subscriptions/Subscribe"
_HOP_HEADERS = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}
_CREDENTIALS = frozenset({"authorization", "x-api-key", "x-gater-secret"})
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
# Statuses that say nothing about the node's health: the caller's deadline ran out, or the
# call was cancelled.
_NEUTRAL = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def _forwardable(metadata: Any, drop: frozenset[str] = frozenset()) -> tuple[tuple[str, Any], ...]:
    """The client's metadata as a node may see it: never the headers that name a principal
    (only this gateway may, for a client it authenticated), nor those in `drop`."""
    return tuple(
        (k, v)
        for k, v in (metadata or ())
        if not k.startswith(":") and k not in _HOP_HEADERS and k not in FORWARDING_HEADERS and k not in drop
    )


class Resume(Protocol):
    """What a call has delivered, and what to ask for on the next attempt."""

    def request(self) -> bytes | None:
        """The request for the next attempt (the original one first); None when everything
        asked for was delivered."""

    def passes(self, message: bytes) -> bool:
        """Notes a message from the node; False when the client must not get it."""

    def describe(self) -> str:
        """Where the call goes on from, for the log."""


class _Once:
    """A call that cannot go on where it broke: the same request every time."""

    __slots__ = ("_request",)

    def __init__(self, request: bytes) -> None:
        self._request = request

    def request(self) -> bytes:
        return self._request

    def passes(self, message: bytes) -> bool:
        return True

    def describe(self) -> str:
        return "from the start"


class Forwarder:
    """Builds the handlers that forward each exesdb.v1 method through `pool`."""

    def __init__(
        self,
        pool: ChannelPool,
        *,
        extra_metadata: tuple[tuple[str, str], ...] = (),
        acting_for: Callable[[], tuple[tuple[str, str], ...]] | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.pool = pool
        self.extra_metadata = extra_metadata
        self.acting_for = acting_for
        """With authentication on: the headers naming the client this gateway authenticated
        (its own credentials are then not passed on: the gateway vouches for the client)."""
        self._drop = _CREDENTIALS if acting_for is not None else frozenset()
        self.metrics = metrics
        self.tracing = tracing if tracing is not None and tracing.enabled else None
        """With tracing, each attempt is a client span whose `traceparent` replaces the
        caller's in the forwarded metadata; without, the caller's goes on as it came."""

    def unary(self, method: str) -> Callable[..., Any]:
        always_safe = method in SAFE_TO_RETRY

        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes | None:
            safe = always_safe or (method == _APPEND and _append_is_idempotent(request))
            responses = [r async for r in self._forward(method, _Once(request), context, safe=safe, streaming=False)]
            return responses[0]

        return handler

    def read_stream(self, method: str) -> Callable[..., Any]:
        """ReadEvents (and any plain server stream): on a node failure mid-stream, the read
        goes on from after the last event received, on another node."""
        safe = method in SAFE_TO_RETRY

        async def handler(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            resume: Resume = ReadResume(request) if method == _READ else _Once(request)
            async for message in self._forward(method, resume, context, safe=safe, streaming=True):
                yield message

        return handler

    def subscribe(self) -> Callable[..., Any]:
        """Subscribe: a node's death is hidden from the client. Transient subscriptions go on
        from after the last event or checkpoint the client received; persistent ones re-attach
        to their durable state. The new node's confirmation (and a repeated caught_up) are not
        passed on."""

        async def handler(
            parsed: subscriptions_pb2.SubscribeRequest, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[bytes]:
            resume = SubscribeResume(parsed)
            async for message in self._forward(_SUBSCRIBE, resume, context, safe=True, streaming=True):
                yield message

        return handler

    # -- the one loop -------------------------------------------------------------------------

    async def _forward(
        self, method: str, resume: Resume, context: grpc.aio.ServicerContext, *, safe: bool, streaming: bool
    ) -> AsyncIterator[bytes]:
        pool = self.pool
        metadata = _forwardable(context.invocation_metadata(), self._drop) + self.extra_metadata
        if self.acting_for is not None:
            metadata += self.acting_for()
        tracing = self.tracing
        if tracing is not None:
            metadata = tuple((k, v) for k, v in metadata if k not in TRACE_HEADERS)
        attempts = Attempts(safe=safe, resumable=method in RESUMABLE)
        delivered = False  # a message reached the client: a later attempt resumes the stream
        decision = attempts.first(pool.state, time.monotonic())
        while True:
            if decision.verdict is Verdict.GIVE_UP:
                raise self._no_node(attempts)
            address = decision.member
            assert address is not None
            request = resume.request()
            if request is None:
                return  # everything asked for was delivered
            if safe:
                channel = pool.channel(address)
            else:
                channel = await pool.connected(address, context.time_remaining())
            if channel is None:  # never issued: not sent
                pool.report_failure(address)
                self._count_retry(method)
                decision = attempts.failed(
                    address,
                    code=_UNAVAILABLE.name,
                    sent=False,
                    progressed=False,
                    state=pool.state,
                    now=time.monotonic(),
                    rng=pool.rng,
                )
                log.info("member not connected, trying another", extra={"method": method, "member": address})
                continue
            progressed = False
            error: grpc.aio.AioRpcError | None = None
            if attempts.sent and delivered and self.metrics is not None:
                self.metrics.gateway_resumed_streams.labels("subscribe" if method == _SUBSCRIBE else "read").inc()
            pool.acquire(address)
            with tracing.client_span(method, address) if tracing is not None else _NO_SPAN as outgoing:
                sent_metadata = metadata + outgoing.metadata if outgoing is not None else metadata
                try:
                    if streaming:
                        call = channel.unary_stream(method, request_serializer=_identity, response_deserializer=_identity)(
                            request, metadata=sent_metadata, timeout=context.time_remaining()
                        )
                        try:
                            async for message in call:
                                progressed = True
                                if resume.passes(message):
                                    delivered = True
                                    yield message
                        finally:
                            call.cancel()  # the client left (or the node failed): end the node's call too
                    else:
                        call = channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
                        yield await call(request, metadata=sent_metadata, timeout=context.time_remaining())
                except grpc.aio.AioRpcError as e:
                    error = e
                    if outgoing is not None:
                        set_error(outgoing.span, e.code().name, e.details() or "")
                finally:
                    pool.release(address)
            if error is None:
                pool.report_success(address)
                if attempts.sent > 1 and self.metrics is not None:
                    self.metrics.gateway_failovers.labels(method).inc()
                return
            code = error.code()
            if code == _UNAVAILABLE and not _answered_by_node(error):
                pool.report_failure(address)
            elif code not in _NEUTRAL:
                pool.report_success(address)  # the node answered: it is alive
            decision = attempts.failed(
                address,
                code=code.name,
                sent=True,
                progressed=progressed,
                state=pool.state,
                now=time.monotonic(),
                rng=pool.rng,
            )
            if decision.verdict is Verdict.RELAY:
                await context.abort(code, error.details() or "", trailing_metadata=_forwardable(error.trailing_metadata()))
            self._count_retry(method)
            log.info(
                "call failed on a node, trying another",
                extra={"method": method, "member": address, "code": code.name, "resume": resume.describe()},
            )

    async def send(self, method: str, request: bytes, timeout_s: float = 5.0) -> bytes:
        """A call of the gateway's own (an audit record): to the pool's choice, then to every
        other usable member once, until one answers; what is not UNAVAILABLE is the answer."""
        tried: set[str] = set()
        metadata = self.extra_metadata
        while (address := self.pool.choose()) is not None and address not in tried:
            tried.add(address)
            channel = self.pool.channel(address)
            if channel is None:
                continue
            call = channel.unary_unary(method, request_serializer=_identity, response_deserializer=_identity)
            try:
                return await call(request, metadata=metadata, timeout=timeout_s)
            except grpc.aio.AioRpcError as e:
                if e.code() != _UNAVAILABLE:
                    raise
        raise UnavailableError("no node answered")

    def _count_retry(self, method: str) -> None:
        if self.metrics is not None:
            self.metrics.gateway_retries.labels(method).inc()

    def _no_node(self, attempts: Attempts) -> UnavailableError:
        known = len(self.pool.state)
        if not attempts.sent:
            return UnavailableError(
                f"no healthy node available ({known} known, none usable): check the nodes and the gateway's discovery"
            )
        return UnavailableError(
            f"no healthy node left to try: the call failed on {len(attempts.tried)} node(s) in a row ({known} known)"
        )


def _answered_by_node(error: grpc.aio.AioRpcError) -> bool:
    """True when the status came from a gater node (it carries our typed details): the node
    is alive and said UNAVAILABLE itself (storage down, lease moving), so it is not to blame;
    a status made by grpc for a dead or unreachable member carries none."""
    return any(key == STATUS_DETAILS_KEY for key, _ in error.trailing_metadata() or ())


def _append_is_idempotent(request: bytes) -> bool:
    try:
        parsed = streams_pb2.AppendEventsRequest.FromString(request)
    except Exception:  # noqa: BLE001 - the node will answer INVALID_ARGUMENT itself
        return False
    # A multi-stream append's further streams too: an event without an id would get a new one
    # on every attempt, and a repeat would write it twice.
    events = [*parsed.events, *(e for part in parsed.more_streams for e in part.events)]
    return bool(parsed.events) and all(e.event_id for e in events)


def resume_read(request: bytes, first: bytes | None, last: bytes | None) -> bytes | None:
    """The ReadEvents request that continues after the last batch received; None when
    nothing is left to read. Versions (and $all positions) are contiguous, so what was
    received is counted from the first and last keys without parsing the batches between."""
    if first is None or last is None:
        return request
    parsed = streams_pb2.ReadEventsRequest.FromString(request)
    if parsed.HasField("query"):
        return None  # a query read's positions are not contiguous: ReadResume counts them
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


class ReadResume:
    """A ReadEvents call across attempts: the next attempt's request goes on after the last
    event of the previous one (`resume_read`)."""

    __slots__ = ("_current", "_first", "_last", "_query", "_started")

    def __init__(self, request: bytes) -> None:
        self._current: bytes | None = request
        self._query = QueryReadResume.of(request)
        self._first: bytes | None = None
        self._last: bytes | None = None
        self._started = False

    def request(self) -> bytes | None:
        if self._started and self._current is not None:
            if self._query is not None:
                self._current = self._query.request()
            else:
                self._current = resume_read(self._current, self._first, self._last)
        self._started = True
        self._first = self._last = None
        return self._current

    def passes(self, message: bytes) -> bool:
        if self._query is not None:
            self._query.passes(message)
        if self._first is None:
            self._first = message
        self._last = message
        return True

    def describe(self) -> str:
        return "after the last event received"


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

