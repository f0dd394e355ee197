"""Conditional appends through a gateway in front of three node processes on one PostgreSQL
database, with a node killed (SIGKILL) while they run: no call fails, no conditional append
is applied twice or silently dropped, and the invariant the conditions guard (one seat per
course) holds."""

from __future__ import annotations

import asyncio
import collections
import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from gater.errors import AppendConditionFailedError, decode_status
from tests.gateway.test_gateway_cluster import Cluster, cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

_FIXTURES = (cluster,)

COURSES = 40
STUDENTS = 24


def seat_query(course: int) -> types_pb2.Query:
    return types_pb2.Query(items=[types_pb2.QueryItem(types=["seat_taken"], tags=[f"course:c{course}"])])


async def read_query(api, query: types_pb2.Query) -> tuple[list[types_pb2.EventRecord], int]:
    events, head = [], -1
    async for message in api.streams.ReadEvents(streams_pb2.ReadEventsRequest(query=query)):
        events.extend(message.events)
        head = message.head
    return events, head


async def test_sigkill_under_conditional_appenders_applies_each_once(cluster: Cluster) -> None:
    acknowledged: list[str] = []
    refused: list[int] = []
    failures: list[str] = []
    half_way = asyncio.Event()

    async def student(n: int) -> None:
        for course in range(COURSES):
            query = seat_query((course + n) % COURSES)
            try:
                taken, head = await read_query(cluster.api, query)
                if taken:
                    continue  # decided on what it read: the seat is gone
                event_id = str(uuid.uuid4())
                request = streams_pb2.AppendEventsRequest(
                    stream_id=f"student-{n}",
                    events=[types_pb2.NewEvent(
                        event_id=event_id, event_type="seat_taken", data=b"{}",
                        tags=[f"course:c{(course + n) % COURSES}", f"student:s{n}"],
                    )],
                    condition=types_pb2.AppendCondition(fail_if_events_match=query, after=head),
                )
                await cluster.api.streams.AppendEvents(request, timeout=30)
            except grpc.aio.AioRpcError as e:
                raw = dict(e.trailing_metadata() or ()).get("grpc-status-details-bin")
                if isinstance(decode_status(e.code().name, e.details() or "", raw), AppendConditionFailedError):
                    refused.append(n)
                else:
                    failures.append(f"{e.code().name}: {e.details()}")
                continue
            acknowledged.append(event_id)
            if len(acknowledged) >= 10:
                half_way.set()

    tasks = [asyncio.create_task(student(n)) for n in range(STUDENTS)]
    await half_way.wait()
    await cluster.nodes[0].kill()
    await asyncio.gather(*tasks)
    assert failures == []
    print(f"acknowledged {len(acknowledged)}, refused by their condition {len(refused)}")
    seats, _ = await read_query(cluster.api, types_pb2.Query(items=[types_pb2.QueryItem(types=["seat_taken"])]))
    # One seat per course: the condition held under the race and across the kill.
    per_course = collections.Counter(next(t for t in e.tags if t.startswith("course:")) for e in seats)
    assert len(per_course) == COURSES and set(per_course.values()) == {1}
    # Every acknowledged append is stored once, and nothing stored went unacknowledged.
    stored = collections.Counter(e.event_id for e in seats)
    assert max(stored.values()) == 1
    assert sorted(stored) == sorted(acknowledged)
