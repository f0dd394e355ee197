"""A gateway in front of three real node processes sharing one PostgreSQL database:
round-robin spread, fallback, ejection and return, SIGKILL under load with zero failed calls,
subscriptions resumed across a node kill, pass-through of statuses, details and deadlines,
UNAVAILABLE with no nodes, and the cluster-id guard."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2

from exesdb.v1 import cluster_pb2, streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.gateway.server import GatewayServer
from tests.conftest import StartGateway, Stubs, stubs_for
from tests.helpers import Collector, details, new_event
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Cluster:
    gateway: GatewayServer
    nodes: list[GaterProcess]
    api: Stubs
    dsn: str

    def node_at(self, address: str) -> GaterProcess:
        (node,) = [n for n in self.nodes if n.address == address]
        return node

    async def restart(self, node: GaterProcess) -> GaterProcess:
        """A new process on the same address (the old one must be dead)."""
        again = GaterProcess("node", "--listen", node.address, "--postgres-dsn", self.dsn)
        await again.start()
        self.nodes[self.nodes.index(node)] = again
        return again


def node_process(dsn: str) -> GaterProcess:
    return GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", dsn)


@pytest.fixture
async def cluster(migrated_database: str, gateway_for: StartGateway) -> AsyncIterator[Cluster]:
    first = node_process(migrated_database)
    await first.start()  # creates the schema; the others then start at once
    others = [node_process(migrated_database) for _ in range(2)]
    await asyncio.gather(*(n.start() for n in others))
    nodes = [first, *others]
    try:
        gateway = await gateway_for([n.address for n in nodes], grace_s=0.5)
        yield Cluster(gateway.server, nodes, gateway.api, migrated_database)
    finally:
        await asyncio.gather(*(n.kill() for n in nodes))
        for n in nodes:  # shown by pytest only when the test failed
            print(f"--- log of node {n.address}\n{''.join(n.log[-60:])}")


async def append(api: Stubs, stream_id: str, n: int = 1, **kw) -> streams_pb2.AppendEventsResponse:
    return await api.streams.AppendEvents(
        streams_pb2.AppendEventsRequest(stream_id=stream_id, events=[new_event() for _ in range(n)], **kw)
    )


async def all_events(api: Stubs) -> list[types_pb2.EventRecord]:
    out = []
    async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
        out.extend(batch.events)
    return out


async def test_calls_go_round_robin_over_the_nodes(cluster: Cluster) -> None:
    before = collections.Counter(cluster.gateway.pool.calls)
    for _ in range(30):
        await cluster.api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"))
    spread = collections.Counter(cluster.gateway.pool.calls)
    spread.subtract(before)
    assert sorted(spread.values()) == [10, 10, 10]
    # Subscriptions spread too: each confirmation names the node serving it.
    subs = [Collector(cluster.api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all"))) for _ in range(6)]
    for sub in subs:
        await sub.wait_for(lambda c: "confirmation" in c.last)
    serving = collections.Counter(sub.last["confirmation"].node_id for sub in subs)
    assert sorted(serving.values()) == [2, 2, 2]
    for sub in subs:
        await sub.close()


async def test_status_lists_members_of_one_cluster(cluster: Cluster) -> None:
    status = await cluster.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
    assert status.role == cluster_pb2.ROLE_GATEWAY and status.discovery == "static" and status.discovery_ok
    assert sorted(m.address for m in status.members) == sorted(n.address for n in cluster.nodes)
    assert {m.cluster_id for m in status.members} == {status.cluster_id}
    assert all(m.healthy for m in status.members)


async def test_a_dead_node_is_skipped_ejected_and_welcomed_back(cluster: Cluster) -> None:
    victim = cluster.nodes[1]
    await victim.kill()
    for i in range(20):  # none of these may fail
        await append(cluster.api, f"fallback-{i}")
    status = await cluster.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
    (dead,) = [m for m in status.members if m.address == victim.address]
    # Not used: its health probe (or a call that failed on it, which also ejects it; which of
    # the two finds it first is a race) made it unusable until a probe answers again.
    assert not dead.healthy

    watch = cluster.api.cluster.WatchMembers(cluster_pb2.WatchMembersRequest())
    await cluster.restart(victim)
    # Its probe answers again (and any ejection ends): the member is healthy again.
    async with asyncio.timeout(30):
        async for _change in watch:
            await append(cluster.api, "probe")
            status = await cluster.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
            back = [m for m in status.members if m.address == victim.address and m.healthy]
            if back:
                break
    watch.cancel()
    assert back


async def test_sigkill_under_32_appenders_fails_no_call_and_stores_each_event_once(cluster: Cluster) -> None:
    acknowledged: list[str] = []
    failures: list[str] = []
    started = asyncio.Event()

    async def appender(n: int) -> None:
        for _ in range(15):
            ids = [str(uuid.uuid4()) for _ in range(2)]
            request = streams_pb2.AppendEventsRequest(
                stream_id=f"load-{n % 8}",
                events=[types_pb2.NewEvent(event_id=x, event_type="tick", data=b"{}") for x in ids],
            )
            try:
                await cluster.api.streams.AppendEvents(request, timeout=30)
            except grpc.aio.AioRpcError as e:
                failures.append(f"{e.code().name}: {e.details()}")
                continue
            acknowledged.extend(ids)
            if len(acknowledged) >= 100:
                started.set()

    tasks = [asyncio.create_task(appender(n)) for n in range(32)]
    await started.wait()
    await cluster.nodes[0].kill()
    await asyncio.gather(*tasks)
    assert failures == []
    stored = [e.event_id for e in await all_events(cluster.api)]
    counts = collections.Counter(stored)
    assert set(acknowledged) <= set(stored) and len(acknowledged) == 32 * 15 * 2
    assert max(counts.values()) == 1


SUBSCRIPTIONS = {
    "all": dict(selector="$all"),
    "stream": dict(type=0, selector="resume-1"),
    "type": dict(type=1, selector="wanted:v1"),
    "payload": dict(type=3),
}


@pytest.mark.parametrize("kind", sorted(SUBSCRIPTIONS))
async def test_a_transient_subscription_survives_the_death_of_its_node(cluster: Cluster, kind: str) -> None:
    request = pb.SubscribeRequest(**SUBSCRIPTIONS[kind])
    if kind == "payload":
        request.pattern.update({"wanted": True})
    sub = Collector(cluster.api.subscriptions.Subscribe(request))
    await sub.wait_for(lambda c: "caught_up" in c.last)

    async def produce(count: int) -> None:
        for _ in range(count):
            event = types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="wanted:v1", data=json.dumps({"wanted": True}).encode())
            noise = types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="noise:v1", data=b'{"wanted": false}')
            await cluster.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="resume-1", events=[event]))
            await cluster.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="other", events=[noise]))

    await produce(10)
    expected_each = 20 if kind == "all" else 10
    await sub.count(expected_each)
    serving = sub.last["confirmation"].node_id
    victim = next(n for n in cluster.nodes if n.address.endswith(serving.rsplit(":", 1)[1]))
    await victim.kill()
    await produce(10)
    try:
        await sub.count(expected_each * 2, timeout_s=30)
    except TimeoutError:
        got = [(e.position, e.stream_id) for e in sub.events]
        raise AssertionError(f"received {len(got)}: {got}; messages {sub.messages}; last {sub.last}") from None
    everything = await all_events(cluster.api)
    wanted = {
        "all": lambda e: True,
        "stream": lambda e: e.stream_id == "resume-1",
        "type": lambda e: e.event_type == "wanted:v1",
        "payload": lambda e: json.loads(e.data).get("wanted") is True,
    }[kind]
    assert [e.position for e in sub.events] == [e.position for e in everything if wanted(e)]
    assert sub.messages.count("confirmation") == 1 and sub.messages.count("caught_up") == 1
    await sub.close()


async def test_statuses_details_and_deadlines_pass_through(cluster: Cluster) -> None:
    await append(cluster.api, "pass")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await append(cluster.api, "pass", expected_version=7)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    (detail,) = details(e.value)
    assert detail.current_version == 0 and detail.stream_id == "pass"
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await cluster.api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="", events=[new_event()]))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith("stream_id:")
    assert [d.field for d in details(e.value)] == ["stream_id"]
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await cluster.api.streams.GetVersion(streams_pb2.GetVersionRequest(store="nope", stream_id="s"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # A deadline the call cannot meet: a live subscription never ends by itself.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in cluster.api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all"), timeout=0.5):
            pass
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_cancelling_a_subscription_ends_it_on_the_node(cluster: Cluster) -> None:
    await cluster.api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="cancel-me", selector="$all"))
    sub = Collector(cluster.api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="cancel-me")))
    await sub.wait_for(lambda c: "confirmation" in c.last)
    serving = sub.last["confirmation"].node_id.rsplit(":", 1)[1]
    node = next(n for n in cluster.nodes if n.address.endswith(":" + serving))

    async def consumers_on_node() -> int:
        async with grpc.aio.insecure_channel(node.address) as channel:
            listed = await stubs_for(node.address, channel).subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())
        return next(s.consumers for s in listed.subscriptions if s.name == "cancel-me")

    assert await consumers_on_node() == 1
    await sub.close()
    # The gateway cancels its call to the node: the node's consumer goes away (each check
    # below is a call to the node, not a sleep).
    for _ in range(200):
        if await consumers_on_node() == 0:
            break
    assert await consumers_on_node() == 0


async def test_no_usable_node_is_unavailable_at_once(gateway_for: StartGateway) -> None:
    gateway = await gateway_for(["127.0.0.1:1"])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        request = streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()])
        await gateway.api.streams.AppendEvents(request, timeout=5)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no healthy node" in e.value.details()
    health = await gateway.health.Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_nodes_of_another_cluster_are_never_used(migrated_database: str, tmp_path, gateway_for: StartGateway) -> None:
    ours = node_process(migrated_database)
    theirs = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "other"))  # SQLite: own id
    async with ours, theirs:
        async with grpc.aio.insecure_channel(ours.address) as channel:
            our_id = (await stubs_for(ours.address, channel).cluster.GetStatus(cluster_pb2.GetStatusRequest())).cluster_id
        gateway = await gateway_for([ours.address, theirs.address], cluster_id=our_id)
        for i in range(10):
            await append(gateway.api, f"guard-{i}")
        assert gateway.server.pool.calls[theirs.address] == 0
        assert gateway.server.pool.calls[ours.address] == 10
        status = await gateway.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
        (foreign,) = [m for m in status.members if m.address == theirs.address]
        assert not foreign.healthy and foreign.cluster_id != our_id


async def test_a_persistent_subscription_survives_the_death_of_its_node(cluster: Cluster) -> None:
    await cluster.api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="workers", selector="$all"))
    sub = Collector(cluster.api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="workers")))
    await sub.wait_for(lambda c: "confirmation" in c.last)
    await append(cluster.api, "jobs", 10)
    await sub.count(10)
    await cluster.api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="workers", positions=list(range(10))))
    serving = sub.last["confirmation"].node_id.rsplit(":", 1)[1]
    victim = next(n for n in cluster.nodes if n.address.endswith(":" + serving))
    await victim.kill()
    await append(cluster.api, "jobs", 10)
    await sub.count(20, timeout_s=40)
    # Acked events are not delivered again; the rest arrive once the dispatch moved.
    assert [e.position for e in sub.events] == list(range(20))
    assert sub.messages.count("confirmation") == 1 and sub.error is None
    await sub.close()


async def test_a_stream_subscription_from_now_resumes_before_its_first_event(cluster: Cluster) -> None:
    await append(cluster.api, "quiet", 3)
    request = pb.SubscribeRequest(type=0, selector="quiet", start_from=pb.StartFrom(origin=pb.StartFrom.ORIGIN_NOW))
    sub = Collector(cluster.api.subscriptions.Subscribe(request))
    await sub.wait_for(lambda c: "caught_up" in c.last)
    serving = sub.last["confirmation"].node_id.rsplit(":", 1)[1]
    await next(n for n in cluster.nodes if n.address.endswith(":" + serving)).kill()
    await append(cluster.api, "other", 2)
    await append(cluster.api, "quiet", 4)
    await sub.count(4, timeout_s=30)
    assert [e.version for e in sub.events] == [3, 4, 5, 6]
    assert sub.error is None
    await sub.close()
