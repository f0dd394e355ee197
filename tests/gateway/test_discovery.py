"""Discovery providers (gater/gateway/discovery) and Consul registration.

Covers: parsing of EX_ESDB_GATER_CONNECT_TO / CONSUL_HTTP_ADDR with errors naming the
variable; the pure helpers (diff, backoff, Consul index rules, health entries → members);
StaticDiscovery; ConsulDiscovery against the Consul double (members appear, a check going
critical removes a member through the blocking query, an outage keeps the last members with
ok=False then recovers with one warning per outage, ACL tokens, the index going backwards,
Node.Address fallback and Meta); the node's ConsulRegistration (gater/node/registration.py:
GRPC check against a real grpc health server turns passing, NOT_SERVING removes the node from
discovery, stop deregisters, an agent that lost its state gets the instance again); DnsDiscovery against a DNS server the test
serves on a loopback UDP port (A + port, SRV, changes, NXDOMAIN, SERVFAIL keeping members, a short
name found through the search domains of a Kubernetes-style resolv.conf).
One test runs against a real Consul agent when CONSUL_HTTP_ADDR is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from gater.gateway.discovery import (
    AsyncConsul,
    ConsulAgentConfig,
    ConsulDiscovery,
    ConsulDiscoveryConfig,
    Discovery,
    DiscoveryConfigError,
    DiscoverySnapshot,
    DnsDiscovery,
    DnsDiscoveryConfig,
    MemberAddress,
    StaticDiscovery,
    backoff_s,
    diff_members,
    members_from_health,
    next_index,
    parse_consul_address,
    parse_node_list,
)
from gater.node.registration import ConsulRegistration, ConsulRegistrationConfig
from tests.gateway.conftest import FakeNode
from tests.gateway.consul_double import ConsulDouble
from tests.gateway.dns_double import DnsServer, serve_dns

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 15.0


async def until(
    disc: Discovery, pred: Callable[[DiscoverySnapshot], bool], timeout_s: float = TIMEOUT_S
) -> DiscoverySnapshot:
    """Await the discovery's change notification until `pred` holds."""

    async def wait() -> DiscoverySnapshot:
        snap = disc.snapshot()
        while not pred(snap):
            snap = await disc.wait_for_change(snap.generation)
        return snap

    return await asyncio.wait_for(wait(), timeout_s)


async def double_until(double: ConsulDouble, pred: Callable[[ConsulDouble], bool]) -> None:
    assert await asyncio.to_thread(double.wait_for, pred, TIMEOUT_S)


def addresses(snap: DiscoverySnapshot) -> set[str]:
    return {m.address for m in snap.members}


