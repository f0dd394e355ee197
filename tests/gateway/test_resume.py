"""Where a broken stream goes on: the gateway's resume decisions, fed message by message."""

from __future__ import annotations

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.gateway.proxy import ReadResume, SubscribeResume, resume_read


def events(*positions_versions: tuple[int, int]) -> bytes:
    batch = pb.EventBatch(
        events=[types_pb2.EventRecord(stream_id="s", position=p, version=v) for p, v in positions_versions]
    )
    return pb.SubscribeResponse(events=batch).SerializeToString()


def control(**kw) -> bytes:
    return pb.SubscribeResponse(**kw).SerializeToString()


def test_a_global_subscription_goes_on_after_the_last_position_seen() -> None:
    resume = SubscribeResume(pb.SubscribeRequest(selector="$all"))
    assert resume.passes(control(confirmation=pb.SubscriptionConfirmation()))
    assert resume.passes(events((0, 0), (1, 0)))
    assert resume.passes(control(caught_up=pb.CaughtUp(position=1)))
    assert resume.passes(control(checkpoint=pb.Checkpoint(position=40)))
    again = pb.SubscribeRequest.FromString(resume.request())
    assert again.start_from.revision == 41 and again.selector == "$all"
    # The new node's confirmation and caught_up are not passed on; its events are.
    assert not resume.passes(control(confirmation=pb.SubscriptionConfirmation()))
    assert not resume.passes(control(caught_up=pb.CaughtUp(position=41)))
    assert resume.passes(events((41, 3)))


def test_a_stream_subscription_from_now_resumes_by_position_before_any_event() -> None:
    request = pb.SubscribeRequest(type=0, selector="$quiet", start_from=pb.StartFrom(origin=pb.StartFrom.ORIGIN_NOW))
    resume = SubscribeResume(request)
    resume.passes(control(confirmation=pb.SubscriptionConfirmation()))
    resume.passes(control(caught_up=pb.CaughtUp(position=9)))
    again = pb.SubscribeRequest.FromString(resume.request())
    assert again.type == pb.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN
    assert dict(again.pattern) == {"stream_id": "quiet"}
    assert again.start_from.revision == 10


def test_a_persistent_subscription_resumes_by_name() -> None:
    request = pb.SubscribeRequest(subscription_name="billing")
    resume = SubscribeResume(request)
    resume.passes(events((5, 5)))
    assert pb.SubscribeRequest.FromString(resume.request()) == request


def test_a_read_goes_on_after_the_last_batch_and_keeps_its_count() -> None:
    request = streams_pb2.ReadEventsRequest(stream_id="s", count=10).SerializeToString()
    first = streams_pb2.ReadEventsResponse(events=[types_pb2.EventRecord(version=0), types_pb2.EventRecord(version=1)])
    last = streams_pb2.ReadEventsResponse(events=[types_pb2.EventRecord(version=2), types_pb2.EventRecord(version=3)])
    again = streams_pb2.ReadEventsRequest.FromString(
        resume_read(request, first.SerializeToString(), last.SerializeToString())
    )
    assert (again.from_version, again.count) == (4, 6)
    backward = streams_pb2.ReadEventsRequest(stream_id="$all", direction=1).SerializeToString()
    tail = streams_pb2.ReadEventsResponse(events=[types_pb2.EventRecord(position=0)]).SerializeToString()
    assert resume_read(backward, tail, tail) is None  # reached the start: done


def test_a_read_resumes_again_after_each_break_and_ends_when_all_was_delivered() -> None:
    def batch(*versions: int) -> bytes:
        return streams_pb2.ReadEventsResponse(events=[types_pb2.EventRecord(version=v) for v in versions]).SerializeToString()

    original = streams_pb2.ReadEventsRequest(stream_id="s", count=10).SerializeToString()
    resume = ReadResume(original)
    assert resume.request() == original
    assert resume.passes(batch(0, 1)) and resume.passes(batch(2))
    again = streams_pb2.ReadEventsRequest.FromString(resume.request())
    assert (again.from_version, again.count) == (3, 7)
    resume.passes(batch(3, 4))
    again = streams_pb2.ReadEventsRequest.FromString(resume.request())
    assert (again.from_version, again.count) == (5, 5)
    assert streams_pb2.ReadEventsRequest.FromString(resume.request()) == again  # nothing came: same again
    resume.passes(batch(5, 6, 7, 8, 9))
    assert resume.request() is None
