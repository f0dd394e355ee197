"""Prometheus metrics, scraped from /metrics of running nodes and gateways: the named series
move when events are appended, subscribed to (transient and persistent), acked, nacked,
parked and failed over; /readyz follows the gateway's health and /livez answers.

Covers: a SQLite node and a gateway in front of it (RPC counts and latency on both sides,
appended events and bytes, group-commit sizes, the store's head, transient and persistent
subscription lag, consumers, in-flight, parked, deliveries, redeliveries, the tailer's queues,
pool members and discovery); two PostgreSQL nodes behind a gateway, one stopped under a live
subscription (retries, ejections, resumed streams, members by state, pool and LISTEN gauges);
/readyz going from 200 to 503 when the gateway's only node stops.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from gater.client import ALL, Client, NackAction
from gater.config import GatewayConfig, NodeConfig, ObservabilityConfig
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.node import NodeServer
from tests.obs_helpers import has, http_get, scrape, take, value

pytestmark = pytest.mark.timeout(90)

OBS = ObservabilityConfig(metrics_listen="127.0.0.1:0")
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def readings(n: int) -> list[dict]:
    return [{"event_type": "temperature_measured:v1", "data": {"celsius": 20 + i}} for i in range(n)]


@contextlib.asynccontextmanager
async def node_and_gateway(tmp_path: Path) -> AsyncIterator[tuple[NodeServer, GatewayServer]]:
    node = NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", grace_s=0.2, observability=OBS))
    async with node:
        gateway = GatewayServer(
            GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, observability=OBS), StaticDiscovery([node.address])
        )
        async with gateway:
            yield node, gateway


def port(server: NodeServer | GatewayServer) -> int:
    assert server.http is not None and server.http.port is not None
    return server.http.port


async def test_series_move_with_appends_and_subscriptions(tmp_path: Path) -> None:
    async with node_and_gateway(tmp_path) as (node, gateway), await Client.connect(gateway.address) as client:
        before = await scrape(port(node))
        assert value(before, "gater_appended_events_total") == 0
        assert value(before, "gater_build_info", role="node") == 1

        await client.append_events("", "gh-1", readings(10))
        n, g = await scrape(port(node)), await scrape(port(gateway))
        assert value(n, "gater_appended_events_total", store="default") == 10
        assert value(n, "gater_appended_bytes_total", store="default") > 10 * len('{"celsius":20}')
        assert value(n, "gater_commit_batch_events_count", backend="sqlite") >= 1
        assert value(n, "gater_commit_batch_events_sum", backend="sqlite") == 10
        assert value(n, "gater_store_head_position", store="default") == 9
        for series in (n, g):  # counted on both sides of the hop
            assert value(series, "grpc_server_handled_total", grpc_method="AppendEvents", grpc_code="OK") == 1
            assert value(series, "grpc_server_handling_seconds_count", grpc_method="AppendEvents") == 1
        assert value(g, "gater_gateway_members", state="available") == 1
        assert value(g, "gater_discovery_up", discovery="static") == 1
        assert value(g, "gater_discovery_last_success_timestamp_seconds", discovery="static") > 0

        # A transient subscriber: delivered events, consumers, lag 0 once it has everything.
        async with client.subscribe("", stream=ALL) as sub:
            await take(sub, 10)
            n = await scrape(port(node))
            key = {"store": "default", "subscription": "transient"}
            assert value(n, "gater_subscription_delivered_events_total", **key) == 10
            assert value(n, "gater_subscription_consumers", **key) == 1
            assert value(n, "gater_subscription_lag_events", **key) == 0
            assert has(n, "gater_tailer_queued_batches")

        # A persistent subscription: deliveries, acks move the lag, a nack redelivers, a park parks.
        await client.save_subscription("", "workers", stream="gh-1", max_retries=5)
        async with client.subscribe("", name="workers") as sub:
            first = await take(sub, 10)
            n = await scrape(port(node))
            key = {"store": "default", "subscription": "workers"}
            assert value(n, "gater_subscription_delivered_events_total", **key) == 10
            assert value(n, "gater_subscription_in_flight_events", **key) == 10
            assert value(n, "gater_subscription_consumers", **key) == 1
            assert value(n, "gater_subscription_lag_events", **key) == 10
            assert value(n, "gater_subscription_lag_seconds", **key) > 0

            await sub.ack(first[:4])
            await sub.nack([first[4]], NackAction.RETRY)
            (again,) = await take(sub, 1)
            assert again.retry_count == 1
            await sub.nack([first[5]], NackAction.PARK)
            n = await scrape(port(node))
            assert value(n, "gater_subscription_lag_events", **key) == 6  # positions 4..9 not done
            assert value(n, "gater_subscription_redelivered_events_total", **key) == 1
            assert value(n, "gater_subscription_delivered_events_total", **key) == 11
            assert value(n, "gater_subscription_parked_events", **key) == 1
            assert value(n, "gater_subscription_in_flight_events", **key) == 5

            await sub.ack([again, *first[6:]])
            n = await scrape(port(node))
            assert value(n, "gater_subscription_lag_events", **key) == 0
            assert value(n, "gater_subscription_lag_seconds", **key) == 0
            assert value(n, "gater_subscription_in_flight_events", **key) == 0
            assert value(n, "grpc_server_handled_total", grpc_method="AckEvent", grpc_code="OK") == 2


async def test_http_health_and_unknown_paths(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with node_and_gateway(tmp_path) as (node, gateway):
        # Components register their collectors in __init__: none may run before a scrape.
        assert not [r for r in caplog.records if r.getMessage() == "metrics collector failed"]
        for server in (node, gateway):
            assert await http_get(port(server), "/livez") == (200, "ok\n")
            assert (await http_get(port(server), "/readyz"))[0] == 200
            assert (await http_get(port(server), "/nope"))[0] == 404


async def test_readyz_goes_503_when_the_gateway_has_no_usable_node(tmp_path: Path) -> None:
    node = NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", grace_s=0.2))
    await node.start()
    gateway = GatewayServer(
        GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, probe_interval_s=0.1, observability=OBS),
        StaticDiscovery([node.address]),
    )
    async with gateway:
        assert await http_get(port(gateway), "/readyz") == (200, "ready\n")
        await node.stop()
        # The gateway's own gRPC health turns NOT_SERVING without client traffic: wait for it.
        async with contextlib.aclosing(_statuses(gateway)) as statuses:
            async for status in statuses:
                if status == NOT_SERVING:
                    break
        status, body = await http_get(port(gateway), "/readyz")
        assert status == 503 and "not ready" in body
        assert (await http_get(port(gateway), "/livez"))[0] == 200
        g = await scrape(port(gateway))
        assert value(g, "gater_gateway_members", state="available") == 0
        assert value(g, "gater_gateway_members", state="not_answering") == 1
        assert value(g, "gater_gateway_ejections_total", reason="probe_failed") == 1


async def _statuses(gateway: GatewayServer) -> AsyncIterator[int]:
    import grpc
    from grpc_health.v1 import health_pb2_grpc

    async with grpc.aio.insecure_channel(gateway.address) as channel:
        async for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest()):
            yield reply.status


@pytest.mark.postgres
async def test_failover_moves_the_gateway_series(tmp_path: Path, migrated_database: str) -> None:
    base = NodeConfig(listen="127.0.0.1:0", postgres_dsn=migrated_database, grace_s=0.2, observability=OBS)
    nodes = [NodeServer(replace(base, node_id=f"n{i}", data_dir=tmp_path / f"d{i}")) for i in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        for node in nodes:
            await stack.enter_async_context(node)
        gateway = GatewayServer(
            GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, probe_interval_s=0.2, observability=OBS),
            StaticDiscovery([n.address for n in nodes]),
        )
        await stack.enter_async_context(gateway)
        client = await stack.enter_async_context(await Client.connect(gateway.address))
        await client.append_events("", "gh-1", readings(3))
        n = await scrape(port(nodes[0]))
        assert value(n, "gater_postgres_listener_up") == 1
        assert value(n, "gater_postgres_pool_max_connections") >= 1
        assert value(n, "gater_commit_batch_events_count", backend="postgres") + value(
            await scrape(port(nodes[1])), "gater_commit_batch_events_count", backend="postgres"
        ) == 1

        async with client.subscribe("", stream=ALL) as sub:
            assert len(await take(sub, 3)) == 3
            serving = next(n for n in nodes if n.node_id == sub.node_id)
            g = await scrape(port(gateway))
            assert value(g, "gater_gateway_members", state="available") == 2
            assert value(g, "gater_gateway_resumed_streams_total") == 0

            await serving.stop()  # its subscribers end UNAVAILABLE: the gateway resumes on the other
            await client.append_events("", "gh-1", readings(2))
            assert [e.version for e in await take(sub, 2)] == [3, 4]
            g = await scrape(port(gateway))
            assert value(g, "gater_gateway_resumed_streams_total", kind="subscribe") == 1
            assert value(g, "gater_gateway_retries_total", grpc_method="/exesdb.v1.Subscriptions/Subscribe") >= 1
