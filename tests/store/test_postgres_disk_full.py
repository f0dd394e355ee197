"""PostgreSQL on a full disk (a real one): the store's tables live in a tablespace on a small
tmpfs, filled to the last byte. An append that finds no room is StorageFullError
(RESOURCE_EXHAUSTED, SQLSTATE 53100 translated in the backend's one translate function) —
never UNAVAILABLE; nothing acknowledged is lost; appends work again once space is freed.
Needs root and a PostgreSQL server on this machine (its `postgres` user must own the
tablespace directory); skipped otherwise, unless CI is set."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gater.config import Limits
from gater.errors import StorageFullError
from gater.store.base import EXPECT_ANY, NewEvent
from gater.store.postgres import PostgresBackend

from .conformance import WAIT_S, events, read_everything
from .disk import fill, small_disk
from .pg_fixtures import fresh_database, postgres_dsn

__all__: list[str] = []

pytestmark = pytest.mark.postgres

_FIXTURES = (postgres_dsn,)


def _server_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


@pytest.fixture
async def full_disk_database(postgres_dsn: str) -> AsyncIterator[tuple[str, Path]]:
    """(DSN of a new database whose tables go to a tablespace on a 16 MiB tmpfs, the tmpfs)."""
    user = _server_user()
    if user is None:
        if os.environ.get("CI"):
            pytest.fail("no local `postgres` user: CI must run the full-disk test")
        pytest.skip("needs the PostgreSQL server on this machine")
    where = Path(f"/tmp/gater-pgfull-{uuid.uuid4().hex[:8]}")  # outside tmp_path: the server must reach it
    with small_disk(where, "16m") as disk:
        location = disk / "ts"
        location.mkdir()
        os.chown(location, user.pw_uid, user.pw_gid)
        tablespace = f"gater_full_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(postgres_dsn)
        try:
            await admin.execute(f"CREATE TABLESPACE {tablespace} LOCATION '{location}'")
        finally:
            await admin.close()
        try:
            async with fresh_database(postgres_dsn) as dsn:
                con = await asyncpg.connect(dsn)
                try:  # the backend's migrations then create every table and index there
                    name = await con.fetchval("SELECT current_database()")
                    await con.execute(f'ALTER DATABASE "{name}" SET default_tablespace = {tablespace}')
                finally:
                    await con.close()
                yield dsn, disk
        finally:
            admin = await asyncpg.connect(postgres_dsn)
            try:
                await admin.execute(f"DROP TABLESPACE IF EXISTS {tablespace}")
            finally:
                await admin.close()
    shutil.rmtree(where, ignore_errors=True)


async def test_a_full_disk_refuses_appends_then_recovers(full_disk_database: tuple[str, Path]) -> None:
    dsn, disk = full_disk_database
    acknowledged: list[str] = []
    async with PostgresBackend(dsn, limits=Limits(), node_id="full", command_timeout_s=10.0) as backend:
        await backend.create_store("main")
        store = await backend.open_store("main")
        first = events(5)
        await store.append("s", first, EXPECT_ANY)
        acknowledged += [e.event_id for e in first]

        filler = fill(disk, keep_bytes=256 * 1024)
        refused: StorageFullError | None = None
        for _ in range(200):  # 256 KiB left, 96 KiB of random bytes per append
            batch = [NewEvent(e.event_id, e.event_type, os.urandom(32 * 1024)) for e in events(3)]
            try:
                await asyncio.wait_for(store.append("s", batch, EXPECT_ANY), WAIT_S)
            except StorageFullError as e:
                refused = e
                break
            acknowledged += [e.event_id for e in batch]
        assert refused is not None, "the disk never filled"
        assert "free space" in refused.message
        await backend.check(timeout_s=WAIT_S)  # the database still answers: it is not an outage

        filler.unlink()
        again = events(1)
        assert (await store.append("s", again, EXPECT_ANY)).position == len(acknowledged)
        acknowledged += [e.event_id for e in again]
        stored = await read_everything(store, page=50)
    assert [e.event_id for e in stored] == acknowledged
    assert [e.position for e in stored] == list(range(len(acknowledged)))
