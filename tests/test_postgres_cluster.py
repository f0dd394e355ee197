"""Three node processes on one PostgreSQL database, talked to directly (no gateway):
concurrent appends to the same streams through all three keep positions gap-free and
versions consistent; a subscriber on one node sees every event appended through the others,
in order; a persistent subscription survives SIGKILL of the node that owned its dispatch,
with an ack sent to any node counting."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from exesdb.v1 import cluster_pb2, streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
async def three(migrated_database: str) -> AsyncIterator[list[tuple[GaterProcess, Stubs]]]:
    nodes = [GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database) for _ in range(3)]
    await asyncio.gather(*(n.start() for n in nodes))  # all three migrate at once
    channels = [grpc.aio.insecure_channel(n.address) for n in nodes]
    try:
        yield [(n, stubs_for(n.address, c)) for n, c in zip(nodes, channels, strict=True)]
    finally:
        for channel in channels:
            await channel.close()
        await asyncio.gather(*(n.kill() for n in nodes))


def event(kind: str = "tick") -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type=kind, data=b"{}")


async def read_all(api: Stubs) -> list[types_pb2.EventRecord]:
    out = []
    async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
        out.extend(batch.events)
    return out


async def test_one_cluster_three_nodes(three) -> None:
    ids = set()
    for _, api in three:
        ids.add((await api.cluster.GetStatus(cluster_pb2.GetStatusRequest())).cluster_id)
    assert len(ids) == 1


async def test_concurrent_appends_through_all_nodes_stay_gap_free(three) -> None:
    conflicts = 0

    async def writer(api: Stubs, n: int) -> None:
        nonlocal conflicts
        stream = f"shared-{n % 3}"
        for _ in range(20):
            while True:  # optimistic concurrency: read the version, append at it, retry on conflict
                version = (await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id=stream))).version
                try:
                    await api.streams.AppendEvents(
                        streams_pb2.AppendEventsRequest(stream_id=stream, expected_version=version, events=[event(), event()])
                    )
                    break
                except grpc.aio.AioRpcError as e:
                    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
                    conflicts += 1

    await asyncio.gather(*(writer(api, n) for n in range(12) for _, api in [three[n % 3]]))
    records = await read_all(three[1][1])
    assert [r.position for r in records] == list(range(12 * 20 * 2))
    versions = collections.defaultdict(list)
    for r in records:
        versions[r.stream_id].append(r.version)
    assert all(v == list(range(len(v))) for v in versions.values())
    # Every node sees the same log.
    assert [r.event_id for r in await read_all(three[2][1])] == [r.event_id for r in records]


async def test_a_subscriber_on_one_node_sees_what_the_others_append(three) -> None:
    (_, watcher), (_, a), (_, b) = three
    sub = Collector(watcher.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all")))
    await sub.wait_for(lambda c: "caught_up" in c.last)

    async def produce(api: Stubs, tag: str) -> None:
        for _ in range(25):
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=tag, events=[event(tag)]))

    await asyncio.gather(produce(a, "from-a"), produce(b, "from-b"))
    await sub.count(50)
    assert [e.position for e in sub.events] == list(range(50))
    assert collections.Counter(e.event_type for e in sub.events) == {"from-a": 25, "from-b": 25}
    await sub.close()


async def test_a_persistent_subscription_survives_sigkill_of_its_owner(three) -> None:
    (n0, api0), (n1, api1), (n2, api2) = three
    await api0.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="billing", selector="$all"))
    await api0.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="inv", events=[event() for _ in range(30)]))

    # A consumer on node 1 (which takes the dispatch), another on node 2 (relayed to node 1).
    c1 = Collector(api1.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="billing")))
    await c1.wait_for(lambda c: "confirmation" in c.last)
    c2 = Collector(api2.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="billing")))
    await c2.wait_for(lambda c: "confirmation" in c.last)
    await c1.wait_for(lambda c: len(c.events) + len(c2.events) >= 30)
    first = {e.position for e in c1.events} | {e.position for e in c2.events}
    assert first == set(range(30))
    # Acks sent to node 0 (not the owner) count.
    await api0.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=sorted(first)))
    (info,) = (await api0.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert info.checkpoint == 29

    owner = n1  # the first consumer's node took the lease
    await owner.kill()
    # Node 2's consumer carries on: node 2 (or 0) takes the dispatch over once the lease
    # runs out, from the durable checkpoint.
    await api0.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="inv", events=[event() for _ in range(10)]))
    await c2.wait_for(lambda c: {e.position for e in c.events} >= set(range(30, 40)), timeout_s=40)
    after = [e.position for e in c2.events if e.position >= 30]
    assert sorted(set(after)) == list(range(30, 40))
    assert not [e.position for e in c2.events[len(c2.events) - len(after):] if e.position < 30]  # acked: not again
    await api2.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=list(range(30, 40))))
    (info,) = (await api2.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert info.checkpoint == 39
    await c2.close()
    await c1.close()
    assert c1.error is not None and c1.error.code() == grpc.StatusCode.UNAVAILABLE  # its node died
    assert c2.error is None  # relayed: it never noticed
