"""Fixtures of the node tests that more than one module uses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gater.config import NodeConfig
from gater.node import NodeServer
from tests.conftest import small_limits
from tests.store.pg_fixtures import fresh_database

MakeNode = Callable[[str], Awaitable[NodeServer]]


@pytest.fixture
async def make_node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeNode]:
    """`await make_node("sqlite" | "postgres")`: a running node on a fresh data dir or database."""
    async with contextlib.AsyncExitStack() as stack:
        count = 0

        async def make(backend: str) -> NodeServer:
            nonlocal count
            count += 1
            dsn = None
            if backend == "postgres":
                dsn = await stack.enter_async_context(fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True))
            config = NodeConfig(
                listen="127.0.0.1:0", data_dir=tmp_path / f"data{count}", postgres_dsn=dsn, limits=small_limits(), grace_s=0.5
            )
            server = NodeServer(config)
            await server.start()
            stack.push_async_callback(server.stop)
            return server

        yield make
