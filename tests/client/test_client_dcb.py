"""The Python client speaks DCB: tags on events, query reads with their head, conditional
appends whose failure is AppendConditionFailedError — on a real node, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gater.client import ALL, BACKWARD, AppendCondition, Client, NewEvent, Query, QueryItem
from gater.errors import AppendConditionFailedError, InvalidArgumentError
from gater.node import NodeServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(node: NodeServer) -> AsyncIterator[Client]:
    async with await Client.connect(node.address) as c:
        yield c


async def test_the_course_subscription_example(client: Client) -> None:
    await client.append_events("", "course-c1", [NewEvent("course_defined", {"capacity": 1}, tags=("course:c1",))])
    seats = Query.of(types=["student_subscribed"], tags=["course:c1"])
    read = await client.read_query("", seats)
    assert (read.events, read.head) == ([], 0)
    subscribe = NewEvent("student_subscribed", {"student": "s1"}, tags=("course:c1", "student:s1"))
    done = await client.append_events("", "student-s1", [subscribe], condition=AppendCondition(seats, read.head))
    assert done.position == 1
    # Another student decided on the same read: the seat went in between.
    late = NewEvent("student_subscribed", {"student": "s2"}, tags=("course:c1", "student:s2"))
    with pytest.raises(AppendConditionFailedError) as caught:
        await client.append_events("", "student-s2", [late], condition=AppendCondition(seats, read.head))
    assert (caught.value.conflicting_position, caught.value.head) == (1, 1)
    again = await client.read_query("", seats)
    assert [(e.position, e.tags) for e in again.events] == [(1, ("course:c1", "student:s1"))]
    assert again.head == 1
    (event,) = await client.get_events("", "student-s1")
    assert event.tags == ("course:c1", "student:s1") and event.to_dict()["tags"] == ["course:c1", "student:s1"]


async def test_query_reads_take_a_start_a_count_and_a_direction(client: Client) -> None:
    await client.append_events("", "s", [NewEvent("t", {}, tags=(f"n:{i % 2}",)) for i in range(6)])
    odd = Query((QueryItem(tags=("n:1",)),))
    assert [e.position for e in (await client.read_query("", odd)).events] == [1, 3, 5]
    assert [e.position for e in (await client.read_query("", odd, start=2, count=1)).events] == [3]
    assert [e.position for e in (await client.read_query("", odd, direction=BACKWARD)).events] == [5, 3, 1]
    assert len((await client.read_query("", Query())).events) == 6
    assert len(await client.get_events("", ALL)) == 6
    with pytest.raises(InvalidArgumentError):
        await client.append_events("", "s", [NewEvent("t", {}, tags=("not a tag",))])


async def test_subscribe_and_save_by_query(client: Client) -> None:
    await client.append_events("", "s", [NewEvent("t", {}, tags=("k:1",)), NewEvent("t", {}, tags=("k:2",))])
    wanted = Query.of(tags=["k:2"])
    async with client.subscribe("", query=wanted) as sub:
        got = []
        async for event in sub:
            got.append(event.position)
            if len(got) == 1:
                await client.append_events("", "s", [NewEvent("t", {}, tags=("k:2", "k:3")), NewEvent("t", {})])
            if len(got) == 2:
                break
    assert got == [1, 2]
    info = await client.save_subscription("", "k2", query=wanted)
    assert info.created
    async with client.subscribe("", name="k2") as persistent:
        seen = []
        async for event in persistent:
            seen.append(event.position)
            await persistent.ack(event)
            if len(seen) == 2:
                break
    assert seen == [1, 2]


async def test_reads_by_stream_prefix_and_since_a_time(client: Client) -> None:
    for stream in ("order-1", "orders", "order-2", "customer-1"):
        await client.append_events("", stream, [NewEvent("placed", {"at": stream}, tags=("k:1",))])
    read = await client.read_query("", None, stream_prefix="order-*")
    assert ([e.stream_id for e in read.events], read.head) == (["order-1", "order-2"], 3)
    read = await client.read_query("", Query.of(tags=["k:1"]), direction=BACKWARD, stream_prefix="ord")
    assert [e.stream_id for e in read.events] == ["order-2", "orders", "order-1"]
    everything = await client.read_query("", None)
    assert [e.position for e in everything.events] == [0, 1, 2, 3]
    second = everything.events[1]
    since = await client.read_query("", None, since=second.created)
    assert [e.position for e in since.events] == [e.position for e in everything.events if e.created_epoch >= second.created_epoch]
    before = await client.read_query("", None, direction=BACKWARD, since=second.created, stream_prefix="order-")
    assert [e.position for e in before.events] == [
        e.position for e in everything.events[::-1] if e.created_epoch <= second.created_epoch and e.stream_id.startswith("order-")
    ]  # orders is not "order-"
    with pytest.raises(InvalidArgumentError) as caught:
        await client.read_query("", None, since=second.created.replace(tzinfo=None))
    assert caught.value.field == "since"
    with pytest.raises(InvalidArgumentError) as caught:
        await client.read_query("", None, stream_prefix="a*b")
    assert caught.value.field == "stream_prefix"


async def test_subscribe_by_stream_prefix(client: Client) -> None:
    for stream in ("order-1", "orders", "order-2"):
        await client.append_events("", stream, [NewEvent("placed", {})])
    async with client.subscribe("", stream="order-*") as sub:
        got = []
        async for event in sub:
            got.append((event.position, event.stream_id))
            if len(got) == 2:
                await client.append_events("", "order-3", [NewEvent("placed", {})])
            if len(got) == 3:
                break
    assert got == [(0, "order-1"), (2, "order-2"), (3, "order-3")]
    await client.save_subscription("", "orders", stream="order-*")
    async with client.subscribe("", name="orders") as persistent:
        seen = []
        async for event in persistent:
            seen.append(event.position)
            await persistent.ack(event)
            if len(seen) == 3:
                break
    assert seen == [0, 2, 3]
