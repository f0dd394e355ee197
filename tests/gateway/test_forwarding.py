"""The gateway's retry rules against real gRPC servers that answer AppendEvents as a test says
(FakeNode): an append without event ids that reached a node is never sent again, whatever its
error message says; one whose events all carry ids is tried on each member once, then the
gateway gives up; a node's own answer is relayed unchanged (code, message, trailers)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from tests.conftest import StartGateway
from tests.gateway.conftest import FakeNode

pytestmark = pytest.mark.timeout(60)

# What a transport failure looks like in grpcio: a gateway that guessed "never sent" from the
# text would send the append again.
CONNECT_TEXT = "failed to connect to all addresses; last error: UNKNOWN: Connection refused"


def append(with_ids: bool) -> streams_pb2.AppendEventsRequest:
    return streams_pb2.AppendEventsRequest(
        stream_id="s",
        events=[
            types_pb2.NewEvent(event_id=str(uuid.uuid4()) if with_ids else "", event_type="t:v1", data=b"{}")
            for _ in range(2)
        ],
    )


async def failing_pair(fake_node: Callable[[], FakeNode], code: grpc.StatusCode, details: str) -> list[FakeNode]:
    nodes = [fake_node(), fake_node()]
    for node in nodes:
        node.append_error = (code, details, (("x-node", node.node_id),))
    return nodes


async def test_an_append_without_ids_that_reached_a_node_is_not_sent_again(
    fake_node: Callable[[], FakeNode], gateway_for: StartGateway
) -> None:
    nodes = await failing_pair(fake_node, grpc.StatusCode.UNAVAILABLE, CONNECT_TEXT)
    gateway = await gateway_for([n.address for n in nodes])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await gateway.api.streams.AppendEvents(append(with_ids=False), timeout=10)
    assert sum(n.appends for n in nodes) == 1
    (hit,) = [n for n in nodes if n.appends]
    # The node's status, as it sent it.
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and e.value.details() == CONNECT_TEXT
    assert ("x-node", hit.node_id) in tuple(e.value.trailing_metadata())


async def test_an_append_with_ids_is_tried_on_each_member_once(
    fake_node: Callable[[], FakeNode], gateway_for: StartGateway
) -> None:
    nodes = await failing_pair(fake_node, grpc.StatusCode.UNAVAILABLE, "node going away")
    gateway = await gateway_for([n.address for n in nodes])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await gateway.api.streams.AppendEvents(append(with_ids=True), timeout=10)
    assert [n.appends for n in nodes] == [1, 1]
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "no healthy node left to try" in e.value.details()


async def test_a_nodes_own_answer_is_relayed_and_not_retried(
    fake_node: Callable[[], FakeNode], gateway_for: StartGateway
) -> None:
    nodes = await failing_pair(fake_node, grpc.StatusCode.FAILED_PRECONDITION, "wrong expected version")
    gateway = await gateway_for([n.address for n in nodes])
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await gateway.api.streams.AppendEvents(append(with_ids=True), timeout=10)
    assert sum(n.appends for n in nodes) == 1
    (hit,) = [n for n in nodes if n.appends]
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and e.value.details() == "wrong expected version"
    assert ("x-node", hit.node_id) in tuple(e.value.trailing_metadata())
    # The node answered: it stays in use.
    nodes[0].append_error = nodes[1].append_error = None
    await gateway.api.streams.AppendEvents(append(with_ids=False), timeout=10)
