"""A persistent subscription's owner node SIGKILLed behind a gateway, on PostgreSQL node
processes: no event whose AckEvent was answered OK is delivered again, the events that were
in flight come back with retry_count >= 1 (the new owner knows they were delivered), and an
ack sent while the owner is gone reaches the new owner or fails fast with UNAVAILABLE (never
DEADLINE_EXCEEDED on a 5 s deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from exesdb.v1 import streams_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.conftest import StartGateway, Stubs
from tests.helpers import Collector, new_event
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Cluster:
    nodes: list[GaterProcess]
    api: Stubs

    def node_with_id(self, node_id: str) -> GaterProcess:
        """The node whose id (host:port) names the given port."""
        port = node_id.rsplit(":", 1)[1]
        (node,) = [n for n in self.nodes if n.address.rsplit(":", 1)[1] == port]
        return node


@pytest.fixture
async def cluster(migrated_database: str, gateway_for: StartGateway) -> AsyncIterator[Cluster]:
    first = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database)
    await first.start()  # creates the schema; the others then start at once
    others = [GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database) for _ in range(2)]
    await asyncio.gather(*(n.start() for n in others))
    nodes = [first, *others]
    try:
        gateway = await gateway_for([n.address for n in nodes], grace_s=0.5)
        yield Cluster(nodes, gateway.api)
    finally:
        await asyncio.gather(*(n.kill() for n in nodes))
        for n in nodes:  # shown by pytest only when the test failed
            print(f"--- log of node {n.address}\n{''.join(n.log[-80:])}")


async def append(api: Stubs, n: int) -> None:
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="jobs", events=[new_event() for _ in range(n)]))


@pytest.mark.timeout(180)
async def test_acked_events_stay_acked_and_retry_counts_survive_the_owner(cluster: Cluster) -> None:
    api = cluster.api
    await api.subscriptions.SaveSubscription(
        pb.SaveSubscriptionRequest(
            name="billing", selector="$all", settings=pb.SubscriptionSettings(message_timeout_ms=120_000)
        )
    )
    await append(api, 10)
    consumer = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="billing")))
    first = await consumer.count(10)
    assert sorted(e.position for e in first) == list(range(10))
    assert {e.retry_count for e in first} == {0}
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=list(range(2, 10))))

    # The consumer's node took the subscription's lease when it asked first: it is the owner.
    owner = cluster.node_with_id(consumer.last["confirmation"].node_id)
    await owner.kill()

    # An ack for position 0 while the owner is gone: OK, or UNAVAILABLE at once — retried
    # until it reaches the new owner. Never a deadline passed on the server's side.
    codes = []
    async with asyncio.timeout(90):
        while True:
            try:
                await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=[0]), timeout=5)
                acked_0_at = len(consumer.events)
                break
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())
                assert e.code() == grpc.StatusCode.UNAVAILABLE, e
                await asyncio.sleep(0.3)

    print("ack attempts answered:", [c.name for c in codes], "then OK")
    # Events appended after the takeover come after every redelivery (lowest position first):
    # once they are in, whatever was to come again has come.
    await append(api, 5)
    await consumer.wait_for(lambda c: {e.position for e in c.events[10:]} >= set(range(10, 15)), timeout_s=60)
    again = [e for e in consumer.events[10:] if e.position < 10]
    # 2..9 were acked before the kill: never again. 0 may come back before its ack got
    # through, not after. 1 comes back. Each counts its delivery before the kill.
    assert {e.position for e in again} in ({1}, {0, 1}), [(e.position, e.retry_count) for e in again]
    assert 0 not in {e.position for e in consumer.events[acked_0_at:]}
    assert all(e.retry_count >= 1 for e in again)
    assert consumer.error is None
    await consumer.close()
