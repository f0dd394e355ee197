"""The lifecycle calls of a node: their converters, and the scavenges it runs.

Owns: `metadata_from_proto` / `metadata_message` (StreamMetadata both ways),
`expected_meta_version`, `scavenge_message`, and `Scavenger` — the node's component that runs
one scavenge task per store (a TaskGroup of its own), joins a call to the one under way, and
resumes at start every scavenge a crash interrupted (store/_lifecycle.py, docs/lifecycle.md).
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from google.protobuf import struct_pb2

from exesdb.v1 import stores_pb2, streams_pb2, types_pb2

from ..errors import GaterError, InternalError, InvalidArgumentError, UnavailableError
from ..store._lifecycle import ScavengeStatus, StreamMetadata
from ..store.base import EXPECT_ANY, EXPECT_NO_STREAM, StorageBackend
from ._convert import _python, timestamp

__all__ = ["Scavenger", "expected_meta_version", "metadata_from_proto", "metadata_message", "scavenge_message"]

log = logging.getLogger(__name__)


def metadata_from_proto(message: streams_pb2.StreamMetadata, max_json_depth: int) -> StreamMetadata:
    def optional(name: str) -> int | None:
        return getattr(message, name) if message.HasField(name) else None

    return StreamMetadata(
        max_count=optional("max_count"),
        max_age_s=optional("max_age_s"),
        truncate_before=optional("truncate_before"),
        custom=_python(message.custom, "metadata.custom", max_json_depth),
    )


def metadata_message(meta: StreamMetadata) -> streams_pb2.GetStreamMetadataResponse:
    custom = struct_pb2.Struct()
    custom.update(dict(meta.custom))
    message = streams_pb2.StreamMetadata(custom=custom)
    for name in ("max_count", "max_age_s", "truncate_before"):
        value = getattr(meta, name)
        if value is not None:
            setattr(message, name, value)
    return streams_pb2.GetStreamMetadataResponse(metadata=message, meta_version=meta.meta_version, state=meta.deleted)


def expected_meta_version(request: streams_pb2.SetStreamMetadataRequest) -> int:
    which = request.WhichOneof("expected")
    if which is None:
        return EXPECT_ANY
    if which == "expected_state":
        state = request.expected_state
        if state == types_pb2.EXPECTED_STATE_ANY:
            return EXPECT_ANY
        if state == types_pb2.EXPECTED_STATE_NO_STREAM:
            return EXPECT_NO_STREAM
        raise InvalidArgumentError("expected_state", "must be ANY or NO_STREAM (no metadata yet) for a metadata write")
    if request.expected_meta_version < -1:
        raise InvalidArgumentError(
            "expected_meta_version", f"must be >= -1 (-1: none written), got {request.expected_meta_version}"
        )
    return request.expected_meta_version


def scavenge_message(status: ScavengeStatus) -> stores_pb2.ScavengeResponse:
    message = stores_pb2.ScavengeResponse(
        running=status.running, next_position=status.next_position, removed=status.removed
    )
    if status.started_epoch:
        message.started_at.CopyFrom(timestamp(status.started_epoch))
    return message


class Scavenger:
    """The scavenges of one node: at most one per store. `start()` also resumes, in the
    background, every scavenge the storage says is under way (one a crash interrupted);
    `stop()` cancels what runs (a step in progress rolls back; the next start resumes)."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self._running: dict[str, tuple[asyncio.Future[ScavengeStatus], asyncio.Future[ScavengeStatus]]] = {}
        """store id -> (first step, outcome) of its scavenge under way (what callers await)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._group: asyncio.TaskGroup | None = None
        self._exit: contextlib.AsyncExitStack | None = None

    async def start(self) -> None:
        self._exit = contextlib.AsyncExitStack()
        self._group = await self._exit.enter_async_context(asyncio.TaskGroup())
        self._spawn(self._resume_all(), "scavenge-resume")

    async def stop(self) -> None:
        """Idempotent."""
        if self._exit is None:
            return
        exit_stack, self._exit, self._group = self._exit, None, None
        for task in self._tasks:
            task.cancel()
        await exit_stack.aclose()
        stopped = UnavailableError("this node stopped during the scavenge: it resumes at its start")
        for running in self._running.values():
            for future in running:
                if not future.done():
                    future.set_exception(stopped)
                    future.exception()  # read: nobody may be waiting
        self._running.clear()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if self._group is None:
            work.close()
            raise UnavailableError("this node is shutting down")
        task = self._group.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resume_all(self) -> None:
        try:
            infos = await self.backend.list_stores()
        except GaterError as e:
            log.warning("could not look for scavenges to resume", extra={"error": e.message})
            return
        for info in infos:
            try:
                store = await self.backend.open_store(info.store_id)
                if (await store.scavenge_status()).running:
                    log.info("resuming an interrupted scavenge", extra={"store": info.store_id})
                    self.scavenge(info.store_id, restart=False)
            except GaterError as e:
                log.warning("could not look for a scavenge to resume", extra={"store": info.store_id, "error": e.message})

    def scavenge(self, store_id: str, restart: bool) -> tuple[asyncio.Future[ScavengeStatus], asyncio.Future[ScavengeStatus]]:
        """(its first step, its outcome) of the store's scavenge: the one under way, or a new
        one (`restart` starts a new one only when none runs on this node; the storage's own
        progress is restarted from 0 then). The first step's status is the outcome's when the
        scavenge ended at its first step."""
        running = self._running.get(store_id)
        if running is not None and not running[1].done():
            return running
        loop = asyncio.get_running_loop()
        first, future = loop.create_future(), loop.create_future()
        self._spawn(self._run(store_id, restart, first, future), f"scavenge-{store_id}")
        self._running[store_id] = (first, future)
        return first, future

    async def _run(
        self, store_id: str, restart: bool, first: asyncio.Future[ScavengeStatus], future: asyncio.Future[ScavengeStatus]
    ) -> None:
        def stepped(status: ScavengeStatus) -> None:
            if not first.done():
                first.set_result(status)

        try:
            store = await self.backend.open_store(store_id)
            status = await store.scavenge(restart, stepped)
        except Exception as e:  # noqa: BLE001 - told to the caller, never to the TaskGroup
            if isinstance(e, GaterError):
                log.warning("scavenge stopped", extra={"store": store_id, "error": e.message})
            else:
                log.exception("scavenge failed", extra={"store": store_id})
                e = InternalError("the scavenge failed (the node's log says why)")
            for waited in (first, future):
                if not waited.done():
                    waited.set_exception(e)
                    waited.exception()  # read: the caller may have gone (wait=false)
        else:
            log.info("scavenged", extra={"store": store_id, "removed": status.removed})
            stepped(status)  # a scavenge of one step: its first is its last
            if not future.done():
                future.set_result(status)
        finally:
            if self._running.get(store_id, (None, None))[1] is future:
                del self._running[store_id]
