"""SQLite on a full disk (a real one: a small tmpfs filled to the last byte). An append or a
CreateStore that finds no room is StorageFullError (RESOURCE_EXHAUSTED, naming the data
directory) — never UNAVAILABLE, which clients would retry for ever; a failed create leaves no
file behind; nothing acknowledged is lost; everything works again once space is freed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gater.config import Limits
from gater.errors import StorageFullError
from gater.store.base import EXPECT_ANY, NewEvent
from gater.store.sqlite import SqliteBackend

from .conformance import WAIT_S, events, read_everything
from .disk import fill, small_disk

__all__: list[str] = []


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "8m") as where:
        yield where


def big_events(n: int) -> list[NewEvent]:
    # Random bytes: nothing on the way compresses them.
    return [NewEvent(e.event_id, e.event_type, os.urandom(48 * 1024)) for e in events(n)]


async def test_a_full_disk_refuses_appends_and_creates_then_recovers(disk: Path) -> None:
    data_dir = disk / "data"
    acknowledged: list[str] = []
    async with SqliteBackend(data_dir, limits=Limits()) as backend:
        await backend.create_store("main")
        store = await backend.open_store("main")
        first = events(5)
        await store.append("s", first, EXPECT_ANY)
        acknowledged += [e.event_id for e in first]

        filler = fill(disk)
        refused: StorageFullError | None = None
        for _ in range(200):  # 8 MiB at 144 KiB an append: full long before this ends
            batch = big_events(3)
            try:
                await asyncio.wait_for(store.append("s", batch, EXPECT_ANY), WAIT_S)
            except StorageFullError as e:
                refused = e
                break
            acknowledged += [e.event_id for e in batch]
        assert refused is not None, "the disk never filled"
        assert str(data_dir) in refused.message and "free" in refused.message

        # A create on the full disk fails, leaves nothing behind, and listing still works.
        stores_dir = data_dir / "stores"
        before = sorted(p.name for p in stores_dir.iterdir())
        with pytest.raises(StorageFullError) as created:
            await backend.create_store("other")
        assert str(data_dir) in created.value.message
        assert sorted(p.name for p in stores_dir.iterdir()) == before
        assert [s.store_id for s in await backend.list_stores()] == ["main"]

        filler.unlink()
        await backend.create_store("other")  # the retry succeeds once there is room
        assert [s.store_id for s in await backend.list_stores()] == ["main", "other"]
        again = big_events(1)
        result = await store.append("s", again, EXPECT_ANY)
        acknowledged += [e.event_id for e in again]
        assert result.position == len(acknowledged) - 1

    async with SqliteBackend(data_dir, limits=Limits()) as reopened:
        stored = await read_everything(await reopened.open_store("main"), page=50)
    assert [e.event_id for e in stored] == acknowledged
    assert [e.position for e in stored] == list(range(len(acknowledged)))


async def test_a_create_on_a_full_disk_leaves_nothing(disk: Path) -> None:
    data_dir = disk / "data"
    async with SqliteBackend(data_dir, limits=Limits()) as backend:
        await backend.create_store("main")
        filler = fill(disk)
        for _ in range(3):  # repeated failures leave nothing either
            with pytest.raises(StorageFullError):
                await backend.create_store("new")
        left = [p.name for p in (data_dir / "stores").iterdir()]
        assert all(name.startswith("main.sqlite") for name in left), left
        assert [s.store_id for s in await backend.list_stores()] == ["main"]
        filler.unlink()
        info = await backend.create_store("new")
        assert info.store_id == "new"
        store = await backend.open_store("new")
        assert (await store.append("s", events(1), EXPECT_ANY)).position == 0
