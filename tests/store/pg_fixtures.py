"""PostgreSQL for tests: the DSN from the environment, a fresh database per test, a proxy.

Owns: the `postgres_dsn`, `pg_database` (empty) and `migrated_database` fixtures, and
`SocketProxy` (a Unix-socket relay in front of the server that a test can cut and restore, to
make a real outage without stopping the shared PostgreSQL).
A migrated database is a copy of a template this process migrated once, with a cluster id of
its own: a node's start then finds every migration applied. Migrating took about half of
each PostgreSQL test's setup (0.25-0.5 s); tests of the migrations themselves take
`pg_database`, which is empty.
GATER_TEST_POSTGRES_DSN unset: the tests are skipped, except when CI is set — then they fail,
because CI must not silently skip PostgreSQL (`make test` sets it after scripts/postgres.sh).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

__all__ = [
    "SocketProxy", "fresh_database", "migrated_database", "pg_database", "postgres_dsn", "with_database", "with_host",
]

ENV = "GATER_TEST_POSTGRES_DSN"


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    dsn = os.environ.get(ENV)
    if dsn:
        return dsn
    how = (
        "run `make test` (it starts PostgreSQL with scripts/postgres.sh), or run "
        f"`bash scripts/postgres.sh` and export {ENV}=postgresql:///gater_test?host=/var/run/postgresql"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{ENV} is not set and CI is: CI must not skip the PostgreSQL tests; {how}")
    pytest.skip(f"PostgreSQL tests need {ENV}; {how}")


def with_database(dsn: str, database: str) -> str:
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


def with_host(dsn: str, host: str, port: int) -> str:
    """The DSN with its host/port replaced (query-string form, which takes socket dirs)."""
    parts = urllib.parse.urlsplit(dsn)
    netloc = parts.netloc.rpartition("@")
    userinfo = netloc[0] + "@" if netloc[1] else ""
    items = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("host", "port")]
    items += [("host", host), ("port", str(port))]
    return urllib.parse.urlunsplit(
        parts._replace(netloc=userinfo, query=urllib.parse.urlencode(items, safe="/"))
    )


@pytest.fixture
async def pg_database(postgres_dsn: str) -> AsyncIterator[str]:
    """The DSN of a new, empty database, dropped after the test."""
    async with fresh_database(postgres_dsn) as dsn:
        yield dsn


@pytest.fixture
async def migrated_database(postgres_dsn: str) -> AsyncIterator[str]:
    """The DSN of a new database with every migration applied, dropped after the test."""
    async with fresh_database(postgres_dsn, migrated=True) as dsn:
        yield dsn


# This process's migrated template, made at its first use, dropped when the process exits.
_template: str | None = None


async def _migrated_template(postgres_dsn: str) -> str:
    global _template
    if _template is None:
        from gater.store.postgres import PostgresBackend

        name = f"gater_t_template_{uuid.uuid4().hex[:12]}"
        await _admin(postgres_dsn, f'CREATE DATABASE "{name}"')
        try:
            async with PostgresBackend(with_database(postgres_dsn, name), node_id="template"):
                pass
        except BaseException:
            await _drop(postgres_dsn, name)
            raise
        atexit.register(_drop_at_exit, postgres_dsn, name)
        _template = name
    return _template


def _drop_at_exit(postgres_dsn: str, name: str) -> None:
    with contextlib.suppress(Exception):
        asyncio.run(_drop(postgres_dsn, name))


async def _drop(postgres_dsn: str, name: str) -> None:
    await _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(postgres_dsn: str, statement: str) -> None:
    admin = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def fresh_database(postgres_dsn: str, *, migrated: bool = False) -> AsyncIterator[str]:
    """A new database for the duration of the block (for fixtures that pick their backend at
    run time): empty, or `migrated` (a copy of this process's migrated template, given a new
    cluster id, as a first node's migrations would)."""
    name = f"gater_t_{uuid.uuid4().hex[:16]}"
    template = f' TEMPLATE "{await _migrated_template(postgres_dsn)}"' if migrated else ""
    await _admin(postgres_dsn, f'CREATE DATABASE "{name}"{template}')
    try:
        dsn = with_database(postgres_dsn, name)
        if migrated:
            await _admin(dsn, "UPDATE cluster SET cluster_id = gen_random_uuid()")
        yield dsn
    finally:
        await _drop(postgres_dsn, name)


def upstream_of(dsn: str) -> tuple[str | None, str | None, int]:
    """(socket path, tcp host, port) the DSN connects to."""
    parts = urllib.parse.urlsplit(dsn)
    params = dict(urllib.parse.parse_qsl(parts.query))
    host = params.get("host") or parts.hostname or "/var/run/postgresql"
    port = int(params.get("port") or parts.port or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", None, port
    return None, host, port


class SocketProxy:
    """Relays a Unix socket to PostgreSQL; `cut()` drops every connection and refuses new
    ones until `restore()`. Its DSN is `dsn` (the upstream DSN with host = our socket dir)."""

    def __init__(self, upstream_dsn: str) -> None:
        self._socket, self._host, self._port = upstream_of(upstream_dsn)
        self._dir = Path(tempfile.mkdtemp(prefix="gpx", dir="/tmp"))  # short: sun_path limit
        self.dsn = with_host(upstream_dsn, str(self._dir), 5432)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self._dir / ".s.PGSQL.5432"))

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        (self._dir / ".s.PGSQL.5432").unlink(missing_ok=True)

    async def close(self) -> None:
        await self.cut()
        with contextlib.suppress(OSError):
            self._dir.rmdir()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._socket is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self._socket)
            else:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)
