"""gater.client against a real node: every method, each typed exception, failover."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from exesdb.v1 import types_pb2
from gater import client as gc
from gater.client import (
    ALL,
    ANY,
    BACKWARD,
    NO_STREAM,
    NOW,
    STREAM_EXISTS,
    Client,
    NackAction,
    NewEvent,
    SubscriptionType,
    SyncClient,
    TLSConfig,
    error_from_status,
    uuid7,
)
from gater.config import NodeConfig
from gater.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    DuplicateEventIdError,
    GaterError,
    InternalError,
    InvalidArgumentError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    SnapshotNotFoundError,
    StoreAlreadyExistsError,
    StoreNotFoundError,
    SubscriptionNotFoundError,
    UnauthenticatedError,
    UnavailableError,
    WrongExpectedVersionError,
    encode_status,
)
from gater.node import NodeServer
from tests.conftest import small_limits

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(node: NodeServer) -> AsyncIterator[Client]:
    async with await Client.connect(node.address) as c:
        yield c


def dead_address() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def readings(n: int, start: int = 0) -> list[dict]:
    return [{"event_type": "temperature_measured:v1", "data": {"celsius": 20 + i}} for i in range(start, start + n)]


@dataclasses.dataclass
class FanActivated:
    event_type: ClassVar[str] = "fan_activated:v1"
    intensity: int
    operator: str


# -- streams -------------------------------------------------------------------------------


async def test_append_and_read_back_dicts_newevents_and_dataclasses(client: Client) -> None:
    result = await client.append_events(
        "",
        "greenhouse-1",
        [
            {"event_type": "initialized:v1", "data": {"celsius": 18}, "metadata": {"correlation_id": "c-1"}},
            NewEvent("humidity_measured:v1", {"percent": 55.5}),
            FanActivated(intensity=40, operator="John"),
            NewEvent("raw:v1", b"\x00\x01", content_type="application/x-thing"),
        ],
        expected_version=NO_STREAM,
    )
    assert (result.first_version, result.version, result.duplicate) == (0, 3, False)
    events = await client.get_events("", "greenhouse-1")
    assert [e.event_type for e in events] == ["initialized:v1", "humidity_measured:v1", "fan_activated:v1", "raw:v1"]
    assert events[0].data == {"celsius": 18}
    assert events[0].metadata == {"correlation_id": "c-1"}
    assert events[2].data == {"intensity": 40, "operator": "John"}
    assert events[3].data == b"\x00\x01" and events[3].content_type == "application/x-thing"
    assert [e.version for e in events] == [0, 1, 2, 3]
    # Client-assigned ids are UUIDv7: sortable by creation time.
    ids = [uuid.UUID(e.event_id) for e in events]
    assert all(i.version == 7 for i in ids) and ids == sorted(ids)
    assert events[0].to_dict()["data"] == {"celsius": 18}


async def test_read_directions_start_count_and_all(client: Client) -> None:
    await client.append_events("", "a", readings(10))
    await client.append_events("", "b", readings(5))
    assert [e.version for e in await client.get_events("", "a", 3, 4)] == [3, 4, 5, 6]
    assert [e.version for e in await client.get_events("", "a", None, 3, BACKWARD)] == [9, 8, 7]
    assert [e.version for e in await client.get_events("", "a", 2, 0, BACKWARD)] == [2, 1, 0]
    everything = await client.get_events("", ALL)
    assert [e.position for e in everything] == list(range(15))
    assert await client.get_events("", "missing") == []
    # read_events yields the server's batches (read_batch is 7 in tests).
    batches = [len(b) async for b in client.read_events("", ALL)]
    assert batches == [7, 7, 1]


async def test_expected_versions_and_wrong_expected_version(client: Client) -> None:
    await client.append_events("", "s", readings(2), expected_version=NO_STREAM)
    await client.append_events("", "s", readings(1), expected_version=1)
    await client.append_events("", "s", readings(1), expected_version=STREAM_EXISTS)
    await client.append_events("", "s", readings(1), expected_version=ANY)
    with pytest.raises(WrongExpectedVersionError) as caught:
        await client.append_events("", "s", readings(1), expected_version=1)
    assert caught.value.current_version == 4
    assert caught.value.stream_id == "s" and caught.value.expected == "1"
    assert caught.value.code == "FAILED_PRECONDITION"
    with pytest.raises(WrongExpectedVersionError) as caught:
        await client.append_events("", "other", readings(1), expected_version=STREAM_EXISTS)
    assert caught.value.current_version == -1
    with pytest.raises(InvalidArgumentError, match="expected_version"):
        await client.append_events("", "s", readings(1), expected_version="sometimes")


async def test_appending_the_same_ids_again_is_a_duplicate(client: Client) -> None:
    events = [NewEvent("light_measured:v1", {"lux": 1000}, event_id=str(uuid7())) for _ in range(3)]
    first = await client.append_events("", "s", events)
    again = await client.append_events("", "s", events)
    assert again.duplicate and (again.version, again.position) == (first.version, first.position)
    with pytest.raises(DuplicateEventIdError) as caught:
        await client.append_events("", "elsewhere", events[:1])
    assert caught.value.event_id == events[0].event_id


async def test_versions_and_stream_listing(client: Client) -> None:
    assert await client.get_version("", "s1") == -1
    for name in ("s3", "s1", "s2"):
        await client.append_events("", name, readings(2))
    assert await client.get_version("", "s1") == 1
    assert await client.get_version("", ALL) == 5
    streams = await client.get_streams("", page_size=2)  # three pages' worth, fetched whole
    assert [(s.stream_id, s.version) for s in streams] == [("s1", 1), ("s2", 1), ("s3", 1)]


async def test_bad_input_and_limits_are_typed(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await client.append_events("", "$reserved", readings(1))
    assert caught.value.field == "stream_id"
    with pytest.raises(LimitExceededError) as limit:
        await client.append_events("", "s", readings(101))  # tests run with at most 100
    assert limit.value.code == "RESOURCE_EXHAUSTED" and limit.value.field == "events"
    with pytest.raises(InvalidArgumentError, match="event_type"):
        await client.append_events("", "s", [{"data": {}}])
    with pytest.raises(InvalidArgumentError, match="unknown keys"):
        await client.append_events("", "s", [{"event_type": "x:v1", "payload": {}}])
    with pytest.raises(InvalidArgumentError, match="JSON"):
        await client.append_events("", "s", [NewEvent("x:v1", {"when": object()})])
    with pytest.raises(InvalidArgumentError, match="direction"):
        await client.get_events("", "s", direction="sideways")


async def test_unknown_store_is_store_not_found(client: Client) -> None:
    with pytest.raises(StoreNotFoundError) as caught:
        await client.append_events("nope", "s", readings(1))
    assert caught.value.store_id == "nope" and "nope" in str(caught.value)
    with pytest.raises(StoreNotFoundError):
        await client.get_events("nope", "s")
    with pytest.raises(StoreNotFoundError):
        await client.get_store_status("nope")
    assert isinstance(caught.value, NotFoundError)


async def test_deadline_exceeded(client: Client) -> None:
    # A live subscription on a quiet stream outlives any deadline: a deterministic timeout.
    async with client.subscribe("", stream="quiet", start_from=NOW, timeout_s=0.3) as sub:
        with pytest.raises(DeadlineExceededError):
            await anext(sub)


# -- snapshots ----------------------------------------------------------------------------


async def test_snapshots_record_read_list_delete(client: Client) -> None:
    for version in (0, 3):
        recorded = await client.record_snapshot(
            "", "gh-1", "greenhouse-1", version, {"celsius": 20 + version}, source_type="Greenhouse", metadata={"by": "t"}
        )
        assert recorded.source_version == version and recorded.created_at is not None
    await client.record_snapshot("", "gh-2", "greenhouse-2", 1, {"celsius": 30})
    latest = await client.read_snapshot("", "gh-1", "greenhouse-1")
    assert (latest.source_version, latest.data, latest.source_type, latest.metadata) == (3, {"celsius": 23}, "Greenhouse", {"by": "t"})
    assert (await client.read_snapshot("", "gh-1", "greenhouse-1", 0)).data == {"celsius": 20}
    listed = await client.list_snapshots("", source_uuid="gh-1")
    assert [(s.source_uuid, s.source_version) for s in listed] == [("gh-1", 0), ("gh-1", 3)]
    assert len(await client.list_snapshots("")) == 3
    assert await client.delete_snapshot("", "gh-1", "greenhouse-1", 0) == 1
    assert await client.delete_snapshot("", "gh-1", "greenhouse-1") == 1
    with pytest.raises(SnapshotNotFoundError):
        await client.read_snapshot("", "gh-1", "greenhouse-1")
    with pytest.raises(StoreNotFoundError):
        await client.read_snapshot("nope", "gh-1", "greenhouse-1")


# -- stores and cluster -------------------------------------------------------------------


async def test_stores_lifecycle(client: Client, node: NodeServer) -> None:
    created = await client.create_store("reg_gh")
    assert created.store_id == "reg_gh" and created.created_at is not None
    with pytest.raises(StoreAlreadyExistsError) as caught:
        await client.create_store("reg_gh")
    assert caught.value.store_id == "reg_gh" and isinstance(caught.value, AlreadyExistsError)
    assert {"default", "reg_gh"} <= {s.store_id for s in await client.list_stores()}
    await client.append_events("reg_gh", "gh", readings(3))
    status = await client.get_store_status("reg_gh")
    assert (status.stream_count, status.event_count, status.last_position) == (1, 3, 2)
    config = await client.get_store_config("reg_gh")
    assert (config.backend, config.max_events_per_append) == (node.backend.name, 100)
    await client.remove_store("reg_gh")
    assert "reg_gh" not in {s.store_id for s in await client.list_stores()}
    with pytest.raises(StoreNotFoundError):
        await client.remove_store("reg_gh")


async def test_cluster_status_and_members(client: Client, node: NodeServer) -> None:
    status = await client.cluster_status()
    assert status.role == "node" and status.backend == node.backend.name and status.node_id
    assert [m.node_id for m in status.members] == [status.node_id]
    members = client.watch_members()
    change, member = await anext(members)
    assert change == "present" and member.node_id == status.node_id
    await members.aclose()


# -- subscriptions ------------------------------------------------------------------------


async def take(subscription: gc.Subscription, n: int) -> list[gc.Event]:
    out = []
    async with asyncio.timeout(20):
        async for event in subscription:
            out.append(event)
            if len(out) == n:
                return out
    return out


async def test_transient_subscriptions_catch_up_then_go_live(client: Client) -> None:
    await client.append_events("", "gh-1", readings(3))
    async with client.subscribe("", stream=ALL) as everything, client.subscribe(
        "", payload={"operator": "John"}
    ) as johns, client.subscribe("", event_type="fan_activated:v1", start_from=NOW) as fans:
        assert everything.name == "transient"
        assert [e.position for e in await take(everything, 3)] == [0, 1, 2]
        # Catch-up ends after the stored events: the client learns it by reading on (the next
        # event is awaited meanwhile), and what is appended afterwards arrives live.
        next_event = asyncio.ensure_future(anext(aiter(everything)))
        async with asyncio.timeout(20):
            await everything.caught_up.wait()
        assert everything.position == 2 and not next_event.done()
        await client.append_events(
            "", "gh-2", [FanActivated(10, "Paul"), FanActivated(20, "John"), {"event_type": "x:v1", "data": {"operator": "John"}}]
        )
        assert [(await next_event).position] + [e.position for e in await take(everything, 2)] == [3, 4, 5]
        assert [e.data["intensity"] if e.event_type == "fan_activated:v1" else e.event_type for e in await take(johns, 2)] == [20, "x:v1"]
        assert [e.data["operator"] for e in await take(fans, 2)] == ["Paul", "John"]


async def test_payload_wildcard_and_pattern(client: Client) -> None:
    await client.append_events("", "gh", [FanActivated(1, "Jim"), {"event_type": "x:v1", "data": {"other": 1}}])
    async with client.subscribe("", payload={"intensity": "_"}) as sub:
        assert [e.event_type for e in await take(sub, 1)] == ["fan_activated:v1"]
    async with client.subscribe("", pattern={"event_type": "x:v1"}) as sub:
        assert [e.data for e in await take(sub, 1)] == [{"other": 1}]


async def test_persistent_subscription_save_consume_ack_nack_replay_remove(client: Client) -> None:
    saved = await client.save_subscription("", "workers", stream="gh", max_in_flight=50)
    assert saved.created is True and saved.type == SubscriptionType.BY_STREAM and saved.selector == "gh"
    assert (await client.save_subscription("", "workers", stream="gh", max_in_flight=50)).created is False
    await client.append_events("", "gh", readings(3))
    async with client.subscribe("", name="workers") as sub:
        assert sub.persistent and sub.consumer_id
        first = await take(sub, 3)
        assert [e.retry_count for e in first] == [0, 0, 0]
        await sub.ack(first[0])
        await sub.nack([first[1]], NackAction.RETRY)
        (again,) = await take(sub, 1)
        assert (again.position, again.retry_count) == (first[1].position, 1)
        await sub.ack([again, first[2].position])
        (info,) = await client.get_subscriptions("")
        assert (info.name, info.checkpoint, info.in_flight, info.consumers) == ("workers", 2, 0, 1)
        await client.append_events("", "gh", readings(1))
        (fourth,) = await take(sub, 1)
        await client.nack("", "workers", [fourth.position], NackAction.PARK, reason="bad reading")
        assert (await client.get_subscriptions(""))[0].parked == 1
        assert await client.replay_parked("", "workers") == 1
        (replayed,) = await take(sub, 1)
        assert replayed.position == fourth.position
        await client.ack("", "workers", [replayed.position])
    await client.remove_subscription("", "workers")
    assert await client.get_subscriptions("") == []


async def test_subscription_errors_are_typed(client: Client) -> None:
    with pytest.raises(SubscriptionNotFoundError) as caught:
        async with client.subscribe("", name="ghost"):
            pass
    assert "ghost" in str(caught.value)
    with pytest.raises(SubscriptionNotFoundError):
        await client.remove_subscription("", "ghost")
    with pytest.raises(StoreNotFoundError):
        async with client.subscribe("nope", stream=ALL):
            pass
    with pytest.raises(InvalidArgumentError, match="one of"):
        client.subscribe("", stream="a", event_type="b")
    with pytest.raises(InvalidArgumentError, match="start_from"):
        client.subscribe("", start_from="yesterday")
    with pytest.raises(InvalidArgumentError) as bad:
        await client.save_subscription("", "transient", stream="gh")
    assert bad.value.field == "name"


# -- connecting -------------------------------------------------------------------------------


async def test_connect_to_nothing_is_unavailable_and_fast() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UnavailableError, match="cannot connect"):
        await Client.connect(dead_address(), connect_timeout_s=10)
    assert loop.time() - started < 5  # a refused connection does not wait out the timeout


async def test_connect_skips_dead_targets(node: NodeServer) -> None:
    async with await Client.connect(f"{dead_address()}, {node.address}") as c:
        assert c.target == node.address
        assert await c.get_version("", "s") == -1


async def test_calls_fail_over_to_the_next_target(tmp_path: Path) -> None:
    def config(name: str) -> NodeConfig:
        return NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / name, limits=small_limits(), grace_s=0.1)

    async with NodeServer(config("a")) as a, NodeServer(config("b")) as b:
        async with await Client.connect([a.address, b.address]) as c:
            assert c.target == a.address
            await c.append_events("", "s", readings(1))
            await a.stop()
            result = await c.append_events("", "s", readings(1))  # lands on b
            assert c.target == b.address and result.version == 0


async def test_a_connection_string_names_several_targets_and_options(node: NodeServer) -> None:
    async with await Client.connect(f"gater://{dead_address()},{node.address}?tls=false&timeout_s=3") as c:
        assert c.target == node.address and c.timeout_s == 3
        assert await c.get_version("", "s") == -1
    async with await Client.connect(f"gater://{node.address}") as c:  # plaintext unless tls=true
        assert await c.get_version("", "s") == -1
    with pytest.raises(UnavailableError):  # TLS asked of a plaintext server
        await Client.connect(f"gater://{node.address}?tls=true&connect_timeout_s=3")


@pytest.mark.parametrize(
    "target",
    ["esdb://127.0.0.1:50051?tls=false", "esdb+discover://node:2113", "kurrentdb://127.0.0.1:2113",
     "kurrentdb+discover://a:2113,b:2113", "http://127.0.0.1:50051", "https://example.com"],
)  # fmt: skip
async def test_other_schemes_are_refused_saying_what_is_supported(target: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await Client.connect(target)
    scheme = target.split("://")[0]
    assert caught.value.field == "target" and f"{scheme}://" in caught.value.description
    assert "gater://host:port" in caught.value.description


@pytest.mark.parametrize(
    ("target", "named"),
    [("gater://", "host"), ("gater://h:1?colour=blue", "colour"), ("gater://h:1?tls=maybe", "tls"),
     ("gater://h:1?timeout_s=soon", "timeout_s"), ("gater://h:port", "h:port"), ("gater://h:1/path", "/path")],
)  # fmt: skip
async def test_bad_connection_strings_say_what_is_wrong(target: str, named: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        await Client.connect(target)
    assert caught.value.field == "target" and named in caught.value.description


async def test_tls_to_a_plaintext_server_is_unavailable(node: NodeServer) -> None:
    with pytest.raises(UnavailableError):
        await Client.connect(node.address, tls=TLSConfig(), connect_timeout_s=3)


async def test_cluster_secret_missing_is_unauthenticated(tmp_path: Path) -> None:
    config = NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "d", cluster_secret="s3cret", grace_s=0.1)
    async with NodeServer(config) as n:
        async with await Client.connect(n.address) as c:
            with pytest.raises(UnauthenticatedError):
                await c.get_version("", "s")
        async with await Client.connect(n.address, metadata=[("x-gater-secret", "s3cret")]) as c:
            assert await c.get_version("", "s") == -1


# -- the synchronous facade ----------------------------------------------------------------------


async def test_sync_client(node: NodeServer) -> None:
    def work() -> tuple[int, list[str], int]:
        with SyncClient.connect(node.address) as c:
            c.append_events("", "sync", readings(2), expected_version=NO_STREAM)
            try:
                c.append_events("", "sync", readings(1), expected_version=NO_STREAM)
            except WrongExpectedVersionError as e:
                current = e.current_version
            with c.subscribe("", stream="sync") as sub:
                seen = [next(sub).event_type, next(sub).event_type]
            return current, seen, c.get_version("", "sync")

    current, seen, version = await asyncio.to_thread(work)
    assert current == 1 and seen == ["temperature_measured:v1"] * 2 and version == 1


# -- status mapping, for the codes a node does not produce on demand -----------------------------


def rpc_error(code: grpc.StatusCode, message: str, *details: object) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if details:
        packed = []
        for d in details:
            a = any_pb2.Any()
            a.Pack(d)
            packed.append(a)
        trailing.add("grpc-status-details-bin", status_pb2.Status(code=code.value[0], details=packed).SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


def _status_of(error: GaterError) -> tuple[object, ...]:
    """The typed details our servers attach to `error`, unpacked for rpc_error()."""
    _, _, raw = encode_status(error)
    out = []
    for packed in status_pb2.Status.FromString(raw).details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.ResourceInfo):
            if packed.Is(cls.DESCRIPTOR):
                message = cls()
                packed.Unpack(message)
                out.append(message)
    return tuple(out)


@pytest.mark.parametrize(
    ("code", "message", "details", "expected"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, "no", (), PermissionDeniedError),
        (grpc.StatusCode.UNAVAILABLE, "no workers", (), UnavailableError),
        (
            grpc.StatusCode.NOT_FOUND,
            "no snapshot for source 'a'",
            _status_of(SnapshotNotFoundError("a", "s", None)),
            SnapshotNotFoundError,
        ),
        (grpc.StatusCode.NOT_FOUND, "something else", (), NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, "it exists", (), AlreadyExistsError),
        (grpc.StatusCode.INTERNAL, "internal error", (), InternalError),
    ],
)
def test_status_mapping(code: grpc.StatusCode, message: str, details: tuple[object, ...], expected: type) -> None:
    error = error_from_status(rpc_error(code, message, *details))
    assert type(error) is expected and error.message == message and isinstance(error, GaterError)


def test_status_mapping_prefers_typed_details() -> None:
    wev = types_pb2.WrongExpectedVersion(stream_id="s", expected="no_stream", current_version=7)
    error = error_from_status(rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "whatever", wev))
    assert isinstance(error, WrongExpectedVersionError) and error.current_version == 7
    generic = error_from_status(rpc_error(grpc.StatusCode.UNIMPLEMENTED, "not here"))
    assert isinstance(generic, GaterError) and generic.code == "UNIMPLEMENTED"


def test_uuid7_is_ordered_within_a_millisecond() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == 5000
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
