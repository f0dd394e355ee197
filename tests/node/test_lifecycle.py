"""The lifecycle of streams over real gRPC, on each backend (the `node` fixture): DeleteStream,
stream metadata, RedactEvent and Scavenge through the Python client; their errors as statuses
with typed details; and every kind of subscription — transient by stream, `$all`, event type,
pattern, payload and DCB query, and persistent — passing over deleted, hidden and scavenged
events (docs/lifecycle.md)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, struct_pb2
from google.rpc import status_pb2

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.client import NO_STREAM, Client, StreamMetadata
from gater.errors import (
    InvalidArgumentError,
    NotFoundError,
    StreamDeletedError,
    StreamNotFoundError,
    WrongExpectedVersionError,
)
from gater.node.server import NodeServer
from tests.helpers import Collector

pytestmark = pytest.mark.timeout(90)

STORE = "default"


@pytest.fixture
async def client(node: NodeServer) -> AsyncIterator[Client]:
    async with await Client.connect(node.address) as client:
        yield client


def event(event_type: str = "t:v1", *tags: str, data: Any = None) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(
        event_id=str(uuid.uuid4()), event_type=event_type, data=json.dumps(data or {"k": 1}).encode(), tags=tags
    )


async def append(api: Any, stream_id: str, *events: types_pb2.NewEvent) -> streams_pb2.AppendEventsResponse:
    return await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=list(events)))


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


# -- the calls ---------------------------------------------------------------------------------


async def test_soft_delete_then_the_stream_comes_back(api: Any, client: Client) -> None:
    await append(api, "a", event(), event(), event())
    assert await client.delete_stream(STORE, "a", 2) == 2
    assert await client.get_version(STORE, "a") == -1
    assert await client.get_events(STORE, "a") == []
    assert [s.stream_id for s in await client.get_streams(STORE)] == []
    assert (await client.get_stream_metadata(STORE, "a")).state == "soft_deleted"
    result = await client.append_events(STORE, "a", [{"event_type": "t:v1", "data": {}}], NO_STREAM)
    assert (result.version, result.position) == (3, 3)
    assert [e.version for e in await client.get_events(STORE, "a")] == [3]
    with pytest.raises(StreamNotFoundError):
        await client.delete_stream(STORE, "never")


async def test_a_tombstone_refuses_writes_with_a_typed_detail(api: Any, client: Client) -> None:
    await append(api, "a", event())
    await client.delete_stream(STORE, "a", tombstone=True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await append(api, "a", event())
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    raw = dict(caught.value.trailing_metadata())["grpc-status-details-bin"]
    packed: list[any_pb2.Any] = list(status_pb2.Status.FromString(raw).details)
    (detail,) = [d for d in packed if d.Is(types_pb2.StreamDeleted.DESCRIPTOR)]
    unpacked = types_pb2.StreamDeleted()
    detail.Unpack(unpacked)
    assert unpacked.stream_id == "a"
    with pytest.raises(StreamDeletedError):
        await client.append_events(STORE, "a", [{"event_type": "t:v1", "data": {}}])
    with pytest.raises(StreamDeletedError):
        await client.set_stream_metadata(STORE, "a", StreamMetadata(max_count=1))
    assert (await client.get_stream_metadata(STORE, "a")).state == "tombstoned"


async def test_metadata_round_trips_with_its_own_version(client: Client) -> None:
    meta = StreamMetadata(max_count=10, max_age_s=3600, truncate_before=2, custom={"owner": "ops", "n": 2, "x": [1, "y"]})
    assert await client.set_stream_metadata(STORE, "s", meta, NO_STREAM) == 0
    read = await client.get_stream_metadata(STORE, "s")
    assert (read.max_count, read.max_age_s, read.truncate_before, read.meta_version, read.state) == (10, 3600, 2, 0, "live")
    assert read.custom == {"owner": "ops", "n": 2, "x": [1, "y"]}
    with pytest.raises(WrongExpectedVersionError) as caught:
        await client.set_stream_metadata(STORE, "s", meta, NO_STREAM)
    assert caught.value.current_version == 0
    assert await client.set_stream_metadata(STORE, "s", StreamMetadata(), 0) == 1
    assert (await client.get_stream_metadata(STORE, "s")).max_count is None


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        (streams_pb2.StreamMetadata(max_count=0), "max_count"),
        (streams_pb2.StreamMetadata(max_age_s=-1), "max_age_s"),
        (streams_pb2.StreamMetadata(truncate_before=-3), "truncate_before"),
    ],
)
async def test_bad_metadata_names_the_field(api: Any, metadata: streams_pb2.StreamMetadata, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.streams.SetStreamMetadata(streams_pb2.SetStreamMetadataRequest(stream_id="s", metadata=metadata))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


async def test_bad_lifecycle_requests_name_the_field(api: Any, client: Client) -> None:
    cases = [
        (api.streams.DeleteStream, streams_pb2.DeleteStreamRequest(stream_id=""), "stream_id"),
        (api.streams.DeleteStream, streams_pb2.DeleteStreamRequest(stream_id="a", expected_version=-7), "expected_version"),
        (api.streams.SetStreamMetadata, streams_pb2.SetStreamMetadataRequest(stream_id="a", expected_meta_version=-2), "expected_meta_version"),
        (api.streams.SetStreamMetadata, streams_pb2.SetStreamMetadataRequest(stream_id="a", expected_state=2), "expected_state"),
        (api.streams.RedactEvent, streams_pb2.RedactEventRequest(stream_id="a", version=-1), "version"),
        (api.streams.GetStreamMetadata, streams_pb2.GetStreamMetadataRequest(stream_id="$all"), "stream_id"),
    ]
    for method, request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (request, caught.value)
        assert field in caught.value.details(), (request, caught.value.details())
    with pytest.raises(InvalidArgumentError):
        await client.delete_stream(STORE, "a", "sometimes")


async def test_redaction_keeps_everything_but_the_bodies(api: Any, client: Client) -> None:
    await append(api, "person-1", event("person_registered:v1", "person:1", data={"name": "Ann", "email": "a@x"}))
    await client.redact_event(STORE, "person-1", 0)
    await client.redact_event(STORE, "person-1", 0)  # harmless again
    (record,) = await client.get_events(STORE, "person-1")
    assert record.data == {"$redacted": True}
    assert (record.event_type, record.version, record.position, list(record.tags)) == (
        "person_registered:v1", 0, 0, ["person:1"]
    )
    with pytest.raises(NotFoundError):
        await client.redact_event(STORE, "person-1", 5)


async def test_scavenge_keeps_positions_and_reports_its_status(api: Any, client: Client) -> None:
    await append(api, "gone", event(), event())  # 0, 1
    await append(api, "kept", event())  # 2
    await append(api, "gone", event())  # 3
    await append(api, "kept", event())  # 4
    await client.delete_stream(STORE, "gone")
    before = await client.get_scavenge_status(STORE)
    assert (before.running, before.removed, before.started_at) == (False, 0, None)
    status = await client.scavenge(STORE)
    assert (status.running, status.removed, status.next_position) == (False, 3, 5)
    assert status.started_at is not None
    assert [e.position for e in await client.get_events(STORE, "$all")] == [2, 4]
    again = await client.scavenge(STORE, wait=False)  # answers at once; the scavenge runs on
    assert again.next_position >= 0


# -- subscriptions -----------------------------------------------------------------------------


async def seed(api: Any) -> None:
    """Positions: gone 0, 2, 5; kept 1, 4; capped 3, 6, 7 (tags on all; type by stream)."""
    await append(api, "gone", event("gone:v1", "k:1", data={"who": "gone"}))  # 0
    await append(api, "kept", event("kept:v1", "k:1", data={"who": "kept"}))  # 1
    await append(api, "gone", event("gone:v1", "k:1", data={"who": "gone"}))  # 2
    await append(api, "capped", event("capped:v1", "k:1", data={"who": "capped"}))  # 3
    await append(api, "kept", event("kept:v1", "k:1", data={"who": "kept"}))  # 4
    await append(api, "gone", event("gone:v1", "k:1", data={"who": "gone"}))  # 5
    await append(api, "capped", event("capped:v1", "k:1", data={"who": "capped"}), event("capped:v1", "k:1", data={"who": "capped"}))  # 6, 7


SUBSCRIPTIONS = [
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_STREAM, selector="$all"), [1, 4, 7], id="all"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_STREAM, selector="gone"), [], id="stream-deleted"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_STREAM, selector="capped"), [7], id="stream-capped"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_EVENT_TYPE, selector="gone:v1"), [], id="type"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_EVENT_PATTERN, pattern={"event_type": "capped:v1"}), [7], id="pattern"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_EVENT_PAYLOAD, pattern={"who": "_"}), [1, 4, 7], id="payload"),
    pytest.param(dict(type=pb.SUBSCRIPTION_TYPE_BY_QUERY, pattern={"items": [{"tags": ["k:1"]}]}), [1, 4, 7], id="query"),
]


def subscribe(api: Any, spec: dict[str, Any], **kw: Any) -> Collector:
    spec = dict(spec)
    pattern = spec.pop("pattern", None)
    request = pb.SubscribeRequest(**spec, **kw)
    if pattern is not None:
        request.pattern.CopyFrom(struct(pattern))
    return Collector(api.subscriptions.Subscribe(request))


async def hide(client: Client) -> None:
    await client.delete_stream(STORE, "gone", tombstone=True)
    await client.set_stream_metadata(STORE, "capped", StreamMetadata(max_count=1))


@pytest.mark.parametrize(("spec", "visible"), SUBSCRIPTIONS)
@pytest.mark.parametrize("scavenged", [False, True], ids=["hidden", "scavenged"])
async def test_every_transient_subscription_passes_over_what_is_gone(
    api: Any, client: Client, spec: dict[str, Any], visible: list[int], scavenged: bool
) -> None:
    await seed(api)
    await hide(client)
    if scavenged:
        await client.scavenge(STORE)
    sub = subscribe(api, spec)
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    assert [e.position for e in sub.events] == visible
    # Live: a new event of a capped stream arrives (it is the visible one now).
    await append(api, "capped", event("capped:v1", "k:1", data={"who": "capped"}))  # 8
    if spec.get("selector") not in ("gone", "gone:v1"):
        await sub.count(len(visible) + 1)
        assert sub.events[-1].position == 8
    await sub.close()


async def test_a_live_subscriber_passes_over_a_hidden_tail(api: Any, client: Client) -> None:
    await append(api, "kept", event())  # 0
    sub = subscribe(api, dict(type=pb.SUBSCRIPTION_TYPE_BY_STREAM, selector="$all"))
    await sub.count(1)
    await sub.wait_for(lambda c: "caught_up" in c.messages)
    await client.set_stream_metadata(STORE, "doomed", StreamMetadata(truncate_before=1000))
    await append(api, "doomed", event(), event())  # 1, 2: hidden from the start
    await append(api, "kept", event())  # 3
    await sub.count(2)
    assert [e.position for e in sub.events] == [0, 3]
    await sub.close()


async def test_a_persistent_subscription_passes_over_what_is_gone(api: Any, client: Client) -> None:
    await seed(api)
    await hide(client)
    await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="w", type=0, selector="$all"))
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="w")))
    await sub.count(3)
    assert [e.position for e in sub.events] == [1, 4, 7]
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="w", positions=[1, 4, 7]))
    (info,) = (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert info.checkpoint == 7
    await sub.close()


async def test_parked_events_of_a_deleted_stream_never_block_the_checkpoint(api: Any, client: Client) -> None:
    await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="w", type=0, selector="$all"))
    await append(api, "doomed", event(), event())  # 0, 1
    await append(api, "kept", event())  # 2
    sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="w")))
    await sub.count(3)
    await api.subscriptions.NackEvent(pb.NackEventRequest(subscription_name="w", positions=[0, 1], action=pb.NACK_ACTION_PARK))
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="w", positions=[2]))
    await client.delete_stream(STORE, "doomed", tombstone=True)
    await client.scavenge(STORE)
    replayed = await api.subscriptions.ReplayParkedEvents(pb.ReplayParkedEventsRequest(subscription_name="w"))
    assert replayed.replayed == 2
    await append(api, "kept", event())  # 3: delivered; the replayed ones are gone, not waited for
    await sub.count(4)
    assert [e.position for e in sub.events] == [0, 1, 2, 3]
    await api.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="w", positions=[3]))
    (info,) = (await api.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert (info.checkpoint, info.parked) == (3, 0)
    await sub.close()