def put(double: ConsulDouble, path: str, body: Any = None, token: str | None = None) -> None:
    req = urllib.request.Request(
        double.url + path,
        data=json.dumps(body).encode() if body is not None else b"",
        method="PUT",
    )
    if token:
        req.add_header("X-Consul-Token", token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def register(
    double: ConsulDouble,
    sid: str,
    port: int,
    *,
    status: str = "passing",
    address: str = "127.0.0.1",
    meta: dict[str, str] | None = None,
    tags: list[str] | None = None,
    token: str | None = None,
    service: str = "exesdb-gater",
) -> None:
    body = {
        "Name": service,
        "ID": sid,
        "Address": address,
        "Port": port,
        "Tags": tags or [],
        "Meta": meta or {},
        "Check": {"TTL": "1h", "Status": status},
    }
    put(double, "/v1/agent/service/register", body, token)


def discovery_config(double: ConsulDouble, **kw: Any) -> ConsulDiscoveryConfig:
    agent = ConsulAgentConfig(
        address=double.address, token=kw.pop("token", None), request_timeout_s=2.0
    )
    kw.setdefault("wait_s", 5.0)
    kw.setdefault("backoff_initial_s", 0.02)
    kw.setdefault("backoff_max_s", 0.2)
    return ConsulDiscoveryConfig(agent=agent, **kw)


# -- parsing and pure helpers -------------------------------------------------------------------


def test_parse_node_list():
    assert parse_node_list("a:1, b:2,") == ["a:1", "b:2"]
    assert parse_node_list("[::1]:50051,a:1,a:1") == ["[::1]:50051", "a:1"]
    for bad, words in [
        ("", "no node"),
        ("a", "no port"),
        ("a:x", "port"),
        ("a:1,,b:2", "entry 2"),
        (":5", "no host"),
        ("::1:5", "IPv6"),
        ("a:70000", "port"),
    ]:
        with pytest.raises(DiscoveryConfigError) as e:
            parse_node_list(bad)
        assert str(e.value).startswith("EX_ESDB_GATER_CONNECT_TO: ")
        assert words in str(e.value)
    with pytest.raises(DiscoveryConfigError, match="^--nodes: "):
        parse_node_list("nope", source="--nodes")


def test_parse_consul_address():
    assert parse_consul_address("127.0.0.1:8500") == ("http", "127.0.0.1", 8500)
    assert parse_consul_address("http://consul:9000") == ("http", "consul", 9000)
    assert parse_consul_address("https://consul") == ("https", "consul", 8501)
    assert parse_consul_address("consul") == ("http", "consul", 8500)
    with pytest.raises(DiscoveryConfigError, match="^CONSUL_HTTP_ADDR: .*scheme"):
        parse_consul_address("unix:///var/run/consul.sock")
    with pytest.raises(DiscoveryConfigError, match="^CONSUL_HTTP_ADDR: "):
        ConsulAgentConfig(address="consul:notaport")


def test_next_index_follows_consuls_rules():
    assert next_index(0, "5") == 5
    assert next_index(5, "7") == 7
    assert next_index(7, "7") == 7
    assert next_index(7, "3") == 0  # went backwards: reset
    assert next_index(0, "0") == 1  # never 0 after an answer


def test_members_from_health_uses_service_then_node_address_and_meta():
    entries = [
        {
            "Node": {"Address": "10.0.0.9"},
            "Service": {
                "ID": "s1",
                "Address": "10.0.0.1",
                "Port": 7,
                "Meta": {"node_id": "n1", "cluster_id": "c"},
            },
        },
        {"Node": {"Address": "10.0.0.9"}, "Service": {"ID": "s2", "Address": "", "Port": 8}},
        {"Node": {"Address": "10.0.0.9"}, "Service": {"ID": "s3", "Address": "x", "Port": 0}},
    ]
    got = {m.address: m for m in members_from_health(entries)}
    assert set(got) == {"10.0.0.1:7", "10.0.0.9:8"}
    m = got["10.0.0.1:7"]
    assert (m.service_id, m.node_id, m.cluster_id) == ("s1", "n1", "c")
    assert m.meta_dict() == {"node_id": "n1", "cluster_id": "c"}
    assert members_from_health(None) == frozenset()


def test_diff_and_backoff():
    a, b, c = MemberAddress("a", 1), MemberAddress("b", 1), MemberAddress("c", 1)
    assert diff_members({a, b}, {b, c}) == ({c}, {a})
    assert [backoff_s(n, initial_s=1, max_s=5) for n in range(0, 6)] == [0, 1, 2, 4, 5, 5]
    rng = random.Random(1)
    assert all(1 <= backoff_s(2, initial_s=1, max_s=5, rng=rng) <= 2 for _ in range(20))
    assert MemberAddress("::1", 5).address == "[::1]:5"


# -- static ------------------------------------------------------------------------------------


async def test_static_discovery():
    disc = StaticDiscovery(parse_node_list("b:2,a:1"))
    assert not disc.ok
    async with disc:
        snap = disc.snapshot()
        assert snap.ok and snap.last_error is None and addresses(snap) == {"a:1", "b:2"}
        assert disc.kind == "static"
        watcher = disc.watch()
        assert addresses(await anext(watcher)) == {"a:1", "b:2"}
        await watcher.aclose()
    await disc.stop()  # idempotent
    with pytest.raises(DiscoveryConfigError):
        StaticDiscovery([])


# -- consul discovery --------------------------------------------------------------------------


async def test_consul_members_appear_and_critical_check_removes_one(double):
    register(double, "n1", 5001, meta={"node_id": "n1", "cluster_id": "c1"})
    async with ConsulDiscovery(discovery_config(double)) as disc:
        snap = disc.snapshot()  # start() returns with the first list known
        assert snap.ok and addresses(snap) == {"127.0.0.1:5001"}
        (m,) = snap.members
        assert (m.service_id, m.node_id, m.cluster_id) == ("n1", "n1", "c1")

        register(double, "n2", 5002)
        await until(disc, lambda s: addresses(s) == {"127.0.0.1:5001", "127.0.0.1:5002"})
        register(double, "other", 6000, service="something-else")

        double.set_check_status("service:n1", "critical")
        snap = await until(disc, lambda s: addresses(s) == {"127.0.0.1:5002"})
        assert snap.ok
        double.set_check_status("service:n1", "passing")
        await until(disc, lambda s: len(s.members) == 2)
        put(double, "/v1/agent/service/deregister/n2")
        await until(disc, lambda s: addresses(s) == {"127.0.0.1:5001"})


async def test_consul_tag_filter_and_node_address_fallback():
    with ConsulDouble(node_address="127.0.0.7") as double:
        register(double, "n1", 5001, address="", tags=["blue"])
        register(double, "n2", 5002, tags=["green"])
        async with ConsulDiscovery(discovery_config(double, tag="blue")) as disc:
            assert addresses(disc.snapshot()) == {"127.0.0.7:5001"}


async def test_consul_not_passing_only_lists_critical_instances_too(double):
    register(double, "n1", 5001, status="critical")
    async with ConsulDiscovery(discovery_config(double, passing_only=False)) as disc:
        assert addresses(disc.snapshot()) == {"127.0.0.1:5001"}


async def test_consul_outage_keeps_last_members_then_recovers(double, caplog):
    caplog.set_level(logging.INFO, logger="gater.gateway.discovery")
    register(double, "n1", 5001)
    async with ConsulDiscovery(discovery_config(double)) as disc:
        before = disc.snapshot()
        assert before.ok

        double.stop()  # the blocking query in flight is cut; then connections are refused
        snap = await until(disc, lambda s: not s.ok)
        assert snap.members == before.members and disc.members() == before.members
        assert snap.last_error and "consul" in snap.last_error.lower()

        double.start()
        snap = await until(disc, lambda s: s.ok)
        assert snap.members == before.members and snap.last_error is None

        double.pause()  # the agent answers 500 "No cluster leader"
        snap = await until(disc, lambda s: not s.ok)
        assert "No cluster leader" in (snap.last_error or "") and snap.members == before.members
        register(double, "n2", 5002)  # registered while paused
        double.resume()
        await until(disc, lambda s: s.ok and len(s.members) == 2)

    warnings = [r for r in caplog.records if r.getMessage().startswith("consul unavailable")]
    recoveries = [r for r in caplog.records if r.getMessage() == "consul reachable again"]
    assert len(warnings) == 2 and len(recoveries) == 2  # one of each per outage
    assert warnings[0].levelno == logging.WARNING and warnings[0].members == 1


async def test_consul_unreachable_at_start():
    with ConsulDouble() as double:
        register(double, "n1", 5001)
        double.stop()
        disc = ConsulDiscovery(discovery_config(double))
        await disc.start()  # returns after the first failed attempt
        try:
            assert not disc.ok and disc.members() == frozenset() and disc.last_error
            double.start()
            snap = await until(disc, lambda s: s.ok)
            assert addresses(snap) == {"127.0.0.1:5001"}
        finally:
            await disc.stop()
            await disc.stop()


async def test_consul_token_handling():
    with ConsulDouble(acl_token="s3cret") as double:
        register(double, "n1", 5001, token="s3cret")
        async with ConsulDiscovery(discovery_config(double, token="s3cret")) as disc:
            assert addresses(disc.snapshot()) == {"127.0.0.1:5001"}
        async with ConsulDiscovery(discovery_config(double, token="wrong")) as disc:
            assert not disc.ok and "ACL" in (disc.last_error or "")
        # no token: Consul filters the answer (default deny), so nothing is listed
        async with ConsulDiscovery(discovery_config(double)) as disc:
            assert disc.ok and disc.members() == frozenset()
        health = [r for r in double.requests if r.path.startswith("/v1/health/")]
        assert {r.token for r in health} == {"s3cret", "wrong", None}


async def test_consul_index_going_backwards_resets_the_query(double):
    register(double, "n1", 5001)
    async with ConsulDiscovery(discovery_config(double, wait_s=0.5)) as disc:
        seen = len(double.requests)
        double.reset_index(1)  # as after a snapshot restore on the Consul servers

        def reset_query_sent(d: ConsulDouble) -> bool:
            return any(
                r.path == "/v1/health/service/exesdb-gater" and "index" not in r.query
                for r in d.requests[seen:]
            )

        await double_until(double, reset_query_sent)
        register(double, "n2", 5002)
        await until(disc, lambda s: len(s.members) == 2)


async def test_watch_yields_snapshots(double):
    async with ConsulDiscovery(discovery_config(double)) as disc:
        watcher = disc.watch()
        first = await asyncio.wait_for(anext(watcher), TIMEOUT_S)
        assert first.members == frozenset()
        register(double, "n1", 5001)
        second = await asyncio.wait_for(anext(watcher), TIMEOUT_S)
        assert addresses(second) == {"127.0.0.1:5001"} and second.generation > first.generation
        await watcher.aclose()


# -- consul registration -----------------------------------------------------------------------


def registration_config(double: ConsulDouble, port: int, **kw: Any) -> ConsulRegistrationConfig:
    kw.setdefault("agent", ConsulAgentConfig(address=double.address, request_timeout_s=2.0))
    return ConsulRegistrationConfig(
        address="127.0.0.1",
        port=port,
        node_id="node-a",
        cluster_id="cluster-1",
        check_interval_s=0.1,
        check_timeout_s=1.0,
        resync_interval_s=0.1,
        backoff_initial_s=0.02,
        backoff_max_s=0.2,
        **kw,
    )


def test_registration_payload_is_what_consul_documents():
    cfg = ConsulRegistrationConfig(
        address="10.1.2.3", port=50051, node_id="n1", cluster_id="c1", tags=("v1",)
    )
    kw = cfg.register_kwargs()
    assert kw["name"] == "exesdb-gater" and kw["service_id"] == "exesdb-gater-n1"
    assert kw["meta"] == {"node_id": "n1", "cluster_id": "c1"} and kw["tags"] == ["v1"]
    assert kw["check"] == {
        "grpc": "10.1.2.3:50051",
        "interval": "5000ms",
        "grpc_use_tls": False,
        "timeout": "3000ms",
        "DeregisterCriticalServiceAfter": "60000ms",
    }
    assert (
        ConsulRegistrationConfig(address="::1", port=1).register_kwargs()["check"]["grpc"]
        == "[::1]:1"
    )


async def test_registration_grpc_check_passes_and_discovery_sees_the_node(double, health_server: FakeNode):
    port = health_server.port
    reg = ConsulRegistration(registration_config(double, port))
    async with reg, ConsulDiscovery(discovery_config(double)) as disc:
        assert reg.ok and reg.registered and reg.registrations == 1
        sid = reg.service_id
        svc = double.services()[sid]
        assert (svc.address, svc.port, svc.meta) == (
            "127.0.0.1",
            port,
            {"node_id": "node-a", "cluster_id": "cluster-1"},
        )
        check = double.checks()[f"service:{sid}"]
        assert check.type == "grpc" and check.grpc == f"127.0.0.1:{port}"

        # the double's real GRPC check turns the instance passing
        snap = await until(disc, lambda s: len(s.members) == 1)
        (m,) = snap.members
        assert m.address == f"127.0.0.1:{port}" and m.node_id == "node-a"
        assert m.cluster_id == "cluster-1" and m.service_id == sid

        health_server.set(health_pb2.HealthCheckResponse.NOT_SERVING)
        await until(disc, lambda s: not s.members)
        health_server.set(health_pb2.HealthCheckResponse.SERVING)
        await until(disc, lambda s: len(s.members) == 1)
    assert sid not in double.services() and not reg.registered
    await reg.stop()  # idempotent


async def test_registration_survives_an_agent_that_lost_its_state(double, health_server: FakeNode, caplog):
    port = health_server.port
    async with ConsulRegistration(registration_config(double, port)) as reg:
        sid = reg.service_id
        double.stop()
        double.wipe()
        double.start()
        await double_until(double, lambda d: sid in d.services())
        assert any(r.getMessage().startswith("consul forgot this instance") for r in caplog.records)


async def test_registration_when_consul_is_down_at_start(health_server: FakeNode):
    port = health_server.port
    with ConsulDouble(min_check_interval_s=0.05) as double:
        double.stop()
        reg = ConsulRegistration(registration_config(double, port))
        await reg.start()  # does not raise: the node serves without Consul
        try:
            assert not reg.ok and not reg.registered and reg.last_error
            double.start()
            await double_until(double, lambda d: reg.service_id in d.services())
        finally:
            await reg.stop()
        assert reg.service_id not in double.services()


async def test_registration_with_a_token(health_server: FakeNode):
    port = health_server.port
    with ConsulDouble(acl_token="s3cret") as double:
        agent = ConsulAgentConfig(address=double.address, token="s3cret")
        async with ConsulRegistration(registration_config(double, port, agent=agent)) as reg:
            assert reg.ok and reg.service_id in double.services()
        bad = ConsulAgentConfig(address=double.address, token="nope")
        async with ConsulRegistration(registration_config(double, port, agent=bad)) as reg:
            assert not reg.ok and "ACL" in (reg.last_error or "")


# -- dns ---------------------------------------------------------------------------------------


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[DnsServer, int]]:
    async with serve_dns() as served:
        yield served


