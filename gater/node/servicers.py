"""The exesdb.v1 servicers of a node: Streams, Snapshots, Stores and Cluster.

Owns: a few lines per RPC: validate and convert at the edge (_convert), call the store,
convert back. Decoding and error mapping happen around every handler (`_grpc.handlers_for`).
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from exesdb.v1 import cluster_pb2, snapshots_pb2, stores_pb2, streams_pb2

from .. import __version__
from ..errors import LimitExceededError
from ..security import Operation
from ..security import context as security
from ..store.base import StorageBackend, StreamAppend
from ..tracing import current_traceparent
from ._convert import Edge, page_token, public_location, snapshot_message, timestamp
from ._dcb import (
    append_response,
    condition_from_proto,
    more_streams,
    read_filter,
    read_query_messages,
)
from ._lifecycle import (
    Scavenger,
    expected_meta_version,
    metadata_from_proto,
    metadata_message,
    scavenge_message,
)
from ._memory import MemoryTrimmer
from ._reading import SendBudget, read_messages
from ._session import serve_session
from ._transfer import export_messages, import_request

__all__ = ["ClusterServicer", "NodeIdentity", "SnapshotsServicer", "StoresServicer", "StreamsServicer"]

log = logging.getLogger(__name__)


class _OverStorage:
    """What the storage-facing servicers share: the backend and the request rules."""

    def __init__(self, backend: StorageBackend, edge: Edge) -> None:
        self.backend = backend
        self.edge = edge


class StreamsServicer(_OverStorage):
    def __init__(
        self, backend: StorageBackend, edge: Edge, trimmer: MemoryTrimmer | None = None, *, record_trace: bool = False
    ) -> None:
        super().__init__(backend, edge)
        self.record_trace = record_trace
        """Record the appending call's traceparent in each event's metadata (trace_metadata)."""
        self.budget = SendBudget(edge.limits.read_buffer_bytes)
        """What the node's reads hold until their clients take it (node-wide)."""
        self.trimmer = trimmer if trimmer is not None else MemoryTrimmer()

    async def AppendEvents(self, request: streams_pb2.AppendEventsRequest, context: Any) -> streams_pb2.AppendEventsResponse:
        return await self._append(request)

    def AppendSession(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[streams_pb2.AppendSessionResponse]:
        return serve_session(requests, self._append, self.edge.limits.max_session_in_flight)

    async def _append(self, request: streams_pb2.AppendEventsRequest) -> streams_pb2.AppendEventsResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.stream_id(request.stream_id)
        expected = self.edge.expected(request)
        events = self.edge.new_events(request.events, stream_id, current_traceparent() if self.record_trace else None)
        condition = condition_from_proto(request)
        store = await self.backend.open_store(store_id)
        if request.more_streams or request.checks:
            more, checks = more_streams(self.edge, request, events)
            first, *others = await store.append_streams(
                [StreamAppend(stream_id, events, expected), *more], checks, condition
            )
            response = append_response(first)
            response.more_streams.extend(append_response(r) for r in others)
            return response
        return append_response(await store.append(stream_id, events, expected, condition))

    async def ReadEvents(self, request: streams_pb2.ReadEventsRequest, context: Any) -> AsyncIterator[bytes]:
        filtered = read_filter(self.edge, request)
        if filtered is not None:
            request.stream_id = "$all"
        store_id, stream_id, start, count, backward = self.edge.read(request)
        store = await self.backend.open_store(store_id)
        if filtered is not None:
            messages = read_query_messages(
                store, filtered, start, count, backward,
                self.edge.non_negative(request.head, "head") if request.HasField("head") else None,
                as_json=request.json, limits=self.edge.limits, budget=self.budget,
            )
        else:
            messages = read_messages(
                store, stream_id, start, count, backward, as_json=request.json, limits=self.edge.limits, budget=self.budget
            )
        try:
            async for message in messages:
                yield message
        finally:
            self.trimmer.note()  # what the read held goes back to the system

    async def GetVersion(self, request: streams_pb2.GetVersionRequest, context: Any) -> streams_pb2.GetVersionResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.read_stream_id(request.stream_id)
        store = await self.backend.open_store(store_id)
        return streams_pb2.GetVersionResponse(version=await store.stream_version(stream_id))

    async def ListStreams(self, request: streams_pb2.ListStreamsRequest, context: Any) -> streams_pb2.ListStreamsResponse:
        store_id = self.edge.store(request.store)
        size = self.edge.page_size(request.page_size)
        after = self.edge.streams_page_token(request.page_token)
        store = await self.backend.open_store(store_id)
        rows = await store.list_streams(after, size + 1)
        page = rows[:size]
        visible = security.scope(Operation.READ, store_id)
        return streams_pb2.ListStreamsResponse(
            streams=[streams_pb2.StreamInfo(stream_id=s, version=v) for s, v in page if visible.allows(s)],
            next_page_token=page_token(page[-1][0]) if len(rows) > size else "",
        )


    # -- the lifecycle of streams (_lifecycle.py, docs/lifecycle.md) ---------------------------

    async def DeleteStream(self, request: streams_pb2.DeleteStreamRequest, context: Any) -> streams_pb2.DeleteStreamResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.stream_id(request.stream_id)
        expected = self.edge.expected(request)
        store = await self.backend.open_store(store_id)
        version = await store.delete_stream(stream_id, expected, request.tombstone)
        log.info("deleted stream", extra={"store": store_id, "stream": stream_id, "tombstone": request.tombstone})
        return streams_pb2.DeleteStreamResponse(version=version)

    async def GetStreamMetadata(self, request: streams_pb2.GetStreamMetadataRequest, context: Any) -> streams_pb2.GetStreamMetadataResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.stream_id(request.stream_id)
        store = await self.backend.open_store(store_id)
        return metadata_message(await store.stream_metadata(stream_id))

    async def SetStreamMetadata(self, request: streams_pb2.SetStreamMetadataRequest, context: Any) -> streams_pb2.SetStreamMetadataResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.stream_id(request.stream_id)
        metadata = metadata_from_proto(request.metadata, self.edge.limits.max_json_depth)
        expected = expected_meta_version(request)
        store = await self.backend.open_store(store_id)
        return streams_pb2.SetStreamMetadataResponse(
            meta_version=await store.set_stream_metadata(stream_id, metadata, expected)
        )

    async def RedactEvent(self, request: streams_pb2.RedactEventRequest, context: Any) -> streams_pb2.RedactEventResponse:
        store_id = self.edge.store(request.store)
        stream_id = self.edge.stream_id(request.stream_id)
        version = self.edge.non_negative(request.version, "version")
        store = await self.backend.open_store(store_id)
        await store.redact(stream_id, version)
        log.info("redacted event", extra={"store": store_id, "stream": stream_id, "version": version})
        return streams_pb2.RedactEventResponse()


class SnapshotsServicer(_OverStorage):

    async def RecordSnapshot(self, request: snapshots_pb2.RecordSnapshotRequest, context: Any) -> snapshots_pb2.RecordSnapshotResponse:
        store_id = self.edge.store(request.store)
        snapshot = self.edge.snapshot(request.snapshot)
        store = await self.backend.open_store(store_id)
        recorded = await store.record_snapshot(snapshot)
        message = snapshot_message(recorded)
        message.data, message.metadata = b"", b""
        return snapshots_pb2.RecordSnapshotResponse(snapshot=message)

    async def ReadSnapshot(self, request: snapshots_pb2.ReadSnapshotRequest, context: Any) -> snapshots_pb2.ReadSnapshotResponse:
        store_id = self.edge.store(request.store)
        source_uuid, stream_uuid, version = self.edge.snapshot_key(request)
        store = await self.backend.open_store(store_id)
        snapshot = await store.read_snapshot(source_uuid, stream_uuid, version)
        return snapshots_pb2.ReadSnapshotResponse(snapshot=snapshot_message(snapshot, as_json=request.json, limits=self.edge.limits))

    async def DeleteSnapshot(self, request: snapshots_pb2.DeleteSnapshotRequest, context: Any) -> snapshots_pb2.DeleteSnapshotResponse:
        store_id = self.edge.store(request.store)
        source_uuid, stream_uuid, version = self.edge.snapshot_key(request)
        store = await self.backend.open_store(store_id)
        return snapshots_pb2.DeleteSnapshotResponse(deleted=await store.delete_snapshot(source_uuid, stream_uuid, version))

    async def ListSnapshots(self, request: snapshots_pb2.ListSnapshotsRequest, context: Any) -> snapshots_pb2.ListSnapshotsResponse:
        store_id = self.edge.store(request.store)
        source_uuid = self.edge.optional_name(request.source_uuid, "source_uuid")
        stream_uuid = self.edge.optional_name(request.stream_uuid, "stream_uuid")
        size = self.edge.page_size(request.page_size)
        after = self.edge.snapshots_page_token(request.page_token)
        store = await self.backend.open_store(store_id)
        rows = await store.list_snapshots(source_uuid, stream_uuid, after, size + 1)
        page = rows[:size]
        last = page[-1] if page else None
        visible = security.scope(Operation.SNAPSHOT, store_id)
        return snapshots_pb2.ListSnapshotsResponse(
            snapshots=[snapshot_message(s) for s in page if visible.allows(s.stream_uuid)],
            next_page_token=page_token([last.source_uuid, last.stream_uuid, last.source_version])
            if last is not None and len(rows) > size
            else "",
        )


class StoresServicer(_OverStorage):
    def __init__(
        self,
        backend: StorageBackend,
        edge: Edge,
        on_removed: Callable[[str], None] = lambda _: None,
        scavenger: Scavenger | None = None,
    ) -> None:
        super().__init__(backend, edge)
        self.on_removed = on_removed
        self.scavenger = scavenger if scavenger is not None else Scavenger(backend)

    async def CreateStore(self, request: stores_pb2.CreateStoreRequest, context: Any) -> stores_pb2.CreateStoreResponse:
        store_id = self.edge.store_id(request.store_id)
        most = self.edge.limits.max_stores
        if await self.backend.count_stores() >= most:
            raise LimitExceededError("store_id", f"there are {most} stores already, the most allowed", "max_stores")
        info = await self.backend.create_store(store_id)
        log.info("created store", extra={"store": info.store_id})
        return stores_pb2.CreateStoreResponse(
            store=stores_pb2.StoreInfo(store_id=info.store_id, created_at=timestamp(info.created_epoch))
        )

    async def RemoveStore(self, request: stores_pb2.RemoveStoreRequest, context: Any) -> stores_pb2.RemoveStoreResponse:
        store_id = self.edge.store_id(request.store_id)
        await self.backend.remove_store(store_id)
        self.on_removed(store_id)
        log.info("removed store", extra={"store": store_id})
        return stores_pb2.RemoveStoreResponse()

    async def ListStores(self, request: stores_pb2.ListStoresRequest, context: Any) -> stores_pb2.ListStoresResponse:
        infos = [i for i in await self.backend.list_stores() if security.sees_store(i.store_id)]
        return stores_pb2.ListStoresResponse(
            stores=[stores_pb2.StoreInfo(store_id=i.store_id, created_at=timestamp(i.created_epoch)) for i in infos]
        )

    async def GetStoreStatus(self, request: stores_pb2.GetStoreStatusRequest, context: Any) -> stores_pb2.GetStoreStatusResponse:
        store = await self.backend.open_store(self.edge.store(request.store_id, "store_id"))
        s = await store.status()
        return stores_pb2.GetStoreStatusResponse(
            store_id=s.store_id,
            stream_count=s.stream_count,
            event_count=s.event_count,
            last_position=s.last_position,
            snapshot_count=s.snapshot_count,
            subscription_count=s.subscription_count,
            size_bytes=s.size_bytes,
            open=s.open,
            open_files=s.open_files,
            threads=s.threads,
        )

    async def GetStoreConfig(self, request: stores_pb2.GetStoreConfigRequest, context: Any) -> stores_pb2.GetStoreConfigResponse:
        store = await self.backend.open_store(self.edge.store(request.store_id, "store_id"))
        c = await store.config()
        return stores_pb2.GetStoreConfigResponse(
            store_id=c.store_id,
            backend=c.backend,
            location=public_location(c.backend, c.location),
            durability=c.durability,
            max_events_per_append=self.edge.limits.max_events_per_append,
            max_message_bytes=self.edge.limits.max_message_bytes,
            created_at=timestamp(c.created_epoch),
        )


    def ExportStore(self, request: stores_pb2.ExportStoreRequest, context: Any) -> AsyncIterator[bytes]:
        store_id = self.edge.store(request.store_id, "store_id")
        start = self.edge.non_negative(request.from_position, "from_position")
        end = self.edge.non_negative(request.to_position, "to_position") if request.HasField("to_position") else None
        return self._export(store_id, start, end)

    async def _export(self, store_id: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        store = await self.backend.open_store(store_id)
        log.info("exporting store", extra={"store": store_id, "position": start})
        async for message in export_messages(store, start, end, self.backend.name):
            yield message

    async def ImportEvents(self, request: stores_pb2.ImportEventsRequest, context: Any) -> stores_pb2.ImportEventsResponse:
        store = await self.backend.open_store(self.edge.store(request.store_id, "store_id"))
        return await import_request(store, request, self.edge)
    async def Scavenge(self, request: stores_pb2.ScavengeRequest, context: Any) -> stores_pb2.ScavengeResponse:
        store_id = self.edge.store(request.store_id, "store_id")
        await self.backend.open_store(store_id)  # NOT_FOUND before anything starts
        first_step, outcome = self.scavenger.scavenge(store_id, request.restart)
        # A caller leaving stops nothing (shield); without `wait`, the answer says how far the
        # first step (saved by then) got.
        return scavenge_message(await asyncio.shield(outcome if request.wait else first_step))

    async def GetScavengeStatus(self, request: stores_pb2.GetScavengeStatusRequest, context: Any) -> stores_pb2.ScavengeResponse:
        store = await self.backend.open_store(self.edge.store(request.store_id, "store_id"))
        return scavenge_message(await store.scavenge_status())


class NodeIdentity:
    """What a node says about itself in Cluster.GetStatus."""

    def __init__(self, node_id: str, address: str, backend: StorageBackend) -> None:
        self.node_id = node_id
        self.address = address
        self.backend = backend

    def member(self) -> cluster_pb2.Member:
        return cluster_pb2.Member(
            node_id=self.node_id, address=self.address, cluster_id=self.backend.cluster_id, healthy=True
        )


class ClusterServicer:
    def __init__(self, identity: NodeIdentity) -> None:
        self.identity = identity

    async def GetStatus(self, request: cluster_pb2.GetStatusRequest, context: Any) -> cluster_pb2.GetStatusResponse:
        me = self.identity
        return cluster_pb2.GetStatusResponse(
            role=cluster_pb2.ROLE_NODE,
            node_id=me.node_id,
            cluster_id=me.backend.cluster_id,
            version=__version__,
            backend=me.backend.name,
            members=[me.member()],
            address=me.address,
        )

    async def WatchMembers(self, request: cluster_pb2.WatchMembersRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[cluster_pb2.WatchMembersResponse]:
        yield cluster_pb2.WatchMembersResponse(
            change=cluster_pb2.WatchMembersResponse.CHANGE_PRESENT, member=self.identity.member()
        )
        # A node's membership of itself never changes: hold the stream until the client leaves.
        await asyncio.Event().wait()
