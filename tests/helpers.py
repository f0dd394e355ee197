"""Small builders shared by tests (requests, reading a whole server stream, error details)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from typing import Any, TypeVar

import grpc
from google.rpc import status_pb2

from exesdb.v1 import streams_pb2, types_pb2

T = TypeVar("T")

# `make soak` sets it: the long tests (marked slow) then run at full size.
SOAK = os.environ.get("GATER_SOAK") == "1"


def soak(full: T, bounded: T) -> T:
    """A soak's size: `full` under `make soak`, `bounded` under `make test` — large enough that
    what the soak bounds (memory, files, threads) would still be exceeded if it were not."""
    return full if SOAK else bounded


def new_event(event_type: str = "thing_happened:v1", data: Any = None, event_id: str | None = None) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(
        event_id=event_id if event_id is not None else str(uuid.uuid4()),
        event_type=event_type,
        data=json.dumps(data if data is not None else {}).encode(),
    )


async def read(stub: Any, stream_id: str, **kw: Any) -> list[types_pb2.EventRecord]:
    out: list[types_pb2.EventRecord] = []
    async for batch in stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id=stream_id, **kw)):
        out.extend(batch.events)
    return out


def details(error: grpc.aio.AioRpcError) -> list[Any]:
    """The typed google.rpc details of a failed call, unpacked."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw is None:
        return []
    status = status_pb2.Status.FromString(raw)
    out = []
    for any_ in status.details:
        for cls in (types_pb2.WrongExpectedVersion, types_pb2.FieldViolation):
            if any_.Is(cls.DESCRIPTOR):
                msg = cls()
                any_.Unpack(msg)
                out.append(msg)
    return out


class Collector:
    """Reads a Subscribe stream in a task; tests await conditions on what arrived."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.events: list[types_pb2.EventRecord] = []
        self.messages: list[str] = []  # the kind of every message, in order
        self.last: dict[str, Any] = {}
        self.error: grpc.aio.AioRpcError | None = None
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for message in self.call:
                kind = message.WhichOneof("message")
                async with self._changed:
                    self.messages.append(kind)
                    self.last[kind] = getattr(message, kind)
                    if kind == "events":
                        self.events.extend(message.events.events)
                    self._changed.notify_all()
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = e
                async with self._changed:
                    self._changed.notify_all()
                raise

    async def wait_for(self, predicate: Any, timeout_s: float = 20) -> None:
        async with asyncio.timeout(timeout_s):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

    async def count(self, n: int, timeout_s: float = 20) -> list[types_pb2.EventRecord]:
        await self.wait_for(lambda c: len(c.events) >= n, timeout_s)
        return self.events

    async def close(self) -> None:
        """Ends the call; an error the stream already ended with is kept in `error`."""
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self.task