def dns_config(server_port: int, **kw: Any) -> DnsDiscoveryConfig:
    return DnsDiscoveryConfig(
        nameservers=("127.0.0.1",),
        nameserver_port=server_port,
        interval_s=0.05,
        timeout_s=1.0,
        backoff_max_s=0.2,
        **{"resolv_conf": None, **kw},  # the machine's resolv.conf stays out unless a test asks
    )


async def test_dns_a_records_with_a_port(dns_server):
    server, port = dns_server
    server.records[("nodes.test.", "A")] = ["10.0.0.1", "10.0.0.2"]
    async with DnsDiscovery(dns_config(port, name="nodes.test", port=50051)) as disc:
        assert disc.ok and addresses(disc.snapshot()) == {"10.0.0.1:50051", "10.0.0.2:50051"}
        server.records[("nodes.test.", "A")] = ["10.0.0.2", "10.0.0.3"]
        await until(disc, lambda s: addresses(s) == {"10.0.0.2:50051", "10.0.0.3:50051"})

        server.servfail = True
        snap = await until(disc, lambda s: not s.ok)
        assert addresses(snap) == {"10.0.0.2:50051", "10.0.0.3:50051"} and snap.last_error
        server.servfail = False
        await until(disc, lambda s: s.ok)

        del server.records[("nodes.test.", "A")]  # NXDOMAIN: no members, but DNS works
        snap = await until(disc, lambda s: not s.members)
        assert snap.ok


