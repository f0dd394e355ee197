"""Bytes that are no protobuf message, sent to every exesdb.v1 method of a node and of a
gateway: each answers INVALID_ARGUMENT naming the request, never UNKNOWN or INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from gater._grpc import EXESDB_SERVICES
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayConfig, GatewayServer
from gater.node import NodeServer

METHODS = [
    (f"/{name}/{m.name}", m.server_streaming) for name, service in EXESDB_SERVICES.items() for m in service.methods
]
GARBAGE = b"\xff\xff\xff"  # a truncated varint tag: no message decodes from it


@pytest.fixture
async def gateway(node: NodeServer) -> AsyncIterator[GatewayServer]:
    server = GatewayServer(GatewayConfig(listen="127.0.0.1:0"), StaticDiscovery([node.address]))
    await server.start()
    yield server
    await server.stop()


async def _call(address: str, method: str, streaming: bool) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            if streaming:
                call = channel.unary_stream(method)(GARBAGE, timeout=10)
                async for _ in call:
                    pass
            else:
                await channel.unary_unary(method)(GARBAGE, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error
    raise AssertionError(f"{method} accepted undecodable bytes")


@pytest.mark.parametrize("node", ["sqlite"], indirect=True)
async def test_undecodable_requests_are_invalid_argument(node: NodeServer, gateway: GatewayServer) -> None:
    for address in (node.address, gateway.address):
        for method, streaming in METHODS:
            error = await _call(address, method, streaming)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (address, method, error)
            assert error.details().startswith("request: is not a valid exesdb.v1."), (method, error.details())
