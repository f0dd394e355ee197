"""SIGKILL of the node behind a gateway in the middle of an AppendSession: two node processes
share one PostgreSQL store; the client's session stays open, every acknowledged append is in
the log exactly once, appends whose events carry ids are all acknowledged (re-sent to the
other node), and the others are acknowledged or answered UNAVAILABLE, never written twice."""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from exesdb.v1 import cluster_pb2, streams_pb2, types_pb2
from tests.conftest import stubs_for
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

APPENDS = 3_000
WITHOUT_IDS = 7  # every 7th append lets the node assign its event's id


def request(i: int) -> streams_pb2.AppendSessionRequest:
    event = types_pb2.NewEvent(
        event_id="" if i % WITHOUT_IDS == 0 else str(uuid.uuid4()),
        event_type="tick",
        data=json.dumps({"i": i}).encode(),
    )
    return streams_pb2.AppendSessionRequest(
        correlation_id=i, append=streams_pb2.AppendEventsRequest(stream_id=f"crash-{i % 16}", events=[event])
    )


async def test_sigkill_of_the_sessions_node_loses_and_duplicates_nothing(pg_database, gateway_for) -> None:
    nodes = [GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", pg_database) for _ in range(2)]
    await asyncio.gather(*(n.start() for n in nodes))
    try:
        gateway = await gateway_for([n.address for n in nodes])
        answers: dict[int, streams_pb2.AppendSessionResponse] = {}
        halfway = asyncio.Event()

        async def requests() -> AsyncIterator[streams_pb2.AppendSessionRequest]:
            for i in range(APPENDS):
                yield request(i)

        async def take() -> None:
            async for answer in gateway.api.streams.AppendSession(requests()):
                assert answer.correlation_id not in answers
                answers[answer.correlation_id] = answer
                if len(answers) == APPENDS // 3:
                    halfway.set()

        reader = asyncio.create_task(take())
        await halfway.wait()
        status = await gateway.api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
        (busy,) = [m.address for m in status.members if m.in_flight > 0]
        victim = next(n for n in nodes if n.address == busy)
        await victim.kill()
        await reader  # the session ends normally: every append answered

        assert sorted(answers) == list(range(APPENDS))
        outcome = collections.Counter()
        for i, answer in answers.items():
            kind = answer.WhichOneof("result")
            if kind == "error":
                assert i % WITHOUT_IDS == 0, (i, answer.error)  # appends with ids are re-sent, never failed
                assert answer.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            outcome[kind, answer.appended.duplicate] += 1

        survivor = next(n for n in nodes if n is not victim)
        async with grpc.aio.insecure_channel(survivor.address) as channel:
            api = stubs_for(survivor.address, channel)
            records = []
            async for batch in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
                records.extend(batch.events)
        assert [r.position for r in records] == list(range(len(records)))  # gap-free
        written = collections.Counter(json.loads(r.data)["i"] for r in records)
        assert max(written.values()) == 1, "an append was written twice"
        acknowledged = {i for i, a in answers.items() if a.WhichOneof("result") == "appended"}
        assert acknowledged <= set(written), "an acknowledged append is missing"
        for i, answer in answers.items():
            if i in acknowledged:
                (record,) = [r for r in records if json.loads(r.data)["i"] == i] if answer.appended.duplicate else [records[answer.appended.position]]
                assert json.loads(record.data)["i"] == i
        print(f"outcomes: {dict(outcome)}; killed {busy}")
    finally:
        await asyncio.gather(*(n.kill() for n in nodes))
