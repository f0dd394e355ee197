"""Resuming a filtered read (by DCB query, stream prefix and/or from a time) on another node:
after the last event the client got, with the count reduced by what it got, cut at the head
the read began with.

Owns: `QueryReadResume` (pure: messages in, the next request out). A filtered read's
positions are not contiguous, so unlike a plain read it counts the events of every message;
each carries the read's head, which the resumed request pins (ReadEventsRequest.head), so the
client sees one read, cut at one head, whichever nodes served it.
Must not import gater.store, gater.subscriptions, gater.node, grpc or asyncio.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from exesdb.v1 import streams_pb2

__all__ = ["QueryReadResume"]


class QueryReadResume:
    __slots__ = ("_done", "_head", "_last", "_received", "_request")

    def __init__(self, request: streams_pb2.ReadEventsRequest) -> None:
        self._request = request
        self._received = 0
        self._last: int | None = None
        self._head: int | None = None
        self._done = False

    @classmethod
    def of(cls, request: bytes) -> QueryReadResume | None:
        """The resume of a filtered read (query, stream_prefix or from_time); None for any other
        request (or one that does not parse: the node will say why). A resumed read keeps its
        from_time: the node starts at the later of it and from_version (backward: the earlier)."""
        try:
            parsed = streams_pb2.ReadEventsRequest.FromString(request)
        except DecodeError:
            return None
        filtered = parsed.HasField("query") or parsed.stream_prefix or parsed.HasField("from_time")
        return cls(parsed) if filtered else None

    def passes(self, message: bytes) -> None:
        response = streams_pb2.ReadEventsResponse.FromString(message)
        if response.HasField("head") and self._head is None:
            self._head = response.head
        if response.events:
            self._received += len(response.events)
            self._last = response.events[-1].position
        else:
            self._done = True  # the empty message of a read that matched nothing

    def request(self) -> bytes | None:
        """The request that goes on where the client is; None when nothing is left."""
        parsed = streams_pb2.ReadEventsRequest()
        parsed.CopyFrom(self._request)
        if self._done:
            return None
        if self._last is None:
            return parsed.SerializeToString()
        if parsed.count:
            left = parsed.count - self._received
            if left <= 0:
                return None
            parsed.count = left
        backward = parsed.direction == streams_pb2.READ_DIRECTION_BACKWARD
        if backward and self._last == 0:
            return None
        parsed.from_version = self._last - 1 if backward else self._last + 1
        if self._head is not None:
            parsed.head = self._head
        return parsed.SerializeToString()
