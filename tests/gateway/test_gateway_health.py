"""The gateway's own health follows its nodes: SERVING while one is usable, NOT_SERVING while
none is, and grpc.health.v1 Watch reports each change."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exesdb.v1 import streams_pb2
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayConfig, GatewayServer
from tests.conftest import stubs_for
from tests.helpers import new_event
from tests.procs import GaterProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_watch_follows_the_nodes(tmp_path) -> None:
    data = str(tmp_path / "data")
    node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    await node.start()
    gateway = GatewayServer(GatewayConfig(listen="127.0.0.1:0", grace_s=0.1), StaticDiscovery([node.address]))
    async with gateway, grpc.aio.insecure_channel(gateway.address) as channel:
        api = stubs_for(gateway.address, channel)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == SERVING

        await node.kill()
        try:
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="h", events=[new_event()]))
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE
        assert (await watch.read()).status == NOT_SERVING

        again = GaterProcess("node", "--listen", node.address, "--data-dir", data)
        async with again:
            # The ejection runs out, the member is usable again, and health says so.
            assert (await watch.read()).status == SERVING
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="h", events=[new_event()]))
        watch.cancel()
