"""A burst of 2,000 Subscribe calls at a real node process: each is served (confirmation, then
caught_up) or refused with RESOURCE_EXHAUSTED naming why — none is CANCELLED by the server
without a word.

Why calls were CANCELLED: gRPC core queues calls that arrived but that the server application
has not asked for yet; above `grpc.server.max_pending_requests` (default 1000) it cancels new
ones at random (up to all of them at the hard limit, default 3000) before our handler ever
sees them, so nothing can be logged or answered. grpcio's asyncio server asks for calls one by
one on the event loop, so a burst builds that queue. Raising both channel arguments in
`gater._grpc.server_options` lets the application see every call and refuse with a reason
(`Hub.max_subscriptions`)."""

from __future__ import annotations

import asyncio
import collections
import contextlib

import grpc
import pytest

from exesdb.v1 import subscriptions_pb2 as pb
from exesdb.v1 import subscriptions_pb2_grpc as pb_grpc
from tests.procs import GaterProcess

pytestmark = pytest.mark.slow

BURST = 2000


@pytest.mark.timeout(180)
async def test_a_burst_of_subscribes_is_served_or_refused_with_a_reason(tmp_path) -> None:
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        # Four connections: a node takes at most 1,000 streams per connection
        # (`max_concurrent_streams`) and a client queues the rest on its side.
        async with contextlib.AsyncExitStack() as stack:
            channels = [
                await stack.enter_async_context(
                    grpc.aio.insecure_channel(node.address, options=[("grpc.use_local_subchannel_pool", 1)])
                )
                for _ in range(4)
            ]
            stubs = [pb_grpc.SubscriptionsStub(channel) for channel in channels]
            outcomes: collections.Counter[str] = collections.Counter()
            refusals: list[str] = []

            async def one(stub: pb_grpc.SubscriptionsStub) -> grpc.aio.UnaryStreamCall:
                call = stub.Subscribe(pb.SubscribeRequest(selector="$all"))
                try:
                    async for message in call:
                        if message.WhichOneof("message") == "caught_up":
                            outcomes["served"] += 1
                            break
                except grpc.aio.AioRpcError as e:
                    outcomes[e.code().name] += 1
                    if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        refusals.append(e.details())
                return call

            calls = await asyncio.gather(*(one(stubs[i % 4]) for i in range(BURST)))
            for call in calls:
                call.cancel()
    assert set(outcomes) <= {"served", "RESOURCE_EXHAUSTED"}, outcomes
    assert sum(outcomes.values()) == BURST
    assert all(refusals), "a refusal says why"
