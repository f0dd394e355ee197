"""How the client sends appends: a unary AppendEvents while it has one append in flight, and
one shared AppendSession stream once it has more (like NATS's `publish_async`: many
concurrent small appends cost messages on an open stream, not a call each).

Owns: `Appender` — `append(request, timeout_s)` picks the way, opens the session lazily on
the connection in use, matches answers to callers by correlation id, and turns each failed
answer into the gater error its status names (the one codec, `errors.decode_status`).
Must not import anything from gater but gater.errors and this package.

When the session's stream breaks because the server went away (UNAVAILABLE), the connection
moves to its next target and the appends waiting on the old session are sent again over a new
one there: the client gives every event an id, so a repeat of an append that did commit is
answered as the original (duplicate=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import grpc

from exesdb.v1 import streams_pb2

from ..errors import DeadlineExceededError, UnavailableError, decode_status
from ._connection import Connection, Stubs

__all__ = ["Appender"]

_CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}

MAX_IN_FLIGHT = 256
"""Appends one session has in flight at most (the server's own bound); more wait here."""


class _Broken(Exception):
    """The session's stream ended before this append was answered: send it another way."""


class _Session:
    """One AppendSession call and the appends waiting for its answers. One task writes the
    requests in turn (a caller that gives up — deadline, cancellation — never interrupts a
    write, which would cancel the whole call), one reads the answers."""

    def __init__(self, stubs: Stubs, metadata: tuple[tuple[str, str], ...]) -> None:
        self.stubs = stubs
        self.call = stubs.streams.AppendSession(metadata=metadata or None)
        self.waiting: dict[int, asyncio.Future[streams_pb2.AppendEventsResponse]] = {}
        self.ids = itertools.count(1)
        self.outbox: asyncio.Queue[streams_pb2.AppendSessionRequest] = asyncio.Queue()
        """Requests to write; bounded by `slots`."""
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.broken = False
        self.unavailable = False
        """The call ended with UNAVAILABLE: the server went away."""
        self.tasks = (
            asyncio.create_task(self._write(), name="gater-append-session-writer"),
            asyncio.create_task(self._read(), name="gater-append-session-reader"),
        )

    async def append(self, request: streams_pb2.AppendEventsRequest) -> streams_pb2.AppendEventsResponse:
        async with self.slots:
            if self.broken:
                raise _Broken
            cid = next(self.ids)
            future: asyncio.Future[streams_pb2.AppendEventsResponse] = asyncio.get_running_loop().create_future()
            self.waiting[cid] = future
            self.outbox.put_nowait(streams_pb2.AppendSessionRequest(correlation_id=cid, append=request))
            try:
                return await future
            finally:
                self.waiting.pop(cid, None)

    async def _write(self) -> None:
        try:
            while True:
                await self.call.write(await self.outbox.get())
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            self.call.cancel()  # it ended (then this does nothing) or now does: the reader sees how
        finally:
            self._break()

    async def _read(self) -> None:
        try:
            async for answer in self.call:
                future = self.waiting.pop(answer.correlation_id, None)
                if future is None or future.done():
                    continue  # its caller gave up (deadline, cancellation)
                if answer.WhichOneof("result") == "appended":
                    future.set_result(answer.appended)
                else:
                    status = answer.error
                    code = _CODE_NAMES.get(status.code, "UNKNOWN")
                    future.set_exception(decode_status(code, status.message, status.SerializeToString()))
        except grpc.aio.AioRpcError as e:
            self.unavailable = e.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            self._break()

    async def ended(self) -> None:
        """Waits until the reader has seen the call end: then `unavailable` says whether the
        server went away. (A failed write breaks the session first, before the reader has
        the call's status.)"""
        await asyncio.wait([self.tasks[1]])

    def _break(self) -> None:
        self.broken = True
        waiting, self.waiting = self.waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(_Broken())

    async def close(self) -> None:
        self._break()
        self.call.cancel()
        writer, _ = self.tasks
        writer.cancel()
        # The reader ends by itself (at once: the call is over) and so still records how it
        # ended. Cancelled, it would lose an UNAVAILABLE that came first, and the appends
        # waiting on this session would take a dead server for another caller's switch.
        await asyncio.wait(self.tasks)
        with contextlib.suppress(asyncio.CancelledError):
            writer.result()


class Appender:
    """The client's way to append (see the module docstring)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.in_flight = 0
        self._session: _Session | None = None

    async def append(self, request: streams_pb2.AppendEventsRequest, timeout_s: float | None) -> Any:
        self.in_flight += 1
        try:
            if self.in_flight > 1 or self._session is not None and self._session.waiting:
                return await self._over_session(request, timeout_s)
            return await self.connection.unary("streams", "AppendEvents", request, timeout_s)
        finally:
            self.in_flight -= 1

    async def _over_session(self, request: streams_pb2.AppendEventsRequest, timeout_s: float | None) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                # Each target may fail once under this append; a session broken by another
                # caller's switch (or opened on a target just left) goes on over a new session
                # without counting, a few times at most.
                targets = len(self.connection.targets)
                failures = switches = 0
                while True:
                    session = await self._current()
                    try:
                        return await session.append(request)
                    except _Broken:
                        # Why it broke decides what to do: known once its reader has ended.
                        # Classified sooner, a dead server's session could look like another
                        # caller's switch, time after time, until this append gave up.
                        await session.ended()
                        if session.unavailable and session.stubs is self.connection.current:
                            failures += 1
                            if failures > targets:
                                break
                            await self.connection.dial(failed=session.stubs)  # the next target
                        else:
                            switches += 1
                            if switches > 2 * (targets + 1):
                                break
                raise UnavailableError("every target's session broke under this append")
        except TimeoutError:
            raise DeadlineExceededError(f"no answer to the append within {timeout_s:g}s") from None

    async def _current(self) -> _Session:
        stubs = await self.connection.stubs()
        session = self._session
        if session is None or session.broken or session.stubs is not stubs:
            self._session = _Session(stubs, self.connection.metadata)
            if session is not None:
                await session.close()
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
