"""The lifecycle calls of the Python client: delete, stream metadata, redaction, scavenging.

Owns: `LifecycleCalls`, the part of `Client` (its base class) that calls Streams.DeleteStream,
Get/SetStreamMetadata, RedactEvent and Stores.Scavenge/GetScavengeStatus (docs/lifecycle.md).
It only shapes requests and answers; `Client` carries the connection (`_unary`).
Must not import anything from gater but gater.errors and this package.
"""

from __future__ import annotations

from typing import Any

from exesdb.v1 import stores_pb2, streams_pb2

from . import _convert as convert
from ._values import ANY, ScavengeStatus, StreamMetadata

__all__ = ["UNSET", "LifecycleCalls"]

UNSET: Any = object()
"""No timeout given: the client's default (Client._deadline tells it by identity)."""
_UNSET = UNSET


class LifecycleCalls:
    """Mixed into Client."""

    async def _unary(self, service: str, method: str, request: Any, timeout_s: Any, store: str = "") -> Any:
        raise NotImplementedError  # Client's

    async def delete_stream(
        self, store: str, stream: str, expected_version: int | str = ANY, *, tombstone: bool = False,
        timeout_s: float | None = _UNSET,
    ) -> int:
        """Soft-deletes a stream (reads as missing; an append brings it back, continuing its
        versions) or, with `tombstone`, deletes it for good (StreamDeletedError on every later
        write). Returns its last version. StreamNotFoundError, WrongExpectedVersionError."""
        request = streams_pb2.DeleteStreamRequest(store=store, stream_id=stream, tombstone=tombstone)
        convert.set_expected(request, expected_version, "expected_version")
        return (await self._unary("streams", "DeleteStream", request, timeout_s, store)).version

    async def get_stream_metadata(self, store: str, stream: str, *, timeout_s: float | None = _UNSET) -> StreamMetadata:
        request = streams_pb2.GetStreamMetadataRequest(store=store, stream_id=stream)
        return convert.stream_metadata(await self._unary("streams", "GetStreamMetadata", request, timeout_s, store))

    async def set_stream_metadata(
        self, store: str, stream: str, metadata: StreamMetadata, expected_meta_version: int | str = ANY, *,
        timeout_s: float | None = _UNSET,
    ) -> int:
        """Replaces the stream's metadata (every rule left None is lifted) if its meta version
        is `expected_meta_version` (ANY, NO_STREAM: none yet, or an int); returns the new one.
        Reads and subscriptions honour it at once."""
        message = convert.stream_metadata_message(metadata)
        request = streams_pb2.SetStreamMetadataRequest(store=store, stream_id=stream, metadata=message)
        convert.set_expected(request, expected_meta_version, "expected_meta_version")
        return (await self._unary("streams", "SetStreamMetadata", request, timeout_s, store)).meta_version

    async def redact_event(self, store: str, stream: str, version: int, *, timeout_s: float | None = _UNSET) -> None:
        """Replaces the event's data and metadata with {"$redacted": true}; irreversible."""
        request = streams_pb2.RedactEventRequest(store=store, stream_id=stream, version=version)
        await self._unary("streams", "RedactEvent", request, timeout_s, store)

    async def scavenge(
        self, store_id: str, *, wait: bool = True, restart: bool = False, timeout_s: float | None = _UNSET
    ) -> ScavengeStatus:
        """Removes from disk what no reader sees any more; with `wait`, returns when done."""
        request = stores_pb2.ScavengeRequest(store_id=store_id, wait=wait, restart=restart)
        return convert.scavenge_status(await self._unary("stores", "Scavenge", request, timeout_s, store_id))

    async def get_scavenge_status(self, store_id: str, *, timeout_s: float | None = _UNSET) -> ScavengeStatus:
        request = stores_pb2.GetScavengeStatusRequest(store_id=store_id)
        return convert.scavenge_status(await self._unary("stores", "GetScavengeStatus", request, timeout_s, store_id))

