"""kill -9 of a node during concurrent appends: after restart every acknowledged event is there
exactly once, and positions are gap-free."""

from __future__ import annotations

import asyncio
import collections
import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from tests.procs import GaterProcess

pytestmark = pytest.mark.slow


async def test_sigkill_during_concurrent_appends_loses_no_acknowledged_event(tmp_path):
    data = str(tmp_path / "data")
    node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    await node.start()
    acknowledged: list[str] = []
    enough = asyncio.Event()

    async def appender(n: int, stub: streams_pb2_grpc.StreamsStub) -> None:
        while True:
            ids = [str(uuid.uuid4()) for _ in range(1 + n % 3)]
            request = streams_pb2.AppendEventsRequest(
                stream_id=f"crash-{n % 5}",
                events=[types_pb2.NewEvent(event_id=i, event_type="tick", data=b"{}") for i in ids],
            )
            try:
                await stub.AppendEvents(request, timeout=10)
            except grpc.aio.AioRpcError:
                return  # the node is gone
            acknowledged.extend(ids)
            if len(acknowledged) >= 600:
                enough.set()

    async with grpc.aio.insecure_channel(node.address) as channel:
        stub = streams_pb2_grpc.StreamsStub(channel)
        tasks = [asyncio.create_task(appender(n, stub)) for n in range(16)]
        await asyncio.wait_for(enough.wait(), 60)
        await node.kill()  # SIGKILL while the appenders are still going
        await asyncio.gather(*tasks)

    restarted = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    async with restarted:
        async with grpc.aio.insecure_channel(restarted.address) as channel:
            stub = streams_pb2_grpc.StreamsStub(channel)
            records = []
            async for batch in stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
                records.extend(batch.events)
    ids = [r.event_id for r in records]
    counts = collections.Counter(ids)
    assert [r.position for r in records] == list(range(len(records)))
    assert max(counts.values()) == 1
    missing = set(acknowledged) - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost"
    by_stream = collections.defaultdict(list)
    for r in records:
        by_stream[r.stream_id].append(r.version)
    assert all(versions == list(range(len(versions))) for versions in by_stream.values())
    assert len(acknowledged) >= 600
