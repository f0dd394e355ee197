"""The persistent-subscription relay between PostgreSQL node processes with mTLS on, from the
command line: each node serves TLS, requires client certificates from the cluster CA, and
calls the other over mTLS with its own certificate. A consumer on the node that does not own
the subscription is relayed to the owner and gets its events; acks sent there count; a caller
without a certificate is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import streams_pb2, types_pb2
from exesdb.v1 import subscriptions_pb2 as pb
from gater.security.devcerts import DevCa
from tests.conftest import Stubs, stubs_for
from tests.helpers import Collector
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
async def pair(migrated_database: str, tmp_path: Path) -> AsyncIterator[tuple[Path, list[tuple[GaterProcess, Stubs]]]]:
    ca = DevCa(tmp_path / "pki")
    nodes = []
    for name in ("node-0", "node-1"):
        cert, key = ca.issue(name)
        nodes.append(GaterProcess(
            "node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database,
            "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca.cert_path),
            "--upstream-ca", str(ca.cert_path),  # node → node over mTLS, with --tls-cert as its certificate
        ))  # fmt: skip
    await nodes[0].start()  # creates the schema; the other then starts at once
    await nodes[1].start()
    client_cert, client_key = ca.issue("client")
    credentials = grpc.ssl_channel_credentials(
        ca.cert_path.read_bytes(), client_key.read_bytes(), client_cert.read_bytes()
    )
    channels = [grpc.aio.secure_channel(n.address, credentials) for n in nodes]
    try:
        yield ca.cert_path, [(n, stubs_for(n.address, c)) for n, c in zip(nodes, channels, strict=True)]
    finally:
        for channel in channels:
            await channel.close()
        await asyncio.gather(*(n.kill() for n in nodes))
        for n in nodes:  # shown by pytest only when the test failed
            print(f"--- log of node {n.address}\n{''.join(n.log[-60:])}")


def event() -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_type="tick", data=b"{}")


async def test_a_consumer_on_the_other_node_is_relayed_to_the_owner_over_mtls(pair) -> None:
    ca, [(n0, api0), (n1, api1)] = pair
    await api0.subscriptions.SaveSubscription(pb.SaveSubscriptionRequest(name="billing", selector="$all"))
    await api0.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="inv", events=[event() for _ in range(20)]))

    # The first consumer's node takes the dispatch; the second node relays its consumer there.
    owner = Collector(api0.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="billing")))
    await owner.wait_for(lambda c: "confirmation" in c.last)
    relayed = Collector(api1.subscriptions.Subscribe(pb.SubscribeRequest(subscription_name="billing")))
    await relayed.wait_for(lambda c: "confirmation" in c.last)
    assert relayed.last["confirmation"].node_id == owner.last["confirmation"].node_id  # served by the owner
    await owner.wait_for(lambda c: len(c.events) + len(relayed.events) >= 20)
    seen = {e.position for e in owner.events} | {e.position for e in relayed.events}
    assert seen == set(range(20))

    # Acks sent to the node that does not own the subscription are relayed to the one that does.
    await api1.subscriptions.AckEvent(pb.AckEventRequest(subscription_name="billing", positions=sorted(seen)))
    (info,) = (await api1.subscriptions.ListSubscriptions(pb.ListSubscriptionsRequest())).subscriptions
    assert info.checkpoint == 19

    # Events appended now reach the relayed consumer too (or the owner's: they compete).
    await api1.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="inv", events=[event() for _ in range(10)]))
    await owner.wait_for(lambda c: {e.position for e in c.events} | {e.position for e in relayed.events} >= set(range(30)))
    await relayed.close()
    await owner.close()
    assert relayed.error is None and owner.error is None

    # Without a client certificate the nodes do not answer.
    async with grpc.aio.secure_channel(n1.address, grpc.ssl_channel_credentials(ca.read_bytes())) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stubs_for(n1.address, channel).streams.GetVersion(
                streams_pb2.GetVersionRequest(stream_id="inv"), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