async def test_dns_srv_records_as_a_headless_service_gives(dns_server):
    server, port = dns_server
    name = "_grpc._tcp.nodes.gater.svc.cluster.local."
    server.records[(name, "SRV")] = [
        "0 50 50051 node-0.nodes.gater.svc.cluster.local.",
        "0 50 50052 node-1.nodes.gater.svc.cluster.local.",
    ]
    async with DnsDiscovery(dns_config(port, name=name, kind="SRV")) as disc:
        assert addresses(disc.snapshot()) == {
            "node-0.nodes.gater.svc.cluster.local:50051",
            "node-1.nodes.gater.svc.cluster.local:50052",
        }


async def test_dns_aaaa(dns_server):
    server, port = dns_server
    server.records[("v6.test.", "AAAA")] = ["::1"]
    async with DnsDiscovery(dns_config(port, name="v6.test", kind="AAAA", port=7)) as disc:
        assert addresses(disc.snapshot()) == {"[::1]:7"}


# What kubelet writes into a pod of namespace "gater" (ndots:5, the cluster's search domains).
K8S_RESOLV_CONF = """\
search gater.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
"""


async def test_dns_short_name_finds_nodes_through_the_search_domains_of_resolv_conf(dns_server, tmp_path):
    """A Kubernetes gateway asks for the headless service "gater-nodes": only
    "gater-nodes.gater.svc.cluster.local" exists, found via the search domains."""
    server, port = dns_server
    server.records[("gater-nodes.gater.svc.cluster.local.", "A")] = ["10.1.0.4", "10.1.0.5"]
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(K8S_RESOLV_CONF)
    config = dns_config(port, name="gater-nodes", port=50051, resolv_conf=str(resolv_conf))
    async with DnsDiscovery(config) as disc:
        assert disc.ok and addresses(disc.snapshot()) == {"10.1.0.4:50051", "10.1.0.5:50051"}
    # Without the search domains the short name is NXDOMAIN: no members.
    async with DnsDiscovery(dns_config(port, name="gater-nodes", port=50051)) as disc:
        assert disc.ok and not disc.snapshot().members
    # A fully qualified name is asked as it is.
    config = dns_config(port, name="gater-nodes.gater.svc.cluster.local.", port=50051, resolv_conf=str(resolv_conf))
    async with DnsDiscovery(config) as disc:
        assert addresses(disc.snapshot()) == {"10.1.0.4:50051", "10.1.0.5:50051"}


