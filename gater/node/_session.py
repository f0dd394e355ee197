"""AppendSession on a node: many appends over one bidirectional stream, answered as they
commit.

Owns: `serve_session` — reads `(request, refusal)` pairs, hands each append to the store as
it arrives (so concurrent appends of a session share the writer's group commit, exactly as
concurrent AppendEvents calls do), and yields one AppendSessionResponse per request, in
completion order, carrying the request's correlation id and either the append's result or
its status (the one codec, `errors.encode_status`: same codes and typed details as the unary
call). A failed append is an answer, never the end of the session.
Must not import gater.gateway.

Flow control: at most `max_in_flight` requests are between being read and having their
answer taken by the transport; at the cap the reader stops reading the stream, so a fast
client waits on HTTP/2 flow control and the node holds a bounded amount per session.

Cancellation: when the client goes away, the tasks still waiting for their appends are
cancelled. An append already handed to the store's writer is committed whole or not at all
(one transaction; the writer answers a future nobody waits for any more and drops it), so
nothing is half-written and nothing fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from google.rpc import status_pb2

from exesdb.v1 import streams_pb2

from ..errors import GaterError, InternalError, InvalidArgumentError, encode_status

__all__ = ["serve_session", "status_of"]

log = logging.getLogger(__name__)

AppendOne = Callable[[streams_pb2.AppendEventsRequest], Awaitable[streams_pb2.AppendEventsResponse]]

_END = object()


def status_of(error: GaterError) -> status_pb2.Status:
    """The google.rpc.Status a unary call failing with `error` would have carried."""
    return status_pb2.Status.FromString(encode_status(error)[2])


def _failed(correlation_id: int, error: GaterError) -> streams_pb2.AppendSessionResponse:
    return streams_pb2.AppendSessionResponse(correlation_id=correlation_id, error=status_of(error))


class _Session:
    """The state of one session: what is in flight and the answers waiting to be written."""

    def __init__(self, append_one: AppendOne, max_in_flight: int) -> None:
        self.append_one = append_one
        self.slots = asyncio.Semaphore(max_in_flight)
        self.answers: asyncio.Queue[object] = asyncio.Queue()
        """Answers ready to write, then _END or the exception that ends the session. Bounded
        by `slots`: a slot is given back only once its answer was written."""
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.reading = True

    async def read(self, requests: AsyncIterator[tuple[streams_pb2.AppendSessionRequest, GaterError | None]]) -> None:
        try:
            async for request, refusal in requests:
                await self.slots.acquire()
                cid = request.correlation_id
                if refusal is not None:
                    self.answers.put_nowait(_failed(cid, refusal))
                elif cid in self.in_flight:
                    self.answers.put_nowait(
                        _failed(cid, InvalidArgumentError("correlation_id", f"{cid} is already in flight in this session"))
                    )
                else:
                    task = asyncio.create_task(self._append(cid, request.append))
                    self.in_flight[cid] = task
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - an undecodable request: the session ends with its status
            self.answers.put_nowait(e)
            return
        self.reading = False
        if not self.in_flight:
            self.answers.put_nowait(_END)

    async def _append(self, cid: int, append: streams_pb2.AppendEventsRequest) -> None:
        try:
            answer = streams_pb2.AppendSessionResponse(correlation_id=cid, appended=await self.append_one(append))
        except GaterError as e:
            answer = _failed(cid, e)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one append's bug must not end the others
            log.exception("append in a session failed", extra={"correlation_id": cid})
            answer = _failed(cid, InternalError("internal error; the server log has the details"))
        del self.in_flight[cid]
        self.answers.put_nowait(answer)
        if not self.reading and not self.in_flight:
            self.answers.put_nowait(_END)

    def cancel(self) -> None:
        for task in self.in_flight.values():
            task.cancel()


async def serve_session(
    requests: AsyncIterator[tuple[streams_pb2.AppendSessionRequest, GaterError | None]],
    append_one: AppendOne,
    max_in_flight: int,
) -> AsyncIterator[streams_pb2.AppendSessionResponse]:
    """The answers of one session, as its appends complete; ends once the client half-closed
    and every append it sent was answered."""
    session = _Session(append_one, max_in_flight)
    reader = asyncio.create_task(session.read(requests), name="append-session-reader")
    try:
        while True:
            answer = await session.answers.get()
            if answer is _END:
                return
            if isinstance(answer, BaseException):
                raise answer
            yield answer  # type: ignore[misc]
            session.slots.release()  # resumed only once the transport took the answer
    finally:
        reader.cancel()
        session.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
