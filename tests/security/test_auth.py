"""Authentication and authorization through real servers: bad tokens are UNAUTHENTICATED, an
ACL matrix (roles × operations × stores/prefixes) holds directly on a node and through a
gateway, subscriptions and listings show only what the caller may read, every administrative
operation tried (refused ones included) is in the audit log, and the gateway's per-principal
rate limit and the node's limits answer RESOURCE_EXHAUSTED naming the limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exesdb.v1 import snapshots_pb2, stores_pb2, streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.config import AuthConfig, GatewayConfig, Limits, NodeConfig
from gater.errors import STATUS_DETAILS_KEY, decode_status
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.node import NodeServer
from gater.security import new_key
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector, new_event

pytestmark = pytest.mark.timeout(90)

POLICY = """
[principals]
"key:admin" = ["admin"]
"key:billing" = ["billing"]
"key:auditor" = ["auditor"]
"jwt:alice" = ["billing"]

[roles.admin]
rules = [{ operations = ["*"] }]

[roles.billing]
rules = [
  { stores = ["default"], streams = ["billing-*"], operations = ["read", "append", "subscribe", "snapshot"] },
  { stores = ["default"], operations = ["subscription_admin"], streams = ["billing-*"] },
]

[roles.auditor]
rules = [{ stores = ["_audit"], operations = ["audit"] }]
"""
SECRET = "hs256-secret-of-the-tests-0123456789abcdef"


@dataclass
class Setup:
    keys: dict[str, str]
    auth: AuthConfig
    policy_file: Path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    keys, lines = {}, []
    for name in ("admin", "billing", "auditor"):
        key, digest = new_key(name)
        keys[name] = key
        lines.append(f'[keys.{name}]\nsha256 = "{digest}"\n')
    (tmp_path / "keys.toml").write_text("\n".join(lines))
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "jwt.key").write_text(SECRET)
    auth = AuthConfig(
        api_keys_file=tmp_path / "keys.toml",
        policy_file=tmp_path / "policy.toml",
        jwt_issuer="https://idp.test",
        jwt_audience="gater",
        jwt_algorithms=("HS256",),
        jwt_key_file=tmp_path / "jwt.key",
    )
    return Setup(keys, auth, tmp_path / "policy.toml")


@contextlib.asynccontextmanager
async def secured_node(tmp_path: Path, setup: Setup, **config: object) -> AsyncIterator[NodeServer]:
    node_config = NodeConfig(
        listen="127.0.0.1:0", data_dir=tmp_path / "data", auth=setup.auth, cluster_secret="peer-secret", grace_s=0.1, **config  # type: ignore[arg-type]
    )
    async with NodeServer(node_config) as node:
        yield node


@contextlib.asynccontextmanager
async def channel_to(address: str) -> AsyncIterator[Stubs]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield stubs_for(address, channel)


def as_key(setup: Setup, who: str) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", setup.keys[who]),)


def token(**claims: object) -> str:
    now = int(time.time())
    body = {"sub": "alice", "iss": "https://idp.test", "aud": "gater", "exp": now + 300, "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, SECRET, algorithm="HS256")


def bearer(value: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {value}"),)


async def code_of(call: object) -> str:
    """"OK" or the status code name of an awaited unary call."""
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as e:
        return e.code().name
    return "OK"


async def test_bad_tokens_are_unauthenticated(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        request = streams_pb2.GetVersionRequest(stream_id="billing-1")
        assert await code_of(api.streams.GetVersion(request, metadata=bearer(token()))) == "OK"
        now = int(time.time())
        for bad in (
            token(exp=now - 3600),  # expired
            token(nbf=now + 3600),  # not yet valid
            token(aud="someone-else"),  # wrong audience
            token(iss="https://evil.test"),  # wrong issuer
            jwt.encode({"sub": "alice", "aud": "gater", "iss": "https://idp.test", "exp": now + 300}, "wrong-key-0123456789abcdef0123456789", algorithm="HS256"),
        ):
            assert await code_of(api.streams.GetVersion(request, metadata=bearer(bad))) == "UNAUTHENTICATED"
        assert await code_of(api.streams.GetVersion(request)) == "UNAUTHENTICATED"  # no credentials
        assert await code_of(api.streams.GetVersion(request, metadata=(("x-api-key", "gtr.admin.wrong"),))) == "UNAUTHENTICATED"
        # Health and reflection stay open for probes.
        health = health_pb2_grpc.HealthStub(api.channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == health_pb2.HealthCheckResponse.SERVING


# (who, method, request, expected code)
def matrix() -> list[tuple[str, str, object, str]]:
    append = lambda stream, store="": streams_pb2.AppendEventsRequest(store=store, stream_id=stream, events=[new_event()])  # noqa: E731
    return [
        ("billing", "streams.AppendEvents", append("billing-1"), "OK"),
        ("billing", "streams.AppendEvents", append("orders-1"), "PERMISSION_DENIED"),
        ("billing", "streams.AppendEvents", append("billing-1", "other"), "PERMISSION_DENIED"),
        ("billing", "streams.GetVersion", streams_pb2.GetVersionRequest(stream_id="billing-1"), "OK"),
        ("billing", "streams.GetVersion", streams_pb2.GetVersionRequest(stream_id="orders-1"), "PERMISSION_DENIED"),
        ("billing", "snapshots.RecordSnapshot", snapshots_pb2.RecordSnapshotRequest(snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="billing-1", source_version=0)), "OK"),
        ("billing", "snapshots.RecordSnapshot", snapshots_pb2.RecordSnapshotRequest(snapshot=types_pb2.SnapshotRecord(source_uuid="a", stream_uuid="orders-1", source_version=0)), "PERMISSION_DENIED"),
        ("billing", "stores.CreateStore", stores_pb2.CreateStoreRequest(store_id="billing-store"), "PERMISSION_DENIED"),
        ("billing", "stores.GetStoreConfig", stores_pb2.GetStoreConfigRequest(store_id="default"), "PERMISSION_DENIED"),
        ("billing", "cluster.GetStatus", __import__("exesdb.v1.cluster_pb2", fromlist=["x"]).GetStatusRequest(), "PERMISSION_DENIED"),
        ("billing", "subscriptions.SaveSubscription", pb.SaveSubscriptionRequest(name="b", selector="billing-1"), "OK"),
        ("billing", "subscriptions.SaveSubscription", pb.SaveSubscriptionRequest(name="all", selector="$all"), "PERMISSION_DENIED"),
        ("admin", "stores.CreateStore", stores_pb2.CreateStoreRequest(store_id="other"), "OK"),
        ("admin", "streams.AppendEvents", append("orders-1", "other"), "OK"),
        ("admin", "stores.GetStoreConfig", stores_pb2.GetStoreConfigRequest(store_id="default"), "OK"),
        ("auditor", "streams.AppendEvents", append("billing-1"), "PERMISSION_DENIED"),
        ("auditor", "streams.ReadEvents", streams_pb2.ReadEventsRequest(store="_audit", stream_id="$all"), "OK"),
        ("billing", "streams.ReadEvents", streams_pb2.ReadEventsRequest(store="_audit", stream_id="$all"), "PERMISSION_DENIED"),
        ("billing", "streams.ReadEvents", streams_pb2.ReadEventsRequest(stream_id="$all"), "PERMISSION_DENIED"),
        ("billing", "stores.RemoveStore", stores_pb2.RemoveStoreRequest(store_id="other"), "PERMISSION_DENIED"),
        # Export and import are administrative (store_admin).
        ("billing", "stores.ImportEvents", stores_pb2.ImportEventsRequest(store_id="default"), "PERMISSION_DENIED"),
        ("billing", "stores.ExportStore", stores_pb2.ExportStoreRequest(store_id="default"), "PERMISSION_DENIED"),
        ("admin", "stores.ImportEvents", stores_pb2.ImportEventsRequest(store_id="other"), "OK"),
        ("admin", "stores.ExportStore", stores_pb2.ExportStoreRequest(store_id="other"), "OK"),
    ]


async def _run_matrix(api: Stubs, setup: Setup) -> list[tuple[str, str, str, str]]:
    wrong = []
    for who, method, request, expected in matrix():
        service, name = method.split(".")
        rpc = getattr(getattr(api, service), name)
        if name in ("ReadEvents", "ExportStore"):
            try:
                async for _ in rpc(request, metadata=as_key(setup, who)):
                    pass
                got = "OK"
            except grpc.aio.AioRpcError as e:
                got = e.code().name
        else:
            got = await code_of(rpc(request, metadata=as_key(setup, who)))
        if got != expected:
            wrong.append((who, method, expected, got))
    return wrong


async def test_acl_matrix_directly_on_a_node(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        assert await _run_matrix(api, setup) == []


async def test_acl_matrix_through_a_gateway(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node:
        config = GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, auth=setup.auth, cluster_secret="peer-secret")
        async with GatewayServer(config, StaticDiscovery([node.address])) as gateway, channel_to(gateway.address) as api:
            assert await _run_matrix(api, setup) == []
            # A client cannot pass itself off as someone else through the gateway.
            forged = as_key(setup, "billing") + (("x-gater-principal", "key:admin"), ("x-gater-roles", "admin"))
            request = stores_pb2.CreateStoreRequest(store_id="forged")
            assert await code_of(api.stores.CreateStore(request, metadata=forged)) == "PERMISSION_DENIED"


async def test_a_subscription_and_listings_see_only_permitted_events(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        admin, billing = as_key(setup, "admin"), as_key(setup, "billing")
        for stream in ("billing-1", "orders-1", "billing-2", "orders-2"):
            await api.streams.AppendEvents(
                streams_pb2.AppendEventsRequest(stream_id=stream, events=[new_event("paid:v1")]), metadata=admin
            )
        sub = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(type=1, selector="paid:v1"), metadata=billing))
        await sub.wait_for(lambda c: "caught_up" in c.messages)
        await api.streams.AppendEvents(
            streams_pb2.AppendEventsRequest(stream_id="orders-3", events=[new_event("paid:v1")]), metadata=admin
        )
        await api.streams.AppendEvents(
            streams_pb2.AppendEventsRequest(stream_id="billing-3", events=[new_event("paid:v1")]), metadata=admin
        )
        events = await sub.count(3)
        assert [e.stream_id for e in events] == ["billing-1", "billing-2", "billing-3"]
        await sub.close()
        listed = await api.streams.ListStreams(streams_pb2.ListStreamsRequest(), metadata=billing)
        assert [s.stream_id for s in listed.streams] == ["billing-1", "billing-2", "billing-3"]
        stores = await api.stores.ListStores(stores_pb2.ListStoresRequest(), metadata=billing)
        assert [s.store_id for s in stores.stores] == ["default"]
        everything = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all"), metadata=billing))
        await everything.wait_for(lambda c: c.error is not None)
        assert everything.error is not None and everything.error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_subscription_by_query_catches_up_with_only_permitted_events(tmp_path: Path, setup: Setup) -> None:
    """Its catch-up comes from the tag index, not from a scan that the permissions filter."""
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        admin, billing = as_key(setup, "admin"), as_key(setup, "billing")
        for stream in ("billing-1", "orders-1", "billing-2", "orders-2"):
            event = new_event("paid:v1")
            event.tags.append("month:2026-11")
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream, events=[event]), metadata=admin)
        pattern = struct_pb2.Struct()
        pattern.update({"items": [{"tags": ["month:2026-11"]}]})
        request = pb.SubscribeRequest(type=pb.SUBSCRIPTION_TYPE_BY_QUERY, pattern=pattern)
        sub = Collector(api.subscriptions.Subscribe(request, metadata=billing))
        await sub.wait_for(lambda c: "caught_up" in c.messages)
        assert [e.stream_id for e in sub.events] == ["billing-1", "billing-2"]
        await sub.close()
        everything = Collector(api.subscriptions.Subscribe(request, metadata=admin))
        await everything.wait_for(lambda c: "caught_up" in c.messages)
        assert [e.stream_id for e in everything.events] == ["billing-1", "orders-1", "billing-2", "orders-2"]
        await everything.close()
        # A read by the same query reads `$all`, which billing may not.
        read = streams_pb2.ReadEventsRequest(query=types_pb2.Query(items=[types_pb2.QueryItem(tags=["month:2026-11"])]))
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            async for _ in api.streams.ReadEvents(read, metadata=billing):
                pass
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def _audit(api: Stubs, setup: Setup) -> list[dict]:
    records = []
    async for batch in api.streams.ReadEvents(
        streams_pb2.ReadEventsRequest(store="_audit", stream_id="$all"), metadata=as_key(setup, "auditor")
    ):
        records.extend(json.loads(e.data) for e in batch.events)
    return records


async def test_every_administrative_operation_tried_is_audited(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node:
        config = GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, auth=setup.auth, cluster_secret="peer-secret")
        async with GatewayServer(config, StaticDiscovery([node.address])) as gateway:
            async with channel_to(node.address) as direct, channel_to(gateway.address) as through:
                admin, billing = as_key(setup, "admin"), as_key(setup, "billing")
                tried = [
                    (lambda: direct.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="s1"), metadata=admin), "OK"),
                    (lambda: through.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="s2"), metadata=admin), "OK"),
                    (lambda: through.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="s1"), metadata=billing), "PERMISSION_DENIED"),
                    (lambda: direct.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="s1"), metadata=billing), "PERMISSION_DENIED"),
                    (lambda: through.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="s1")), "UNAUTHENTICATED"),
                    (lambda: direct.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="b", selector="billing-1"), metadata=billing), "OK"),
                    (lambda: through.subscriptions.ReplayParkedEvents(pb.ReplayParkedEventsRequest(subscription_name="b"), metadata=admin), "OK"),
                    (lambda: direct.subscriptions.RemoveSubscription(pb.RemoveSubscriptionRequest(name="b"), metadata=billing), "OK"),
                    (lambda: through.snapshots.DeleteSnapshot(snapshots_pb2.DeleteSnapshotRequest(source_uuid="a", stream_uuid="orders-1"), metadata=billing), "PERMISSION_DENIED"),
                    (lambda: direct.stores.RemoveStore(stores_pb2.RemoveStoreRequest(store_id="s1"), metadata=admin), "OK"),
                ]
                for call, expected in tried:  # one after the other: a grpc call starts when made
                    assert await code_of(call()) == expected
                records = await _audit(direct, setup)
                seen = [(r["operation"], r["principal"], r["outcome"]) for r in records]
                assert seen == [
                    ("CreateStore", "key:admin", "OK"),
                    ("CreateStore", "key:admin", "OK"),
                    ("RemoveStore", "key:billing", "PERMISSION_DENIED"),
                    ("RemoveStore", "key:billing", "PERMISSION_DENIED"),
                    ("RemoveStore", "anonymous", "UNAUTHENTICATED"),
                    ("SaveSubscription", "key:billing", "OK"),
                    ("ReplayParkedEvents", "key:admin", "OK"),
                    ("RemoveSubscription", "key:billing", "OK"),
                    ("DeleteSnapshot", "key:billing", "PERMISSION_DENIED"),
                    ("RemoveStore", "key:admin", "OK"),
                ]
                assert [r["target"].get("store_id") for r in records[:2]] == ["s1", "s2"]
                assert "via" in records[2] and "via" not in records[3]  # refused at the gateway, then at the node
                assert all(r["at"].endswith("Z") for r in records)
                # Only auditors read it; only peers (gateways recording refusals) write to it.
                billing_write = streams_pb2.AppendEventsRequest(store="_audit", stream_id="admin", events=[new_event()])
                assert await code_of(direct.streams.AppendEvents(billing_write, metadata=billing)) == "PERMISSION_DENIED"
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    async for _ in direct.streams.ReadEvents(
                        streams_pb2.ReadEventsRequest(store="_audit", stream_id="$all"), metadata=billing
                    ):
                        pass
                assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_policy_change_on_disk_applies_and_is_audited(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        node.policy.poll_s = 0.05
        billing = as_key(setup, "billing")
        request = streams_pb2.AppendEventsRequest(stream_id="orders-1", events=[new_event()])
        assert await code_of(api.streams.AppendEvents(request, metadata=billing)) == "PERMISSION_DENIED"
        setup.policy_file.write_text(POLICY.replace('streams = ["billing-*"], operations = ["read", "append"', 'streams = ["billing-*", "orders-*"], operations = ["read", "append"'))
        async with asyncio.timeout(10):
            while await code_of(api.streams.AppendEvents(request, metadata=billing)) != "OK":
                await node.policy.reload()
        reloads = [r for r in await _audit(api, setup) if r["operation"] == "PolicyReload"]
        assert reloads and reloads[-1]["outcome"] == "OK"


async def test_the_gateway_limits_requests_per_principal(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node:
        config = GatewayConfig(
            listen="127.0.0.1:0", grace_s=0.1, auth=setup.auth, cluster_secret="peer-secret", max_requests_per_s=5
        )
        async with GatewayServer(config, StaticDiscovery([node.address])) as gateway, channel_to(gateway.address) as api:
            request = streams_pb2.GetVersionRequest(stream_id="billing-1")
            codes = [await code_of(api.streams.GetVersion(request, metadata=as_key(setup, "billing"))) for _ in range(20)]
            assert codes[:5] == ["OK"] * 5 and "RESOURCE_EXHAUSTED" in codes
            # Another principal has its own budget.
            assert await code_of(api.streams.GetVersion(request, metadata=as_key(setup, "admin"))) == "OK"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                for _ in range(20):
                    await api.streams.GetVersion(request, metadata=as_key(setup, "billing"))
            error = decode_status(
                caught.value.code().name,
                caught.value.details(),
                dict(caught.value.trailing_metadata()).get(STATUS_DETAILS_KEY),
            )
            assert getattr(error, "limit", "") == "max_requests_per_s"


async def test_limits_answer_resource_exhausted_naming_the_limit(tmp_path: Path) -> None:
    limits = Limits(max_stores=2, max_persistent_subscriptions=1, max_subscriptions_per_store=1)
    async with NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "d", limits=limits, grace_s=0.1)) as node:
        async with channel_to(node.address) as api:

            async def limit_of(call: object) -> str:
                try:
                    await call  # type: ignore[misc]
                except grpc.aio.AioRpcError as e:
                    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    details = dict(e.trailing_metadata()).get(STATUS_DETAILS_KEY)
                    return getattr(decode_status(e.code().name, e.details(), details), "limit", "")
                return "none"

            await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="second"))  # default + second
            assert await limit_of(api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id="third"))) == "max_stores"
            await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="one", selector="$all"))
            await api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="one", selector="$all"))  # update
            assert (
                await limit_of(api.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="two", selector="$all")))
                == "max_persistent_subscriptions"
            )
            first = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all")))
            await first.wait_for(lambda c: "caught_up" in c.messages)
            second = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all")))
            await second.wait_for(lambda c: c.error is not None)
            assert second.error is not None and second.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_subscriptions_per_store" in second.error.debug_error_string() or "subscriptions of store" in second.error.details()
            await first.close()


async def test_closed_health_needs_credentials(tmp_path: Path, setup: Setup) -> None:
    from dataclasses import replace

    closed = replace(setup, auth=replace(setup.auth, open_health=False))
    async with secured_node(tmp_path, closed) as node, channel_to(node.address) as api:
        health = health_pb2_grpc.HealthStub(api.channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health.Check(health_pb2.HealthCheckRequest())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = await health.Check(health_pb2.HealthCheckRequest(), metadata=as_key(setup, "billing"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
