"""A node killed with SIGKILL mid-subscription: after restart the persistent subscription
resumes from its durable checkpoint; nothing after the checkpoint is skipped, the checkpoint
never passed an event that was not acked, no event whose ack was answered comes back, and
the events that were out when the node died come back with retry_count >= 1."""

from __future__ import annotations

import uuid

import grpc
import pytest

from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from exesdb.v1 import subscriptions_pb2_grpc as pb_grpc
from tests.procs import GaterProcess

pytestmark = pytest.mark.slow

TOTAL = 300


async def test_persistent_subscription_survives_sigkill(tmp_path):
    data = str(tmp_path / "data")
    acked: set[int] = set()
    delivered: set[int] = set()
    node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    async with node, grpc.aio.insecure_channel(node.address) as channel:
        streams, subs = streams_pb2_grpc.StreamsStub(channel), pb_grpc.SubscriptionsStub(channel)
        await subs.SaveSubscription(pb.SaveSubscriptionRequest(name="billing", selector="$all"))
        events = [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="t", data=b"{}") for _ in range(TOTAL)]
        await streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="invoices", events=events))
        call = subs.Subscribe(pb.SubscribeRequest(subscription_name="billing"))
        # Ack every event but one (position 40) until 150 acks went through, then kill.
        async for message in call:
            if message.WhichOneof("message") != "events":
                continue
            delivered.update(e.position for e in message.events.events)
            positions = [e.position for e in message.events.events if e.position != 40]
            await subs.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=positions))
            acked.update(positions)
            if len(acked) >= 150:
                break
        await node.kill()

    restarted = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data)
    async with restarted, grpc.aio.insecure_channel(restarted.address) as channel:
        subs = pb_grpc.SubscriptionsStub(channel)
        (info,) = (await subs.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
        # The checkpoint is durable and never passes the un-acked event at 40.
        assert info.checkpoint == 39
        redelivered = []
        retry_counts = {}
        call = subs.Subscribe(pb.SubscribeRequest(subscription_name="billing", max_batch=1000))
        async for message in call:
            if message.WhichOneof("message") == "events":
                redelivered.extend(e.position for e in message.events.events)
                retry_counts.update((e.position, e.retry_count) for e in message.events.events)
                await subs.AckEvent(
                    pb.AckEventRequest(subscription_name="billing", positions=[e.position for e in message.events.events])
                )
            if set(range(TOTAL)) <= acked | set(redelivered):
                break
        call.cancel()
        assert redelivered[0] == 40  # resumed right after the checkpoint: nothing skipped
        assert set(range(40, TOTAL)) - acked <= set(redelivered)
        assert not set(redelivered) & set(range(40))  # what the checkpoint covers stays done
        assert not set(redelivered) & acked  # an ack answered OK stays done
        assert len(redelivered) == len(set(redelivered))
        # Out when the node died (40 at least): delivered before, so counted.
        assert 40 in delivered - acked
        assert all(retry_counts[p] >= 1 for p in delivered - acked)
        # Never seen by this client: maybe sent when the node died (then counted once).
        assert all(retry_counts[p] <= 1 for p in set(redelivered) - delivered)
