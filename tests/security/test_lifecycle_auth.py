"""The lifecycle calls under authentication, directly on a node and through a gateway:
`stream_admin` guards DeleteStream, SetStreamMetadata and RedactEvent per stream prefix, `read`
GetStreamMetadata, `store_admin` Scavenge; every one of the four writes tried is in the audit
log with its stream, refused ones included."""

from __future__ import annotations

from pathlib import Path

import pytest

from exesdb.v1 import stores_pb2, streams_pb2
from gater.config import GatewayConfig
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.security.access import access_of
from gater.security.policy import Operation
from tests.helpers import new_event
from tests.security.test_auth import Setup, _audit, as_key, channel_to, code_of, secured_node, setup

pytestmark = pytest.mark.timeout(90)

_FIXTURES = (setup,)


def test_access_of_the_lifecycle_calls() -> None:
    cases = {
        "/exesdb.v1.Streams/DeleteStream": (streams_pb2.DeleteStreamRequest(stream_id="b-1"), Operation.STREAM_ADMIN, "b-1"),
        "/exesdb.v1.Streams/SetStreamMetadata": (streams_pb2.SetStreamMetadataRequest(stream_id="b-1"), Operation.STREAM_ADMIN, "b-1"),
        "/exesdb.v1.Streams/RedactEvent": (streams_pb2.RedactEventRequest(stream_id="b-1"), Operation.STREAM_ADMIN, "b-1"),
        "/exesdb.v1.Streams/GetStreamMetadata": (streams_pb2.GetStreamMetadataRequest(stream_id="b-1"), Operation.READ, "b-1"),
        "/exesdb.v1.Stores/Scavenge": (stores_pb2.ScavengeRequest(store_id="s"), Operation.STORE_ADMIN, None),
        "/exesdb.v1.Stores/GetScavengeStatus": (stores_pb2.GetScavengeStatusRequest(store_id="s"), Operation.STORE_ADMIN, None),
    }
    for method, (request, operation, stream) in cases.items():
        access = access_of(method, request, "default")
        assert (access.operation, access.stream) == (operation, stream), method


async def test_lifecycle_calls_are_authorized_and_audited(tmp_path: Path, setup: Setup) -> None:
    async with secured_node(tmp_path, setup) as node:
        config = GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, auth=setup.auth, cluster_secret="peer-secret")
        async with GatewayServer(config, StaticDiscovery([node.address])) as gateway:
            async with channel_to(node.address) as direct, channel_to(gateway.address) as through:
                admin, billing = as_key(setup, "admin"), as_key(setup, "billing")
                for stream in ("billing-1", "billing-2"):
                    append = streams_pb2.AppendEventsRequest(stream_id=stream, events=[new_event(), new_event()])
                    assert await code_of(direct.streams.AppendEvents(append, metadata=billing)) == "OK"
                meta = streams_pb2.SetStreamMetadataRequest(stream_id="billing-1", metadata=streams_pb2.StreamMetadata(max_count=1))
                tried = [
                    # billing may read and append billing-*, not administer streams or stores
                    (through.streams.DeleteStream(streams_pb2.DeleteStreamRequest(stream_id="billing-1"), metadata=billing), "PERMISSION_DENIED"),
                    (direct.streams.SetStreamMetadata(meta, metadata=billing), "PERMISSION_DENIED"),
                    (direct.streams.GetStreamMetadata(streams_pb2.GetStreamMetadataRequest(stream_id="billing-1"), metadata=billing), "OK"),
                    (direct.streams.RedactEvent(streams_pb2.RedactEventRequest(stream_id="billing-1", version=0), metadata=billing), "PERMISSION_DENIED"),
                    (direct.stores.Scavenge(stores_pb2.ScavengeRequest(wait=True), metadata=billing), "PERMISSION_DENIED"),
                    # the admin may, through the gateway as directly
                    (through.streams.SetStreamMetadata(meta, metadata=admin), "OK"),
                    (through.streams.DeleteStream(streams_pb2.DeleteStreamRequest(stream_id="billing-2", tombstone=True), metadata=admin), "OK"),
                    (through.streams.RedactEvent(streams_pb2.RedactEventRequest(stream_id="billing-1", version=1), metadata=admin), "OK"),
                    (through.stores.Scavenge(stores_pb2.ScavengeRequest(wait=True), metadata=admin), "OK"),
                ]
                for call, expected in tried:  # one after the other: a grpc call starts when made
                    assert await code_of(call) == expected
                records = await _audit(direct, setup)
                seen = [(r["operation"], r["principal"], r["outcome"], r["target"].get("stream_id")) for r in records]
                # (each record is written as its call ends, the gateway's refusal by a call of
                # its own to a node: their order is not the calls')
                assert sorted(seen, key=repr) == sorted([
                    ("DeleteStream", "key:billing", "PERMISSION_DENIED", "billing-1"),  # refused at the gateway
                    ("SetStreamMetadata", "key:billing", "PERMISSION_DENIED", "billing-1"),
                    ("RedactEvent", "key:billing", "PERMISSION_DENIED", "billing-1"),
                    ("Scavenge", "key:billing", "PERMISSION_DENIED", None),
                    ("SetStreamMetadata", "key:admin", "OK", "billing-1"),
                    ("DeleteStream", "key:admin", "OK", "billing-2"),
                    ("RedactEvent", "key:admin", "OK", "billing-1"),
                    ("Scavenge", "key:admin", "OK", None),
                ], key=repr)
                (tombstone,) = [r for r in records if r["operation"] == "DeleteStream" and r["outcome"] == "OK"]
                assert tombstone["target"]["tombstone"] is True
