"""AppendSession through a gateway: one client session forwarded as one stream to one node,
carried to another node when that one dies.

Owns: `SessionForwarder` (the handler) and `_GatewaySession` (one session's state: the
appends in flight by correlation id, the node stream they went on, the answers to write).
Must not import gater.store, gater.subscriptions or gater.node.

Messages stay bytes. The gateway reads only what it must: the correlation id of each request
and answer (`_wire.correlation_id`, field 1, without parsing the rest), and — only when a
node failed with appends in flight — whether each of those appends' events all carry ids.

When the node stream fails with UNAVAILABLE (the node died, hangs or stops), the appends in
flight whose events all carry ids are written again, in the order they came, on a new stream
to another member: a repeat of an append that did commit is answered as the original
(duplicate=true), one that did not commits now, so each is in the log exactly once. The
others may or may not have been written: each is answered UNAVAILABLE on its own, and the
session goes on. A status the node made itself (it carries our typed details: a request it
could not decode) is relayed to the client and ends the session; any other failure of the
node stream counts as the node's.

One lock orders writes to the node stream against the switch to another one: an append is
either in the set a failover re-sends, or written to the new stream after the switch.
Flow control: at most `max_in_flight` appends between being read from the client and having
their answer taken by the client's transport; at the cap the gateway stops reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import status_pb2

from exesdb.v1 import streams_pb2

from .. import _wire
from ..errors import GaterError, InvalidArgumentError, UnavailableError, encode_status
from .pool import ChannelPool
from .proxy import _CREDENTIALS, Forwarder, _answered_by_node, _forwardable
from .retry import Attempts, Verdict

__all__ = ["SESSION_METHOD", "SessionForwarder"]

log = logging.getLogger(__name__)

SESSION_METHOD = "/exesdb.v1.Streams/AppendSession"
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_END = object()


def _identity(b: bytes) -> bytes:
    return b


def _answer(cid: int, error: GaterError) -> bytes:
    status = status_pb2.Status.FromString(encode_status(error)[2])
    return streams_pb2.AppendSessionResponse(correlation_id=cid, error=status).SerializeToString()


def _all_ids(raw: bytes) -> bool:
    """Whether every event of the append carries an id (a repeat is then a no-op)."""
    try:
        events = streams_pb2.AppendSessionRequest.FromString(raw).append.events
    except Exception:  # noqa: BLE001 - the node answers INVALID_ARGUMENT itself
        return False
    return bool(events) and all(e.event_id for e in events)


class _Relay:
    """A node's own status for the whole session, to pass on to the client."""

    __slots__ = ("error",)

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.error = error


