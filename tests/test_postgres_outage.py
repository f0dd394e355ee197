"""A PostgreSQL outage under load, seen through gRPC: a node process whose database goes away
answers UNAVAILABLE (no hang), reconnects by itself when it is back, and has lost no
acknowledged event. The outage is real: every connection is cut by a relay in front of the
server (tests/store/pg_fixtures.SocketProxy)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from tests.conftest import stubs_for
from tests.procs import GaterProcess
from tests.store.pg_fixtures import SocketProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def append_request(ids: list[str]) -> streams_pb2.AppendEventsRequest:
    return streams_pb2.AppendEventsRequest(
        stream_id="outage", events=[types_pb2.NewEvent(event_id=i, event_type="tick", data=b"{}") for i in ids]
    )


async def test_database_outage_is_unavailable_then_recovers(migrated_database: str) -> None:
    proxy = SocketProxy(migrated_database)
    await proxy.restore()
    acknowledged: list[str] = []
    try:
        async with GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", proxy.dsn) as node:
            async with grpc.aio.insecure_channel(node.address) as channel:
                api = stubs_for(node.address, channel)
                for _ in range(20):
                    ids = [str(uuid.uuid4())]
                    await api.streams.AppendEvents(append_request(ids), timeout=10)
                    acknowledged.extend(ids)

                await proxy.cut()
                codes = []
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as e:
                        # A generous deadline: the node must answer by itself, well before it.
                        await api.streams.AppendEvents(append_request([str(uuid.uuid4())]), timeout=60)
                    codes.append(e.value.code())
                assert codes == [grpc.StatusCode.UNAVAILABLE] * 3
                assert "PostgreSQL unavailable" in e.value.details()

                await proxy.restore()
                ids = [str(uuid.uuid4())]
                async with asyncio.timeout(60):
                    while True:  # each attempt is a real call; the node reconnects on its own
                        try:
                            await api.streams.AppendEvents(append_request(ids), timeout=10)
                            break
                        except grpc.aio.AioRpcError as again:
                            assert again.code() == grpc.StatusCode.UNAVAILABLE
                acknowledged.extend(ids)

                stored = []
                async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="outage")):
                    stored.extend(e.event_id for e in batch.events)
    finally:
        await proxy.close()
    assert set(acknowledged) <= set(stored)
    assert len(stored) == len(set(stored))
