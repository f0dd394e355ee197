"""Small builders shared by tests (requests, reading a whole server stream, error details)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
from exesdb.v1 import streams_pb2, types_pb2
from google.rpc import status_pb2


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