class SessionForwarder:
    """The gateway's AppendSession handler (for `_grpc.session_handler`, requests as bytes),
    sending through `forwarder`'s pool with the metadata every forwarded call carries."""

    def __init__(self, forwarder: Forwarder, max_in_flight: int = 256) -> None:
        self.forwarder = forwarder
        self.max_in_flight = max_in_flight

    def _metadata(self, context: grpc.aio.ServicerContext) -> Callable[[], tuple[tuple[str, Any], ...]]:
        f = self.forwarder
        drop = _CREDENTIALS if f.acting_for is not None else frozenset()
        client = _forwardable(context.invocation_metadata(), drop) + f.extra_metadata

        def metadata() -> tuple[tuple[str, Any], ...]:
            # Asked when a node stream opens, in the task that admitted the session's appends
            # (the principal a gateway names is known only once one was admitted).
            return client + (f.acting_for() if f.acting_for is not None else ())

        return metadata

    async def __call__(
        self, requests: AsyncIterator[tuple[bytes, GaterError | None]], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        session = _GatewaySession(self.forwarder.pool, self._metadata(context), self.max_in_flight)
        async for item in session.run(requests):
            if isinstance(item, _Relay):
                e = item.error
                await context.abort(e.code(), e.details() or "", trailing_metadata=_forwardable(e.trailing_metadata()))
            yield item


class _GatewaySession:
    def __init__(self, pool: ChannelPool, metadata: Callable[[], tuple[tuple[str, Any], ...]], max_in_flight: int) -> None:
        self.pool = pool
        self.metadata = metadata
        self.slots = asyncio.Semaphore(max_in_flight)
        self.in_flight: dict[int, bytes] = {}
        """Requests sent to a node and not answered yet, in the order they came."""
        self.answers: asyncio.Queue[Any] = asyncio.Queue()
        """Answers for the client (bounded by `slots`), then _END, a _Relay or an exception."""
        self.lock = asyncio.Lock()
        self.upstream: grpc.aio.StreamStreamCall | None = None
        self.member: str | None = None
        self.pumps: set[asyncio.Task[None]] = set()
        self.attempts = Attempts(safe=True, resumable=True)
        self.progressed = False
        """The current node stream answered something (the retry core's notion of progress)."""
        self.client_done = False
        self.ended = False

    async def run(self, requests: AsyncIterator[tuple[bytes, GaterError | None]]) -> AsyncIterator[Any]:
        reader = asyncio.create_task(self._read(requests), name="gateway-session-reader")
        try:
            while True:
                item = await self.answers.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, bytes):
                    self.slots.release()  # resumed once the client's transport took it
        finally:
            reader.cancel()
            for task in list(self.pumps):
                task.cancel()
            if self.upstream is not None:
                self.upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def _maybe_end(self) -> None:
        if self.client_done and not self.in_flight and not self.ended:
            self.ended = True
            self.answers.put_nowait(_END)

    # -- client → node ------------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[tuple[bytes, GaterError | None]]) -> None:
        try:
            async for raw, refusal in requests:
                await self.slots.acquire()
                try:
                    cid = _wire.correlation_id(raw)
                except ValueError:
                    raise InvalidArgumentError(
                        "request", "is not a valid exesdb.v1.AppendSessionRequest (protobuf decoding failed)"
                    ) from None
                if refusal is not None:
                    self.answers.put_nowait(_answer(cid, refusal))
                elif cid in self.in_flight:
                    self.answers.put_nowait(
                        _answer(cid, InvalidArgumentError("correlation_id", f"{cid} is already in flight in this session"))
                    )
                else:
                    async with self.lock:
                        self.in_flight[cid] = raw
                        if self.upstream is None:
                            await self._open(None)
                        else:
                            await self._write(self.upstream, raw)
            async with self.lock:
                self.client_done = True
                if self.upstream is not None:
                    with contextlib.suppress(Exception):
                        await self.upstream.done_writing()
                self._maybe_end()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - ends the session with its status
            self.answers.put_nowait(e)

    @staticmethod
    async def _write(call: grpc.aio.StreamStreamCall, raw: bytes) -> bool:
        try:
            await call.write(raw)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the stream failed: its pump fails over, re-sending
            return False
        return True

    async def _open(self, failed: str | None) -> None:
        """With the lock held: a new node stream for what is in flight (after `failed` broke),
        or, when no member is left, UNAVAILABLE for each of them."""
        pool = self.pool
        while True:
            now = time.monotonic()
            if failed is None:
                decision = self.attempts.first(pool.state, now)
            else:
                decision = self.attempts.failed(
                    failed, code="UNAVAILABLE", sent=True, progressed=self.progressed, state=pool.state, now=now, rng=pool.rng
                )
            if decision.verdict is not Verdict.SEND or decision.member is None:
                self._unavailable(list(self.in_flight), "no healthy node available for this session")
                self.attempts = Attempts(safe=True, resumable=True)  # the next append tries afresh
                return
            member = decision.member
            channel = pool.channel(member)
            if channel is None:
                pool.report_failure(member)
                failed = member
                continue
            call = channel.stream_stream(SESSION_METHOD, request_serializer=_identity, response_deserializer=_identity)(
                metadata=self.metadata()
            )
            self.upstream, self.member, self.progressed = call, member, False
            pool.acquire(member)
            pump = asyncio.create_task(self._pump(call, member), name="gateway-session-pump")
            self.pumps.add(pump)
            pump.add_done_callback(self.pumps.discard)
            for raw in list(self.in_flight.values()):
                if not await self._write(call, raw):
                    return  # that one failed too: its pump fails over again
            if self.client_done:
                with contextlib.suppress(Exception):
                    await call.done_writing()
            return

    def _unavailable(self, cids: list[int], why: str) -> None:
        for cid in cids:
            if self.in_flight.pop(cid, None) is not None:
                self.answers.put_nowait(_answer(cid, UnavailableError(why)))
        self._maybe_end()

    # -- node → client ------------------------------------------------------------------------

    async def _pump(self, call: grpc.aio.StreamStreamCall, member: str) -> None:
        error: grpc.aio.AioRpcError | None = None
        try:
            async for message in call:
                self.progressed = True
                cid = _wire.correlation_id(message)
                if self.in_flight.pop(cid, None) is not None:
                    self.answers.put_nowait(message)
                    self._maybe_end()
        except grpc.aio.AioRpcError as e:
            error = e
        except ValueError:
            log.error("a node sent an AppendSession answer that does not decode", extra={"member": member})
            error = None
        finally:
            self.pool.release(member)
        if error is None:
            self.pool.report_success(member)
            if not self.in_flight:
                return
            # The node ended the stream with appends unanswered: as good as a failure.
        elif error.code() != _UNAVAILABLE and _answered_by_node(error):
            self.pool.report_success(member)  # the node answered: it is alive
            self.answers.put_nowait(_Relay(error))
            return
        else:
            # UNAVAILABLE, or a status grpc made up locally for a broken connection (a write
            # that failed on it shows as INTERNAL): the member failed.
            self.pool.report_failure(member)
        await self._fail_over(call, member)

    async def _fail_over(self, call: grpc.aio.StreamStreamCall, member: str) -> None:
        async with self.lock:
            if self.upstream is not call:
                return
            self.upstream = None
            unsafe = [cid for cid, raw in self.in_flight.items() if not _all_ids(raw)]
            self._unavailable(
                unsafe,
                "the node serving this session failed; this append may or may not have been written "
                "(not all its events carry ids, so it was not sent again)",
            )
            log.info(
                "session's node failed, moving its appends",
                extra={"member": member, "resent": len(self.in_flight), "unavailable": len(unsafe)},
            )
            if self.in_flight:
                await self._open(member)
            # else the next append opens a stream to the pool's choice (which now avoids member)
