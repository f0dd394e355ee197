"""The gateway's own health tells the truth a caller would meet: SERVING only while some member
answers its own grpc.health.v1 Check, found by probing (no client traffic needed), and
grpc.health.v1 Watch reports each change.

Covers: one node process killed and restarted; two PostgreSQL node processes SIGKILLed with no
traffic (NOT_SERVING within 3 s, Watch streams it, no flap back while no node runs, SERVING only
once a node answers); a member whose Check never answers, and one that answers NOT_SERVING,
are not used and keep the gateway NOT_SERVING until they answer SERVING.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2

from exesdb.v1 import cluster_pb2, streams_pb2
from tests.conftest import StartGateway
from tests.gateway.conftest import FakeNode
from tests.helpers import new_event
from tests.procs import GaterProcess

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Watched:
    """Every status a gateway's health Watch sends, as it arrives."""

    def __init__(self, call: grpc.aio.UnaryStreamCall) -> None:
        self.call = call
        self.statuses: list[int] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for reply in self.call:
            async with self._changed:
                self.statuses.append(reply.status)
                self._changed.notify_all()

    async def until(self, n: int) -> list[int]:
        """The statuses once there are at least `n`."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.statuses) >= n)
        return self.statuses

    def close(self) -> None:
        self.call.cancel()


async def test_health_watch_follows_the_nodes(tmp_path, gateway_for: StartGateway) -> None:
    data = str(tmp_path / "data")
    node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    await node.start()
    gateway = await gateway_for([node.address])
    watch = gateway.health.Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == SERVING

    await node.kill()
    try:
        await gateway.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="h", events=[new_event()]))
    except grpc.aio.AioRpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE
    assert (await watch.read()).status == NOT_SERVING

    again = GaterProcess("node", "--listen", node.address, "--data-dir", data)
    async with again:
        # The member answers its health probe again, and the gateway's health says so.
        assert (await watch.read()).status == SERVING
        await gateway.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="h", events=[new_event()]))
    watch.cancel()


@pytest.mark.postgres
@pytest.mark.slow
async def test_health_goes_not_serving_without_traffic_when_every_node_dies(
    migrated_database: str, gateway_for: StartGateway
) -> None:
    first = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database)
    await first.start()  # creates the schema; then the second
    second = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database)
    await second.start()
    nodes = [first, second]
    try:
        gateway = await gateway_for([n.address for n in nodes])
        watched = Watched(gateway.health.Watch(health_pb2.HealthCheckRequest()))
        assert await watched.until(1) == [SERVING]

        await asyncio.gather(*(n.kill() for n in nodes))
        # No client call: the gateway finds out by probing its members' health.
        async with asyncio.timeout(3):
            assert await watched.until(2) == [SERVING, NOT_SERVING]
        reply = await gateway.health.Check(health_pb2.HealthCheckRequest())
        assert reply.status == NOT_SERVING

        # A call meets what health said; its failure does not bring anything back.
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await gateway.api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE

        again = GaterProcess("node", "--listen", first.address, "--postgres-dsn", migrated_database)
        nodes.append(again)
        await again.start()
        # Nothing said SERVING while no node ran (no flap with an ejection timer)...
        assert watched.statuses == [SERVING, NOT_SERVING]
        # ...and once a node answers its probe, health says so and calls go through.
        assert await watched.until(3) == [SERVING, NOT_SERVING, SERVING]
        await gateway.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="h", events=[new_event()]))
        watched.close()
    finally:
        await asyncio.gather(*(n.kill() for n in nodes))


async def test_a_member_whose_health_never_answers_is_not_used(
    health_server: FakeNode, gateway_for: StartGateway
) -> None:
    health_server.hang()  # answers Cluster.GetStatus, but its Check never returns
    gateway = await gateway_for([health_server.address])
    await health_server.checks_reach(1)
    reply = await gateway.health.Check(health_pb2.HealthCheckRequest())
    assert reply.status == NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await gateway.api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "no healthy node" in e.value.details()
    status = await gateway.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
    (member,) = status.members
    assert member.address == health_server.address and member.cluster_id == health_server.cluster_id
    assert not member.healthy


async def test_a_member_comes_back_only_when_its_health_answers_serving(
    health_server: FakeNode, gateway_for: StartGateway
) -> None:
    health_server.set(NOT_SERVING)
    gateway = await gateway_for([health_server.address])
    watched = Watched(gateway.health.Watch(health_pb2.HealthCheckRequest()))
    assert await watched.until(1) == [NOT_SERVING]
    # Probe after probe answers NOT_SERVING (several probe intervals, longer than any first
    # ejection): the gateway stays NOT_SERVING and routes nothing to the member.
    await health_server.checks_reach(health_server.checks + 3)
    assert watched.statuses == [NOT_SERVING]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await gateway.api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE

    health_server.set(SERVING)
    assert await watched.until(2) == [NOT_SERVING, SERVING]
    status = await gateway.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
    assert [m.healthy for m in status.members] == [True]
    watched.close()
