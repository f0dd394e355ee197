"""kill -9 of a node in the middle of a scavenge, on each backend: the progress it saved says
where it was; after restart the node resumes that scavenge by itself (same start, not from 0)
and finishes it; every acknowledged event that should remain is there with its position,
nothing tombstoned is visible, and the database holds exactly what readers see (plus the head).
Appends go on during the scavenge and are acknowledged as usual."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from exesdb.v1 import stores_pb2, stores_pb2_grpc, streams_pb2, streams_pb2_grpc, types_pb2
from tests.procs import GaterProcess
from tests.store.pg_fixtures import fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DOOMED = 60_000
"""Events of the tombstoned stream: 60 scavenge steps, so the kill lands in the middle."""
BATCH = 5_000


def _events(n: int) -> list[types_pb2.NewEvent]:
    return [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="t", data=b'{"x":1}') for _ in range(n)]


@contextlib.asynccontextmanager
async def _storage(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """The node arguments for a backend (a fresh PostgreSQL database, or a data directory)."""
    if kind == "postgres":
        async with fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True) as dsn:
            yield ["--postgres-dsn", dsn]
    else:
        yield ["--data-dir", str(tmp_path / "data")]


async def _stored_rows(kind: str, args: list[str], tmp_path: Path) -> list[tuple[str, int]]:
    """(stream, position) of every event row in the database, read around gater."""
    if kind == "postgres":
        con = await asyncpg.connect(args[1])
        try:
            rows = await con.fetch("SELECT stream_id, position FROM events WHERE store_id = 'default' ORDER BY position")
            return [(r[0], r[1]) for r in rows]
        finally:
            await con.close()
    conn = sqlite3.connect(tmp_path / "data" / "stores" / "default.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT stream_id, position FROM events ORDER BY position").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_sigkill_during_a_scavenge_resumes_it_and_loses_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kept: dict[str, int] = {}  # event id -> position, of every acknowledged event that stays
    async with _storage(kind, tmp_path, request) as storage:
        node = GaterProcess("node", "--listen", "127.0.0.1:0", *storage)
        async with node, grpc.aio.insecure_channel(node.address) as channel:
            streams, stores = streams_pb2_grpc.StreamsStub(channel), stores_pb2_grpc.StoresStub(channel)
            for _ in range(DOOMED // BATCH):
                await streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="doomed", events=_events(BATCH)))
                events = _events(3)
                r = await streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="kept", events=events))
                kept.update({e.event_id: r.first_position + k for k, e in enumerate(events)})
            await streams.DeleteStream(streams_pb2.DeleteStreamRequest(stream_id="doomed", tombstone=True))
            started = await stores.Scavenge(stores_pb2.ScavengeRequest(wait=False))
            assert started.running

            async def append_while_scavenging() -> None:
                while True:
                    events = _events(2)
                    try:
                        r = await streams.AppendEvents(
                            streams_pb2.AppendEventsRequest(stream_id="kept", events=events), timeout=10
                        )
                    except grpc.aio.AioRpcError:
                        return  # the node is gone
                    kept.update({e.event_id: r.first_position + k for k, e in enumerate(events)})

            appender = asyncio.create_task(append_while_scavenging())
            # Asks the node (another process) for the progress it has saved until a few steps
            # are behind it, then kills it (each ask is a round trip: no spinning here).
            async with asyncio.timeout(120):
                status = await stores.GetScavengeStatus(stores_pb2.GetScavengeStatusRequest())
                while status.running and status.next_position < 5_000:
                    status = await stores.GetScavengeStatus(stores_pb2.GetScavengeStatusRequest())
            assert status.running, "the scavenge ended before the kill: make DOOMED bigger"
            await node.kill()
            await appender
        assert len(kept) > 3 * (DOOMED // BATCH)  # some appends went through during the scavenge

        restarted = GaterProcess("node", "--listen", "127.0.0.1:0", *storage)
        async with restarted, grpc.aio.insecure_channel(restarted.address) as channel:
            streams, stores = streams_pb2_grpc.StreamsStub(channel), stores_pb2_grpc.StoresStub(channel)
            await restarted.logged("resuming an interrupted scavenge")
            done = await stores.Scavenge(stores_pb2.ScavengeRequest(wait=True))  # joins the resumed one
            assert not done.running
            assert done.started_at == status.started_at  # the same scavenge, resumed
            # Every doomed event, once: a step's deletes and its progress commit together, so
            # the step the kill interrupted was done again from scratch, and no other twice.
            assert done.removed == DOOMED
            records = []
            async for batch in streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
                records.extend(batch.events)
            last = await streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))
        seen = {r.event_id: r.position for r in records}
        assert {r.stream_id for r in records} == {"kept"}
        assert kept.items() <= seen.items()  # every acknowledged event that stays, at its position
        assert len(seen) - len(kept) <= 2  # and at most the one append in flight at the kill
        stored = await _stored_rows(kind, storage, tmp_path)
        # On disk: exactly what readers see (the head is a kept event here).
        assert stored == sorted((("kept", p) for p in seen.values()), key=lambda row: row[1])
        assert stored[-1][1] == last.version
