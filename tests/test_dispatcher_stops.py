"""A persistent consumer whose dispatcher stops is told (UNAVAILABLE or NOT_FOUND) or carried
over to the restarted dispatcher — never left with heartbeats from a dead one. Real node
processes on real PostgreSQL: an outage under load (every database connection cut by the
relay of tests/store/pg_fixtures), and a RemoveSubscription handled by another node, which
is a normal stop on the owner (no ERROR in its log)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector
from tests.procs import GaterProcess
from tests.store.pg_fixtures import SocketProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def events(n: int, kind: str = "tick") -> list[types_pb2.NewEvent]:
    return [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type=kind, data=b"{}") for _ in range(n)]


async def keep_appending(api: Stubs, failed: asyncio.Event) -> None:
    """10 events every 0.1 s: a steady load the consumer keeps up with."""
    while True:
        try:
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="load", events=events(10)), timeout=30)
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            failed.set()
        await asyncio.sleep(0.1)


async def consumers(api: Stubs) -> int:
    (info,) = (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    return info.consumers


@pytest.mark.timeout(180)
async def test_a_consumer_is_told_or_carried_over_when_the_database_goes_away(migrated_database: str) -> None:
    proxy = SocketProxy(migrated_database)
    await proxy.restore()
    try:
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", proxy.dsn)
        async with node, grpc.aio.insecure_channel(node.address) as channel:
            api = stubs_for(node.address, channel)
            await api.subscriptions.SaveSubscription(
                pb.SaveSubscriptionRequest(name="work", selector="$all", settings=pb.SubscriptionSettings(max_in_flight=10_000))
            )
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="seed", events=events(200)))
            consumer = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="work", heartbeat_ms=200)))
            outage = asyncio.Event()
            load = asyncio.create_task(keep_appending(api, outage))
            try:
                await consumer.wait_for(lambda c: "caught_up" in c.messages and len(c.events) >= 250)
                await proxy.cut()
                await asyncio.wait_for(outage.wait(), 30)
                await proxy.restore()
                # After the outage: appends go through again, and then a marker event.
                async with asyncio.timeout(60):
                    while True:
                        try:
                            await api.streams.AppendEvents(
                                streams_pb2.AppendEventsRequest(stream_id="marker", events=events(1, "marker")), timeout=10
                            )
                            break
                        except grpc.aio.AioRpcError as e:
                            assert e.code() == grpc.StatusCode.UNAVAILABLE
                            await asyncio.sleep(0.2)
                await consumer.wait_for(
                    lambda c: c.error is not None or any(e.event_type == "marker" for e in c.events), timeout_s=60
                )
                if consumer.error is not None:
                    assert consumer.error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
                else:
                    assert await consumers(api) == 1  # still attached, and counted
                # Either way a consumer (re)connecting now gets the marker event.
                again = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="work")))
                await again.wait_for(
                    lambda c: any(e.event_type == "marker" for e in c.events + consumer.events), timeout_s=60
                )
                await again.close()
            finally:
                load.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await load
                await consumer.close()
    finally:
        await proxy.close()


@pytest.mark.timeout(120)
async def test_remove_subscription_on_another_node_is_a_normal_stop_on_the_owner(migrated_database: str) -> None:
    owner = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database)
    other = GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database)
    async with owner, other:  # started in this order (owner first); each killed on the way out
        async with grpc.aio.insecure_channel(owner.address) as c1, grpc.aio.insecure_channel(other.address) as c2:
            api1, api2 = stubs_for(owner.address, c1), stubs_for(other.address, c2)
            await api1.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="work", selector="$all"))
            await api1.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s", events=events(3)))
            local = Collector(api1.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="work")))
            await local.count(3)  # the first node to ask owns the dispatch
            relayed = Collector(api2.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="work")))
            await relayed.wait_for(lambda c: "confirmation" in c.messages)

            await api2.subscriptions.RemoveSubscription(pb.RemoveSubscriptionRequest(name="work"))
            for sub in (local, relayed):
                await sub.wait_for(lambda c: c.error is not None, timeout_s=30)
                assert sub.error.code() == grpc.StatusCode.NOT_FOUND, sub.error
                await sub.close()
        # The owner noticed (its dispatcher stopped) without an error or a traceback.
        log = "".join(owner.log)
        assert "ERROR" not in log and "Traceback" not in log, log
