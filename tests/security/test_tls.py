"""TLS on every listener and hop, with certificates made in the test: a TLS client succeeds, a
plaintext one is refused; with mTLS a node refuses a gateway without a client certificate from
the cluster CA; a certificate rotated on disk is picked up by a running node without
dropping a live subscription; the cluster secret never goes out in clear off loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from exesdb.v1 import streams_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.config import GatewayConfig, NodeConfig, TlsConfig
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from gater.node import NodeServer
from tests.conftest import stubs_for
from tests.helpers import Collector, new_event
from tests.security.certs import CA, Pair

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return CA(tmp_path / "pki")


def _node_config(tmp_path: Path, tls: TlsConfig, **kw: object) -> NodeConfig:
    return NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / "data", tls=tls, grace_s=0.1, **kw)  # type: ignore[arg-type]


def _credentials(ca: CA, client: Pair | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca.path.read_bytes(),
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None,
    )


def _served_serial(address: str, ca: CA) -> int:
    """The serial number of the certificate a server presents now (a fresh handshake)."""
    import socket
    import ssl

    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca.path))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_tls_client_succeeds_and_plaintext_is_refused(tmp_path: Path, ca: CA) -> None:
    server = ca.issue("node-1", file="node")
    async with NodeServer(_node_config(tmp_path, TlsConfig(cert=server.cert, key=server.key))) as node:
        async with grpc.aio.secure_channel(node.address, _credentials(ca)) as channel:
            api = stubs_for(node.address, channel)
            reply = await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()]))
            assert reply.version == 0
        async with grpc.aio.insecure_channel(node.address) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs_for(node.address, plaintext).streams.GetVersion(
                    streams_pb2.GetVersionRequest(stream_id="s"), timeout=3
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # A certificate from another CA is not trusted either.
        other = CA(tmp_path / "other", name="other CA")
        async with grpc.aio.secure_channel(node.address, _credentials(other)) as stranger:
            with pytest.raises(grpc.aio.AioRpcError):
                await stubs_for(node.address, stranger).streams.GetVersion(
                    streams_pb2.GetVersionRequest(stream_id="s"), timeout=3
                )


async def test_mtls_node_refuses_a_gateway_without_a_cluster_certificate(tmp_path: Path, ca: CA) -> None:
    node_pair = ca.issue("node-1", file="node")
    gateway_pair = ca.issue("gateway-1", file="gateway")
    rogue_pair = CA(tmp_path / "rogue", name="rogue CA").issue("gateway-x", file="rogue")
    mtls = TlsConfig(cert=node_pair.cert, key=node_pair.key, client_ca=ca.path)
    async with NodeServer(_node_config(tmp_path, mtls)) as node:
        good = GatewayConfig(
            listen="127.0.0.1:0",
            grace_s=0.1,
            tls=TlsConfig(upstream_ca=ca.path, upstream_cert=gateway_pair.cert, upstream_key=gateway_pair.key),
        )
        async with GatewayServer(good, StaticDiscovery([node.address])) as gateway:
            async with grpc.aio.insecure_channel(gateway.address) as channel:
                api = stubs_for(gateway.address, channel)
                reply = await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()]))
                assert reply.position == 0
        for name, tls in [
            ("no client certificate", TlsConfig(upstream_ca=ca.path)),
            ("another CA's certificate", TlsConfig(upstream_ca=ca.path, upstream_cert=rogue_pair.cert, upstream_key=rogue_pair.key)),
        ]:
            config = GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, tls=tls, probe_timeout_s=1)
            async with GatewayServer(config, StaticDiscovery([node.address])) as gateway:
                async with grpc.aio.insecure_channel(gateway.address) as channel:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await stubs_for(gateway.address, channel).streams.GetVersion(
                            streams_pb2.GetVersionRequest(stream_id="s"), timeout=5
                        )
                    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, name
        # And a client calling the node directly without a certificate is refused too.
        async with grpc.aio.secure_channel(node.address, _credentials(ca)) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await stubs_for(node.address, channel).streams.GetVersion(streams_pb2.GetVersionRequest(stream_id="s"), timeout=3)


async def test_a_rotated_certificate_is_used_without_dropping_a_live_subscription(tmp_path: Path, ca: CA) -> None:
    first = ca.issue("node-1", file="node")
    config = _node_config(tmp_path, TlsConfig(cert=first.cert, key=first.key))
    async with NodeServer(config) as node:
        serial_before = await asyncio.to_thread(_served_serial, node.address, ca)
        async with grpc.aio.secure_channel(node.address, _credentials(ca)) as channel:
            api = stubs_for(node.address, channel)
            subscription = Collector(api.subscriptions.Subscribe(pb.SubscribeRequest(selector="$all")))
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()]))
            await subscription.count(1)
            # Rotate on disk: same file names, a new certificate (and key) from the same CA.
            rotated = ca.issue(
                "node-1", file="node", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            )
            assert rotated == first
            serial_after = await asyncio.to_thread(_served_serial, node.address, ca)
            assert serial_after != serial_before
            # The subscription opened before the rotation still delivers.
            await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="s", events=[new_event()]))
            assert [e.position for e in await subscription.count(2)] == [0, 1]
            assert subscription.error is None
            await subscription.close()


async def test_reload_rereads_the_files(tmp_path: Path, ca: CA) -> None:
    first = ca.issue("node-1", file="node")
    async with NodeServer(_node_config(tmp_path, TlsConfig(cert=first.cert, key=first.key))) as node:
        before = await asyncio.to_thread(_served_serial, node.address, ca)
        await node.reload()  # SIGHUP: a new handshake reads the (unchanged) files again
        assert await asyncio.to_thread(_served_serial, node.address, ca) == before
        assert node.tls is not None and node.tls.loads >= 2


async def test_the_cluster_secret_is_refused_in_clear_off_loopback(tmp_path: Path, ca: CA) -> None:
    config = NodeConfig(listen="0.0.0.0:0", data_dir=tmp_path / "data", cluster_secret="s3cret", grace_s=0.1)
    node = NodeServer(config)
    with pytest.raises(OSError, match="refusing to take the cluster secret in clear"):
        await node.start()
    await node.stop()
    allowed = dataclasses.replace(config, auth=dataclasses.replace(config.auth, allow_insecure_secret=True))
    async with NodeServer(allowed):
        pass
    pair = ca.issue("node-1", file="node")
    with_tls = dataclasses.replace(config, tls=TlsConfig(cert=pair.cert, key=pair.key))
    async with NodeServer(with_tls):
        pass
