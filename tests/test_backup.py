"""`gater backup` / `gater restore` under load: 8 concurrent appenders keep writing while the
backup runs; the restored store holds every event acknowledged before the backup began, and
nothing half-written (positions dense from 0, every stream's versions dense, every append
all or nothing). SQLite: the file through the online backup API; PostgreSQL: the portable
export (one REPEATABLE READ transaction), imported into a new node."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gater.client import ALL, Client, NewEvent
from gater.config import NodeConfig
from gater.node import NodeServer
from tests.cli.test_client_commands import gater
from tests.store.pg_fixtures import fresh_database

pytestmark = pytest.mark.timeout(180)

APPENDERS = 8
BATCH = 3


class Load:
    """8 appenders, each appending batches of 3 events to its own stream until stopped."""

    def __init__(self, client: Client, store: str) -> None:
        self.client, self.store = client, store
        self.acked: dict[str, int] = {}  # event id -> position, once its append was answered
        self.batches: list[list[str]] = []
        self.enough = asyncio.Event()
        self.stop = asyncio.Event()

    async def appender(self, i: int) -> None:
        while not self.stop.is_set():
            ids = [str(uuid.uuid4()) for _ in range(BATCH)]
            self.batches.append(ids)  # before the call: an append in flight may be in the backup
            events = [NewEvent("load:v1", {"appender": i, "k": k}, event_id=event_id) for k, event_id in enumerate(ids)]
            result = await self.client.append_events(self.store, f"w{i}", events)
            for k, event_id in enumerate(ids):
                self.acked[event_id] = result.first_position + k
            if len(self.acked) >= 300:
                self.enough.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        tasks = [asyncio.create_task(self.appender(i)) for i in range(APPENDERS)]
        try:
            await self.enough.wait()
            yield self
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)


async def check_restored(client: Client, store: str, acked_before: dict[str, int], batches: list[list[str]]) -> int:
    events = await client.get_events(store, ALL)
    positions = [e.position for e in events]
    assert positions == list(range(len(events))), "positions are dense from 0"
    versions: dict[str, int] = {}
    for e in events:
        assert e.version == versions.get(e.stream_id, -1) + 1, "every stream's versions are dense"
        versions[e.stream_id] = e.version
    held = {e.event_id: e.position for e in events}
    for event_id, position in acked_before.items():
        assert held.get(event_id) == position, "every event acknowledged before the backup is there, in place"
    for ids in batches:
        assert all(i in held for i in ids) or not any(i in held for i in ids), "an append is all or nothing"
    status = await client.get_store_status(store)
    assert status.last_position == len(events) - 1
    return len(events)


async def node_on(data_dir: Path, dsn: str | None = None) -> NodeServer:
    server = NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=data_dir, postgres_dsn=dsn, grace_s=0.5))
    await server.start()
    return server


async def test_sqlite_backup_under_load_restores_a_consistent_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = await node_on(data)
    file = tmp_path / "shop.backup"
    try:
        async with await Client.connect(node.address) as client:
            await client.create_store("shop")
            load = Load(client, "shop")
            async with load.running():
                acked_before = dict(load.acked)
                r = await gater("backup", "--store", "shop", "--file", str(file), "--data-dir", str(data), "--json",
                                addr=node.address)  # fmt: skip
                assert r.rc == 0, r
                (line,) = r.lines
                assert line["kind"] == "sqlite" and line["head"] >= max(acked_before.values())
            batches = list(load.batches)
    finally:
        await node.stop()
    restored_dir = tmp_path / "restored"
    r = await gater("restore", "--store", "shop", "--file", str(file), "--data-dir", str(restored_dir), "--json",
                    addr="127.0.0.1:1")  # fmt: skip
    assert r.rc == 0, r
    restored = await node_on(restored_dir)
    try:
        async with await Client.connect(restored.address) as client:
            count = await check_restored(client, "shop", acked_before, batches)
            assert count == line["head"] + 1
            # The restored store takes appends after its head.
            result = await client.append_events("shop", "after", [NewEvent("after:v1", {})])
            assert result.position == count
        # A running node holds its data directory: restoring into it is refused.
        r = await gater("restore", "--store", "shop", "--file", str(file), "--data-dir", str(restored_dir),
                        "--replace", addr="127.0.0.1:1")  # fmt: skip
        assert r.rc != 0 and "stop it first" in r.stderr
    finally:
        await restored.stop()
    r = await gater("restore", "--store", "shop", "--file", str(file), "--data-dir", str(restored_dir), addr="127.0.0.1:1")
    assert r.rc != 0 and "exists" in r.stderr, r


@pytest.mark.postgres
async def test_postgres_backup_under_load_restores_a_consistent_store(postgres_dsn: str, tmp_path: Path) -> None:
    file = tmp_path / "shop.gtx"
    async with fresh_database(postgres_dsn) as dsn, fresh_database(postgres_dsn) as other:
        node = await node_on(tmp_path / "a", dsn)
        try:
            async with await Client.connect(node.address) as client:
                await client.create_store("shop")
                load = Load(client, "shop")
                async with load.running():
                    acked_before = dict(load.acked)
                    r = await gater("backup", "--store", "shop", "--file", str(file), "--json", addr=node.address)
                    assert r.rc == 0, r
                    (line,) = r.lines
                    assert line["kind"] == "export" and line["complete"] and line["head"] >= max(acked_before.values())
                batches = list(load.batches)
        finally:
            await node.stop()
        restored = await node_on(tmp_path / "b", other)
        try:
            r = await gater("restore", "--store", "shop", "--file", str(file), "--json", addr=restored.address)
            assert r.rc == 0, r
            async with await Client.connect(restored.address) as client:
                count = await check_restored(client, "shop", acked_before, batches)
                assert count == line["head"] + 1
        finally:
            await restored.stop()
