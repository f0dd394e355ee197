"""Persistent subscriptions over real gRPC: ack, nack (retry, park, skip), timeouts, parking
after max retries, replay, competing consumers, management."""

from __future__ import annotations

import grpc
import pytest

from exesdb.v1 import streams_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from tests.helpers import Collector, new_event

RETRY, PARK, SKIP = 0, 1, 2


async def save(api, name="workers", selector="$all", **settings):
    return await api.subscriptions.SaveSubscription(
        pb.SaveSubscriptionRequest(name=name, type=0, selector=selector, settings=pb.SubscriptionSettings(**settings))
    )


def consume(api, name="workers", **kw):
    return Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name=name, **kw)))


async def append(api, n, stream_id="jobs"):
    await api.streams.AppendEvents(
        streams_pb2.AppendEventsRequest(stream_id=stream_id, events=[new_event(data={"i": i}) for i in range(n)])
    )


async def info(api, name="workers"):
    (found,) = [s for s in (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions if s.name == name]
    return found


async def ack(api, *positions, name="workers"):
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name=name, positions=positions))


async def nack(api, action, *positions, name="workers"):
    await api.subscriptions.NackEvent(pb.NackEventRequest(subscription_name=name, positions=positions, action=action))


async def test_save_list_update_remove(api):
    first = await save(api, max_in_flight=5)
    assert first.created and first.subscription.checkpoint == -1
    again = await save(api, max_in_flight=7)
    assert not again.created and again.subscription.settings.max_in_flight == 7
    await append(api, 3)
    listed = await info(api)
    assert (listed.checkpoint, listed.lag, listed.consumers) == (-1, 3, 0)
    await api.subscriptions.RemoveSubscription(pb.RemoveSubscriptionRequest(name="workers"))
    assert (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions == []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await api.subscriptions.RemoveSubscription(pb.RemoveSubscriptionRequest(name="workers"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


async def test_acks_move_the_checkpoint_but_never_past_an_unacked_event(api):
    await save(api)
    await append(api, 5)
    sub = consume(api)
    events = await sub.count(5)
    assert [e.retry_count for e in events] == [0] * 5
    # An ack is applied before AckEvent answers, so the state can be read right after it.
    await ack(api, 0, 1, 3, 4)
    assert (await info(api)).checkpoint == 1
    await ack(api, 2)
    assert (await info(api)).checkpoint == 4
    await ack(api, 2)  # repeated ack: harmless
    assert (await info(api)).checkpoint == 4
    await sub.close()


async def test_nack_retry_park_skip_and_replay(api):
    await save(api)
    await append(api, 3)
    sub = consume(api)
    await sub.count(3)
    await nack(api, RETRY, 0)
    await sub.count(4)
    assert (sub.events[3].position, sub.events[3].retry_count) == (0, 1)
    await nack(api, PARK, 1)
    await nack(api, SKIP, 2)
    await ack(api, 0)
    listed = await info(api)
    assert (listed.parked, listed.checkpoint, listed.in_flight) == (1, 2, 0)
    replay = await api.subscriptions.ReplayParkedEvents(pb.ReplayParkedEventsRequest(subscription_name="workers"))
    assert replay.replayed == 1
    await sub.count(5)
    assert (sub.events[4].position, sub.events[4].retry_count) == (1, 0)
    await sub.close()


async def test_unacked_events_come_back_and_are_parked_after_max_retries(api):
    await save(api, message_timeout_ms=200, max_retries=2)
    await append(api, 1)
    sub = consume(api, heartbeat_ms=100)
    await sub.count(2, timeout_s=10)  # delivered, timed out, delivered again
    assert [(e.position, e.retry_count) for e in sub.events] == [(0, 0), (0, 1)]
    # Parked after the second timeout: the checkpoint (heartbeats carry it) passes it.
    await sub.wait_for(lambda c: "heartbeat" in c.last and c.last["heartbeat"].position == 0, 10)
    assert (await info(api)).parked == 1
    assert len(sub.events) == 2  # parked: not delivered a third time
    await sub.close()


async def test_two_consumers_share_the_work(api):
    await save(api, max_in_flight=50)
    one, two = consume(api), consume(api)
    await one.wait_for(lambda c: "confirmation" in c.messages)
    await two.wait_for(lambda c: "confirmation" in c.messages)
    await append(api, 40)
    await one.wait_for(lambda c: len(c.events) + len(two.events) >= 40)
    got_one = {e.position for e in one.events}
    got_two = {e.position for e in two.events}
    assert got_one and got_two
    assert got_one.isdisjoint(got_two)
    assert got_one | got_two == set(range(40))
    await one.close()
    await two.close()


async def test_a_consumer_leaving_hands_its_events_to_the_other(api):
    await save(api, max_in_flight=10)
    leaving = consume(api)
    await leaving.wait_for(lambda c: "confirmation" in c.messages)
    await append(api, 4)
    await leaving.count(4)
    await leaving.close()
    staying = consume(api)
    await staying.count(4)
    assert sorted(e.position for e in staying.events) == [0, 1, 2, 3]
    assert all(e.retry_count == 1 for e in staying.events)
    await staying.close()


async def test_subscribe_must_match_the_saved_selector(api):
    await save(api, selector="orders")
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for _ in api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="workers", type=0, selector="other")):
            pass
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for bad, field in [("", "name"), ("transient", "name")]:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await save(api, name=bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details().startswith(field)
