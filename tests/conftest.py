"""Shared fixtures: a real node on a loopback port over a real SQLite directory, stubs, and
gateways (static discovery) in front of given node addresses."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from exesdb.v1 import (
    cluster_pb2_grpc,
    snapshots_pb2_grpc,
    stores_pb2_grpc,
    streams_pb2_grpc,
    subscriptions_pb2_grpc,
)
from gater.config import GatewayConfig, Limits, NodeConfig
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.node import NodeServer
from tests.store.pg_fixtures import (  # noqa: F401 - fixtures for every test
    fresh_database,
    migrated_database,
    pg_database,
    postgres_dsn,
)

REPO = Path(__file__).resolve().parent.parent

# Our own logs run at DEBUG in tests (pyproject); grpc's own debug lines only add noise.
logging.getLogger("grpc").setLevel(logging.INFO)


@dataclass
class Stubs:
    address: str
    channel: grpc.aio.Channel
    streams: streams_pb2_grpc.StreamsStub
    subscriptions: subscriptions_pb2_grpc.SubscriptionsStub
    snapshots: snapshots_pb2_grpc.SnapshotsStub
    stores: stores_pb2_grpc.StoresStub
    cluster: cluster_pb2_grpc.ClusterStub


def stubs_for(address: str, channel: grpc.aio.Channel) -> Stubs:
    return Stubs(
        address,
        channel,
        streams_pb2_grpc.StreamsStub(channel),
        subscriptions_pb2_grpc.SubscriptionsStub(channel),
        snapshots_pb2_grpc.SnapshotsStub(channel),
        stores_pb2_grpc.StoresStub(channel),
        cluster_pb2_grpc.ClusterStub(channel),
    )


def small_limits() -> Limits:
    """Limits small enough that tests can cross them cheaply."""
    return Limits(max_message_bytes=1024 * 1024, max_events_per_append=100, read_batch=7)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NodeServer]:
    """A node on each backend: every test through `node`/`api` runs on SQLite and PostgreSQL."""
    async with contextlib.AsyncExitStack() as stack:
        dsn = None
        if request.param == "postgres":
            dsn = await stack.enter_async_context(fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True))
        config = NodeConfig(
            listen="127.0.0.1:0", data_dir=tmp_path / "data", postgres_dsn=dsn, limits=small_limits(), grace_s=0.5
        )
        server = NodeServer(config)
        await server.start()
        stack.push_async_callback(server.stop)
        yield server


@pytest.fixture
async def api(node: NodeServer) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(node.address) as channel:
        yield stubs_for(node.address, channel)


@pytest.fixture
def env_path() -> dict[str, str]:
    """The environment for subprocesses: the venv's bin first, so `gater` and `grpcurl` resolve."""
    env = dict(os.environ)
    bin_dir = str(Path(os.sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


@dataclass
class Gateway:
    """A running gateway and a client channel to it."""

    server: GatewayServer
    api: Stubs
    health: health_pb2_grpc.HealthStub

    @property
    def address(self) -> str:
        return self.server.address


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway_for() -> AsyncIterator[StartGateway]:
    """`await gateway_for([node addresses], **GatewayConfig fields)`: a gateway on a loopback
    port with a static list of those nodes, and a channel to it; both closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(addresses: list[str], **config: object) -> Gateway:
            config.setdefault("grace_s", 0.1)
            server = GatewayServer(GatewayConfig(listen="127.0.0.1:0", **config), StaticDiscovery(addresses))  # type: ignore[arg-type]
            await stack.enter_async_context(server)
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(server.address))
            return Gateway(server, stubs_for(server.address, channel), health_pb2_grpc.HealthStub(channel))

        yield start


@pytest.fixture
async def gateway(node: NodeServer, gateway_for: StartGateway) -> Gateway:
    """A gateway in front of `node` (so on each backend)."""
    return await gateway_for([node.address])
