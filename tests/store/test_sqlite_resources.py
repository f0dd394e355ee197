"""What a SQLite store holds, and when: no thread and no open file while nobody uses it, its
writer thread and connections while somebody does, at most `max_open_stores` open at once,
and a reopen that loses and doubles nothing. Observed from outside: thread names, the
process's open files (/proc/self/fd) and StoreStatus."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gater.config import Limits
from gater.errors import StorageUnavailableError
from gater.store.base import EXPECT_ANY, AppendResult, NewEvent, StoreStatus
from gater.store.sqlite import SqliteBackend, SqliteStore

from .conformance import WAIT_S, events, read_everything, read_stream_all

__all__: list[str] = []

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")


def writer_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("sqlite-writer-")}


def open_files(under: Path) -> list[str]:
    """The files under `under` this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(under)):
            found.append(target)
    return found


def store_files(data_dir: Path, store_id: str) -> list[str]:
    return open_files(data_dir / "stores" / f"{store_id}.sqlite")


async def until(condition: Callable[[], bool], what: str) -> None:
    """Polls an observable condition (the idle close happens on its own schedule)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not condition():  # noqa: ASYNC110 - threads and open files signal no event
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"waited {WAIT_S} s for {what}") from None


async def until_status(store: SqliteStore, condition: Callable[[StoreStatus], bool], what: str) -> StoreStatus:
    """Polls the store's status until `condition` holds (the idle close runs on its own timer)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not condition(status := await store.status()):  # noqa: ASYNC110 - the idle close signals no event
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"waited {WAIT_S} s for {what}") from None
    return status


async def test_a_store_in_use_holds_a_thread_and_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=600) as backend:
        await backend.create_store("alpha")
        assert "sqlite-writer-alpha" not in writer_threads()
        assert store_files(data_dir, "alpha") == []  # a new store holds nothing
        status = await (await backend.open_store("alpha")).status()
        assert (status.open, status.threads, status.open_files) == (False, 0, 0)
        store = await backend.open_store("alpha")
        await store.append("s", events(2), EXPECT_ANY)
        assert len(await store.read_all(None, 10)) == 2
        assert "sqlite-writer-alpha" in writer_threads()
        assert store_files(data_dir, "alpha")
        status = await store.status()
        assert (status.open, status.threads) == (True, 1)
        assert status.open_files >= 1
    assert "sqlite-writer-alpha" not in writer_threads()
    assert open_files(data_dir / "stores") == []


async def test_an_idle_store_closes_and_reopens(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=0.05) as backend:
        await backend.create_store("alpha")
        store = await backend.open_store("alpha")
        first = await store.append("s", events(2), EXPECT_ANY)
        assert len(await store.read_all(None, 10)) == 2
        for round_ in range(3):
            # The store's own word first: a thread leaves threading.enumerate() a moment before
            # it has ended, so "no thread name" alone can precede the release's end.
            status = await until_status(store, lambda s: not s.open, "the idle store to close")
            assert (status.threads, status.open_files) == (0, 0)
            assert "sqlite-writer-alpha" not in writer_threads()
            assert store_files(data_dir, "alpha") == []
            assert status.event_count == 2 + round_
            assert await store.last_position() == 1 + round_
            result = await store.append("s", events(1), EXPECT_ANY)  # reopens
            assert (result.version, result.position) == (first.version + 1 + round_, first.position + 1 + round_)
        assert [e.version for e in await read_stream_all(store, "s")] == list(range(5))


async def test_open_stores_are_bounded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=600, max_open_stores=3) as backend:
        ids = [f"s{i}" for i in range(10)]
        for store_id in ids:
            await backend.create_store(store_id)
            store = await backend.open_store(store_id)
            await store.append("x", events(1), EXPECT_ANY)
            await store.read_all(None, 10)
        await until(lambda: len(writer_threads()) <= 3, "at most 3 writer threads")
        await until(
            lambda: len({f.split(".sqlite")[0] for f in open_files(data_dir / "stores")}) <= 3,
            "open files of at most 3 stores",
        )
        for store_id in ids:  # every store still answers, reopened as needed
            store = await backend.open_store(store_id)
            assert [e.position for e in await store.read_all(None, 10)] == [0]
            assert (await store.append("x", events(1), EXPECT_ANY)).position == 1


async def test_reopening_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Many appenders over more stores than may be open, with stores closing as soon as they
    are idle: every acknowledged event is there exactly once, positions and versions dense."""
    data_dir = tmp_path / "data"
    ids = [f"s{i}" for i in range(6)]
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=0.001, max_open_stores=2) as backend:
        for store_id in ids:
            await backend.create_store(store_id)
        acknowledged: dict[str, list[tuple[AppendResult, list[NewEvent]]]] = {s: [] for s in ids}

        async def appender(n: int) -> None:
            for i in range(25):
                store_id = ids[(n * 7 + i) % len(ids)]
                store = await backend.open_store(store_id)
                batch = events(1 + (n + i) % 3)
                result = await store.append(f"stream-{n % 3}", batch, EXPECT_ANY)
                acknowledged[store_id].append((result, batch))
                if i % 4 == 0:
                    await store.read_all(max(0, result.position - 2), 5)
                if i % 5 == 0:  # a retry of an acknowledged append is a repeat, never a second copy
                    assert (await store.append(f"stream-{n % 3}", batch, EXPECT_ANY)).duplicate

        await asyncio.wait_for(asyncio.gather(*(appender(n) for n in range(12))), 120)
        for store_id in ids:
            stored = await read_everything(await backend.open_store(store_id), page=50)
            written = [e.event_id for _, batch in sorted(acknowledged[store_id], key=lambda a: a[0].position) for e in batch]
            assert [e.event_id for e in stored] == written
            assert [e.position for e in stored] == list(range(len(written)))
            for stream in {e.stream_id for e in stored}:
                assert [e.version for e in stored if e.stream_id == stream] == list(range(sum(e.stream_id == stream for e in stored)))


async def test_remove_and_recreate_while_closing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=0.001) as backend:
        for _ in range(20):
            await backend.create_store("alpha")
            store = await backend.open_store("alpha")
            assert (await store.append("s", events(2), EXPECT_ANY)).position == 1
            assert len(await store.read_all(None, 10)) == 2
            await backend.remove_store("alpha")
        assert await backend.list_stores() == []
    assert open_files(data_dir / "stores") == []


async def test_check_opens_no_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=600) as backend:
        for store_id in ("a", "b", "c"):
            await backend.create_store(store_id)
        await backend.check(timeout_s=WAIT_S)
        assert writer_threads() == set()
        assert open_files(data_dir / "stores") == []


async def test_check_fails_when_the_data_directory_is_gone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with SqliteBackend(data_dir, limits=Limits()) as backend:
        await backend.check(timeout_s=WAIT_S)
        (data_dir / "stores").rename(tmp_path / "elsewhere")
        with pytest.raises(StorageUnavailableError, match="stores"):
            await backend.check(timeout_s=WAIT_S)
        (tmp_path / "elsewhere").rename(data_dir / "stores")
        await backend.check(timeout_s=WAIT_S)
