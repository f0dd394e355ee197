"""RemoveStore while appends flow and subscribers are attached, against a real node process,
20 times in a row, on SQLite and on PostgreSQL: the node keeps answering health within 1 s,
every subscriber of the removed store (transient and persistent) ends with NOT_FOUND, the
re-created store starts clean (no event of an earlier incarnation reaches its subscribers, and
none of the new one reaches the old subscribers), and SIGTERM stops the node cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exesdb.v1 import stores_pb2, streams_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector, new_event
from tests.procs import GaterProcess
from tests.store.pg_fixtures import fresh_database

pytestmark = pytest.mark.slow

ROUNDS = 20
STORE = "victim"
BY_STREAM, BY_TYPE = 0, 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def storage_args(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[tuple[str, ...]]:
    if request.param == "sqlite":
        yield ("--data-dir", str(tmp_path / "data"))
    else:
        async with fresh_database(request.getfixturevalue("postgres_dsn"), migrated=True) as dsn:
            yield ("--postgres-dsn", dsn)


async def keep_appending(api: Stubs, tag: str) -> None:
    """Appends until the store is gone (or the task is cancelled)."""
    i = 0
    while True:
        try:
            await api.streams.AppendEvents(
                streams_pb2.AppendEventsRequest(
                    store=STORE, stream_id=f"{tag}-{i % 3}", events=[new_event("tick") for _ in range(5)]
                ),
                timeout=10,
            )
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            return
        i += 1


async def watch_health(channel: grpc.aio.Channel, failures: list[str]) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                failures.append(f"health answered {reply.status}")
        except grpc.aio.AioRpcError as e:
            failures.append(f"health: {e.code().name} {e.details()}")
        await asyncio.sleep(0.1)


@pytest.mark.timeout(300)
async def test_remove_store_under_appends_and_subscribers(storage_args: tuple[str, ...]) -> None:
    node = GaterProcess("node", "--listen", "127.0.0.1:0", *storage_args)
    async with node, grpc.aio.insecure_channel(node.address) as channel:
        api = stubs_for(node.address, channel)
        health_failures: list[str] = []
        health = asyncio.create_task(watch_health(channel, health_failures))
        try:
            for round_ in range(ROUNDS):
                tag = f"r{round_}"
                await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id=STORE))
                await api.subscriptions.SaveSubscription(
                    pb.SaveSubscriptionRequest(store=STORE, name="workers", selector="$all")
                )
                await api.streams.AppendEvents(
                    streams_pb2.AppendEventsRequest(
                        store=STORE, stream_id=f"{tag}-0", events=[new_event("tick") for _ in range(20)]
                    )
                )
                subscribers = [
                    Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(store=STORE, selector="$all"))),
                    Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(store=STORE, type=BY_STREAM, selector=f"{tag}-1"))),
                    Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(store=STORE, type=BY_TYPE, selector="tick", max_batch=3))),
                    Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(store=STORE, subscription_name="workers"))),
                ]
                appenders = [asyncio.create_task(keep_appending(api, tag)) for _ in range(3)]
                for sub in subscribers:
                    await sub.wait_for(lambda c: len(c.events) >= 3)
                await api.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id=STORE), timeout=10)

                for kind, sub in zip(("$all", "stream", "type", "persistent"), subscribers, strict=True):
                    try:
                        await sub.wait_for(lambda c: c.error is not None, timeout_s=15)
                    except TimeoutError:
                        pytest.fail(f"round {round_}: the {kind} subscriber did not end ({sub.messages[-3:]})")
                    finally:
                        await sub.close()
                    assert sub.error.code() == grpc.StatusCode.NOT_FOUND, (round_, kind, sub.error)
                    # Only this incarnation's events, each once, in order.
                    positions = [e.position for e in sub.events]
                    repeated = sorted(p for p in set(positions) if positions.count(p) > 1)
                    assert positions == sorted(set(positions)), (
                        round_, kind, [(e.position, e.retry_count) for e in sub.events if e.position in repeated]
                    )
                    assert all(e.stream_id.startswith(f"{tag}-") for e in sub.events), round_
                async with asyncio.timeout(15):
                    await asyncio.gather(*appenders)
                # The $all subscriber of a re-created store starts from position 0.
                assert [e.position for e in subscribers[0].events] == list(range(len(subscribers[0].events)))
            assert health_failures == []
        finally:
            health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await health
        async with asyncio.timeout(30):
            assert await node.terminate() == 0
