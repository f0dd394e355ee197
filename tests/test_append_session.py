"""AppendSession on a real node (SQLite and PostgreSQL): answers by correlation id, whatever
their outcome; a long session holds bounded memory; a cancelled session leaves every append
whole or absent."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterable

import grpc
import pytest
from google.rpc import error_details_pb2
from hypothesis import given
from hypothesis import strategies as st

from exesdb.v1 import streams_pb2, types_pb2
from gater._wire import correlation_id, varint
from gater.errors import (
    DuplicateEventIdError,
    InvalidArgumentError,
    WrongExpectedVersionError,
    decode_status,
)
from tests.helpers import new_event, read, soak


def session_request(cid: int, stream_id: str, events: list[types_pb2.NewEvent], **expected: int) -> streams_pb2.AppendSessionRequest:
    return streams_pb2.AppendSessionRequest(
        correlation_id=cid, append=streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events, **expected)
    )


async def run_session(api, requests: Iterable[streams_pb2.AppendSessionRequest]) -> dict[int, streams_pb2.AppendSessionResponse]:
    answers = {}
    async for answer in api.streams.AppendSession(iter(requests)):
        assert answer.correlation_id not in answers
        answers[answer.correlation_id] = answer
    return answers


def error_of(answer: streams_pb2.AppendSessionResponse):
    assert answer.WhichOneof("result") == "error", answer
    status = answer.error
    code = next(c.name for c in grpc.StatusCode if c.value[0] == status.code)
    return decode_status(code, status.message, status.SerializeToString())


async def test_mixed_results_are_answered_by_correlation_id(api):
    await check_mixed_results(api)


async def test_mixed_results_through_a_gateway(gateway):
    await check_mixed_results(gateway.api)


async def check_mixed_results(api):
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="held", events=[new_event()]))
    repeated = [new_event(), new_event()]
    first = await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="again", events=repeated))
    taken = new_event()
    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="owner", events=[taken]))

    answers = await run_session(
        api,
        [
            session_request(11, "fresh", [new_event(), new_event()], expected_state=types_pb2.EXPECTED_STATE_NO_STREAM),
            session_request(12, "held", [new_event()], expected_version=5),
            session_request(13, "again", repeated),
            session_request(14, "$reserved", [new_event()]),
            session_request(15, "other", [taken]),
            session_request(16, "fresh-too", [new_event(event_id="not-a-uuid")]),
            session_request(17, "after-failures", [new_event()]),
        ],
    )

    assert sorted(answers) == [11, 12, 13, 14, 15, 16, 17]
    ok = answers[11].appended
    assert (ok.first_version, ok.version, ok.duplicate) == (0, 1, False)
    wrong = error_of(answers[12])
    assert isinstance(wrong, WrongExpectedVersionError)
    assert (wrong.code, wrong.current_version) == ("FAILED_PRECONDITION", 0)
    repeat = answers[13].appended
    assert repeat.duplicate and (repeat.version, repeat.position) == (first.version, first.position)
    bad = error_of(answers[14])
    assert isinstance(bad, InvalidArgumentError) and bad.field == "stream_id"
    assert any(d.Is(error_details_pb2.BadRequest.DESCRIPTOR) for d in answers[14].error.details)
    assert isinstance(error_of(answers[15]), DuplicateEventIdError)
    assert error_of(answers[16]).field == "events[0].event_id"
    assert answers[17].appended.version == 0
    assert len(await read(api.streams, "other")) == 0


async def test_a_correlation_id_in_flight_cannot_be_used_again(api):
    call = api.streams.AppendSession()
    await call.write(session_request(1, "s", [new_event()]))
    await call.write(session_request(1, "s", [new_event()]))
    await call.done_writing()
    answers = [a async for a in call]
    kinds = sorted(a.WhichOneof("result") for a in answers)
    # The second may arrive after the first was answered (then it is a new append).
    assert kinds in (["appended", "error"], ["appended", "appended"])
    for a in answers:
        if a.WhichOneof("result") == "error":
            assert error_of(a).field == "correlation_id"


async def test_an_undecodable_request_ends_the_session_with_invalid_argument(node):
    async with grpc.aio.insecure_channel(node.address) as channel:
        call = channel.stream_stream("/exesdb.v1.Streams/AppendSession")(iter([b"\xff\xff\xff"]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in call:
                pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.slow  # 10,000 appends take ~45 s under tracemalloc (make soak); make test runs 4,000
@pytest.mark.parametrize("node", ["sqlite"], indirect=True)
async def test_ten_thousand_appends_in_one_session_hold_bounded_memory(api):
    total, streams = soak(10_000, 4_000), 50
    payload = [new_event(data={"n": 0})]

    async def requests() -> AsyncIterator[streams_pb2.AppendSessionRequest]:
        for i in range(total):
            request = session_request(i, f"s-{i % streams}", payload)
            request.append.events[0].event_id = str(uuid.uuid4())
            yield request

    tracemalloc.start()
    try:
        answered = failed = 0
        baseline = None
        async for answer in api.streams.AppendSession(requests()):
            answered += 1
            failed += answer.WhichOneof("result") != "appended"
            if answered == 1_000:
                baseline, _ = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (answered, failed) == (total, 0)
    # 256 appends in flight at most, on the node: ~1 MB over 9,000 appends. Holding each one
    # answered would take several KB an append.
    print(f"traced memory: {baseline:,} bytes after 1,000 appends, peak {peak:,} over the next {total - 1_000:,}")
    assert baseline is not None and peak - baseline < 900 * (total - 1_000), (baseline, peak)
    versions = await api.streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))
    assert versions.version == total - 1


async def test_cancelling_a_session_leaves_no_half_written_append(api):
    appends, per_append = 200, 20
    started = asyncio.Event()
    acknowledged: set[str] = set()

    async def requests() -> AsyncIterator[streams_pb2.AppendSessionRequest]:
        for i in range(appends):
            yield session_request(i, f"whole-{i}", [new_event(data={"i": i, "k": k}) for k in range(per_append)])

    call = api.streams.AppendSession(requests())

    async def take() -> None:
        async for answer in call:
            assert answer.WhichOneof("result") == "appended"
            acknowledged.add(f"whole-{answer.correlation_id}")
            started.set()

    reader = asyncio.create_task(take())
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader

    # Whatever the node had taken commits whole or not at all; the acknowledged ones are there.
    counts = {}
    for i in range(appends):
        counts[f"whole-{i}"] = len(await read(api.streams, f"whole-{i}"))
    assert set(counts.values()) <= {0, per_append}, counts
    assert all(counts[s] == per_append for s in acknowledged)
    # The node goes on serving sessions.
    answers = await run_session(api, [session_request(1, "after", [new_event()])])
    assert answers[1].appended.version == 0


async def test_through_a_gateway_without_nodes_each_append_is_unavailable_and_the_session_ends_ok(gateway_for):
    gateway = await gateway_for(["127.0.0.1:9"])  # nothing listens there
    answers = await run_session(gateway.api, [session_request(i, "s", [new_event()]) for i in range(3)])
    assert sorted(answers) == [0, 1, 2]
    assert {error_of(a).code for a in answers.values()} == {"UNAVAILABLE"}


async def test_an_undecodable_request_through_a_gateway_ends_the_session_with_invalid_argument(gateway):
    call = gateway.api.channel.stream_stream("/exesdb.v1.Streams/AppendSession")(iter([b"\xff\xff\xff"]))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@given(
    cid=st.integers(min_value=0, max_value=2**64 - 1),
    stream_id=st.text(max_size=20),
    events=st.integers(min_value=0, max_value=3),
    answered=st.booleans(),
)
def test_the_correlation_id_is_read_without_parsing_the_rest(cid, stream_id, events, answered):
    if answered:
        message = streams_pb2.AppendSessionResponse(correlation_id=cid)
        message.appended.version = events
    else:
        message = session_request(cid, stream_id, [new_event(event_id="") for _ in range(events)])
    raw = message.SerializeToString()
    assert correlation_id(raw) == cid
    if not answered and cid:
        # The id after the append (any field order is valid protobuf) is found too.
        append = message.append.SerializeToString()
        assert correlation_id(b"\x12" + varint(len(append)) + append + b"\x08" + varint(cid)) == cid
    for garbage in (b"\x12\x05ab", b"\xff\xff\xff", b"\x08"):  # cut short, not protobuf
        with pytest.raises(ValueError):
            correlation_id(garbage)
