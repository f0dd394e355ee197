"""A node's health follows its storage: NOT_SERVING (overall and per exesdb.v1 service) while
its PostgreSQL cannot be reached, SERVING again once it can, with no client traffic; `Watch`
streams each change and the log tells each change once. The outage is real: the node's
connections go through a relay that cuts them (tests/store/pg_fixtures.SocketProxy)."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from gater._grpc import EXESDB_SERVICES
from gater.config import NodeConfig
from gater.node import NodeServer
from gater.node._health import HealthState
from tests.store.pg_fixtures import SocketProxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def statuses(stub: health_pb2_grpc.HealthStub) -> dict[str, int]:
    out = {}
    for service in ("", *EXESDB_SERVICES):
        out[service] = (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status
    return out


@given(st.lists(st.booleans(), max_size=50))
def test_health_changes_only_when_the_answer_changes(answers):
    state = HealthState()
    changes = [state.observe(a) for a in answers]
    serving, expected = True, []
    for a in answers:
        expected.append(a if a != serving else None)
        serving = a
    assert changes == expected and state.serving == serving


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_health_follows_the_database_without_traffic(migrated_database, tmp_path, caplog):
    proxy = SocketProxy(migrated_database)
    await proxy.restore()
    config = NodeConfig(
        listen="127.0.0.1:0", data_dir=tmp_path, postgres_dsn=proxy.dsn, grace_s=0.5,
        health_interval_s=0.2, health_timeout_s=1.0,
    )  # fmt: skip
    node = NodeServer(config)
    await node.start()
    try:
        async with grpc.aio.insecure_channel(node.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert set((await statuses(health)).values()) == {SERVING}
            overall = health.Watch(health_pb2.HealthCheckRequest(service=""))
            streams = health.Watch(health_pb2.HealthCheckRequest(service="exesdb.v1.Streams"))
            for watch in (overall, streams):
                assert (await watch.read()).status == SERVING

            await proxy.cut()
            async with asyncio.timeout(20):  # polled about every 0.2 s here
                for watch in (overall, streams):
                    assert (await watch.read()).status == NOT_SERVING
            assert set((await statuses(health)).values()) == {NOT_SERVING}

            await proxy.restore()
            async with asyncio.timeout(20):
                for watch in (overall, streams):
                    assert (await watch.read()).status == SERVING
            assert set((await statuses(health)).values()) == {SERVING}
            overall.cancel()
            streams.cancel()
    finally:
        await node.stop()
        await proxy.close()
    said = [r for r in caplog.records if r.name.startswith("gater.node") and "storage" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (logging.WARNING, "storage unavailable: health NOT_SERVING"),
        (logging.INFO, "storage available again: health SERVING"),
    ]