def test_dns_config_is_validated():
    with pytest.raises(DiscoveryConfigError, match="need a port"):
        DnsDiscoveryConfig(name="x", kind="A")
    with pytest.raises(DiscoveryConfigError, match="not A, AAAA or SRV"):
        DnsDiscoveryConfig(name="x", kind="MX", port=1)  # type: ignore[arg-type]


# -- a real Consul agent -------------------------------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("CONSUL_HTTP_ADDR"),
    reason="needs a real Consul agent: set CONSUL_HTTP_ADDR (and CONSUL_HTTP_TOKEN if ACLs are on)",
)
async def test_against_a_real_consul_agent():
    agent = ConsulAgentConfig(
        address=os.environ["CONSUL_HTTP_ADDR"], token=os.environ.get("CONSUL_HTTP_TOKEN") or None
    )
    service = f"gater-test-{uuid.uuid4().hex[:8]}"
    client: AsyncConsul = agent.client()
    sid = f"{service}-1"
    await client.agent.service.register(
        service,
        service_id=sid,
        address="127.0.0.1",
        port=50051,
        meta={"node_id": "n1"},
        check={"TTL": "1m", "Status": "critical"},
    )
    try:
        cfg = ConsulDiscoveryConfig(agent=agent, service=service, wait_s=5.0)
        async with ConsulDiscovery(cfg) as disc:
            assert disc.ok and disc.members() == frozenset()
            await client.agent.check.ttl_pass(f"service:{sid}")
            snap = await until(disc, lambda s: len(s.members) == 1, timeout_s=30)
            (m,) = snap.members
            assert m.address == "127.0.0.1:50051" and m.node_id == "n1"
            await client.agent.check.ttl_fail(f"service:{sid}")
            await until(disc, lambda s: not s.members, timeout_s=30)
    finally:
        await client.agent.service.deregister(sid)
