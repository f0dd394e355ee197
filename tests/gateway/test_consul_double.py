"""The Consul agent double (tests/gateway/consul_double.py) against Consul's documented HTTP API.

Covers, with plain urllib calls: service registration (PascalCase and py-consul's lowercase /
snake_case bodies), deregistration, TTL check updates, agent listings, /v1/health/service with
?passing, ?tag, ?dc and X-Consul-Index, blocking-query semantics (blocks while the index is
unchanged, wakes on a change, answers the unchanged state when `wait` elapses, index going
backwards), ACL token handling (header, ?token=, bearer; filtered reads for anonymous; 403 for
unknown tokens), real GRPC checks against a grpc health server, and the outage hooks
(pause/resume, stop/start on the same port, wipe).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from tests.gateway.conftest import FakeNode
from tests.gateway.consul_double import ConsulDouble, parse_go_duration

pytestmark = pytest.mark.timeout(30)


def call(
    double: ConsulDouble,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(double.url + path, data=data, method=method)
    if token is not None:
        req.add_header("X-Consul-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            raw = resp.read()
            code, hdrs = resp.status, dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
    try:
        return code, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return code, hdrs, raw.decode()


def register_ttl(double: ConsulDouble, sid: str, name: str = "web", port: int = 1000, **extra: Any):
    body = {
        "Name": name,
        "ID": sid,
        "Address": "10.0.0.1",
        "Port": port,
        "Check": {"TTL": "30s"},
        **extra,
    }
    code, _, _ = call(double, "PUT", "/v1/agent/service/register", body)
    assert code == 200


def test_parse_go_duration():
    assert parse_go_duration("10s") == 10
    assert parse_go_duration("1m30s") == 90
    assert parse_go_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_go_duration("10 seconds")


def test_register_lists_service_and_its_check(double):
    register_ttl(double, "web-1", Tags=["a"], Meta={"node_id": "n1"})
    code, _, services = call(double, "GET", "/v1/agent/services")
    assert code == 200
    svc = services["web-1"]
    assert svc["ID"] == "web-1" and svc["Service"] == "web" and svc["Port"] == 1000
    assert (
        svc["Address"] == "10.0.0.1" and svc["Tags"] == ["a"] and svc["Meta"] == {"node_id": "n1"}
    )
    _, _, checks = call(double, "GET", "/v1/agent/checks")
    check = checks["service:web-1"]
    assert check["Status"] == "critical"  # Consul's default initial status
    assert check["ServiceID"] == "web-1" and check["ServiceName"] == "web"
    assert check["Name"] == "Service 'web' check" and check["Type"] == "ttl"


def test_register_accepts_py_consul_lowercase_and_snake_case_keys(double):
    body = {
        "name": "web",
        "id": "w",
        "address": "127.0.0.1",
        "port": 5,
        "checks": [
            {
                "grpc": "127.0.0.1:5",
                "interval": "10s",
                "grpc_use_tls": False,
                "deregister_critical_service_after": "1m",
            },
            {"ttl": "5s"},
        ],
    }
    code, _, _ = call(double, "PUT", "/v1/agent/service/register", body)
    assert code == 200
    _, _, checks = call(double, "GET", "/v1/agent/checks")
    # several checks get ids service:<id>:<n>
    assert set(checks) == {"service:w:1", "service:w:2"}
    assert checks["service:w:1"]["Type"] == "grpc"
    assert checks["service:w:1"]["Definition"]["DeregisterCriticalServiceAfter"] == "1m"


def test_register_rejects_bad_bodies(double):
    assert call(double, "PUT", "/v1/agent/service/register", {"Port": 1})[0] == 400
    bad_check = {"Name": "x", "Check": {"GRPC": "127.0.0.1:1"}}  # no interval
    assert call(double, "PUT", "/v1/agent/service/register", bad_check)[0] == 400
    assert call(double, "GET", "/v1/agent/service/register")[0] == 405


def test_ttl_updates_and_health_passing_filter(double):
    register_ttl(double, "web-1")
    register_ttl(double, "web-2", port=1001)
    _, _, all_entries = call(double, "GET", "/v1/health/service/web")
    assert [e["Service"]["ID"] for e in all_entries] == ["web-1", "web-2"]
    _, _, passing = call(double, "GET", "/v1/health/service/web?passing=1")
    assert passing == []

    assert call(double, "PUT", "/v1/agent/check/pass/service:web-1?note=ok")[0] == 200
    body = {"Status": "passing", "Output": "fine"}
    assert call(double, "PUT", "/v1/agent/check/update/service:web-2", body)[0] == 200
    _, headers, passing = call(double, "GET", "/v1/health/service/web?passing=true")
    assert sorted(e["Service"]["ID"] for e in passing) == ["web-1", "web-2"]
    assert int(headers["X-Consul-Index"]) > 0
    entry = passing[0]
    assert entry["Node"]["Address"] == "127.0.0.1" and entry["Node"]["Datacenter"] == "dc1"
    assert {c["CheckID"] for c in entry["Checks"]} == {"serfHealth", "service:web-1"}
    assert next(c for c in entry["Checks"] if c["CheckID"] == "service:web-1")["Output"] == "ok"

    assert call(double, "PUT", "/v1/agent/check/warn/service:web-1")[0] == 200
    _, _, passing = call(double, "GET", "/v1/health/service/web?passing")
    assert [e["Service"]["ID"] for e in passing] == ["web-2"]  # warning is not passing
    assert call(double, "PUT", "/v1/agent/check/fail/service:web-2")[0] == 200
    assert call(double, "GET", "/v1/health/service/web?passing=1")[2] == []
    assert call(double, "GET", "/v1/health/service/web?passing=maybe")[0] == 400
    assert call(double, "PUT", "/v1/agent/check/pass/nope")[0] == 404
    bad = {"Status": "fine"}
    assert call(double, "PUT", "/v1/agent/check/update/service:web-1", bad)[0] == 400


def test_tag_and_dc_filters(double):
    register_ttl(double, "a", Tags=["blue", "x"])
    register_ttl(double, "b", Tags=["green"])
    _, _, entries = call(double, "GET", "/v1/health/service/web?tag=blue")
    assert [e["Service"]["ID"] for e in entries] == ["a"]
    _, _, entries = call(double, "GET", "/v1/health/service/web?tag=blue&tag=green")
    assert entries == []
    assert call(double, "GET", "/v1/health/service/web?dc=dc1")[0] == 200
    code, _, body = call(double, "GET", "/v1/health/service/web?dc=elsewhere")
    assert code == 500 and "No path to datacenter" in body


def test_unknown_service_is_an_empty_list_with_an_index(double):
    code, headers, body = call(double, "GET", "/v1/health/service/nothing")
    assert code == 200 and body == [] and int(headers["X-Consul-Index"]) >= 1


def test_deregister(double):
    register_ttl(double, "web-1")
    assert call(double, "PUT", "/v1/agent/service/deregister/web-1")[0] == 200
    assert call(double, "GET", "/v1/agent/services")[2] == {}
    assert call(double, "GET", "/v1/agent/checks")[2] == {}
    code, _, body = call(double, "PUT", "/v1/agent/service/deregister/web-1")
    assert code == 404 and "Unknown service ID" in body


def test_pass_on_a_non_ttl_check_is_an_error(double):
    body = {"Name": "g", "Check": {"GRPC": "127.0.0.1:1", "Interval": "10s"}}
    call(double, "PUT", "/v1/agent/service/register", body)
    code, _, text = call(double, "PUT", "/v1/agent/check/pass/service:g")
    assert code == 500 and "does not have associated TTL" in text


def test_index_changes_on_registration_and_status_change(double):
    i0 = int(call(double, "GET", "/v1/health/service/web")[1]["X-Consul-Index"])
    register_ttl(double, "web-1")
    i1 = int(call(double, "GET", "/v1/health/service/web")[1]["X-Consul-Index"])
    double.set_check_status("service:web-1", "passing")
    i2 = int(call(double, "GET", "/v1/health/service/web")[1]["X-Consul-Index"])
    double.set_check_status("service:web-1", "passing")  # no change: same index
    i3 = int(call(double, "GET", "/v1/health/service/web")[1]["X-Consul-Index"])
    assert i0 < i1 < i2 == i3


def test_blocking_query_waits_for_a_change(double):
    register_ttl(double, "web-1")
    _, headers, _ = call(double, "GET", "/v1/health/service/web")
    index = int(headers["X-Consul-Index"])
    result: dict[str, Any] = {}
    seen = len(double.requests)

    def blocking() -> None:
        result["answer"] = call(double, "GET", f"/v1/health/service/web?index={index}&wait=20s")

    t = threading.Thread(target=blocking)
    t.start()
    # The query has reached the double before the change is made, so it must block and wake.
    assert double.wait_for(lambda d: len(d.requests) > seen)
    double.set_check_status("service:web-1", "passing")
    t.join(20)
    code, headers, entries = result["answer"]
    assert code == 200 and int(headers["X-Consul-Index"]) > index
    assert entries[0]["Checks"][1]["Status"] == "passing"


def test_blocking_query_answers_unchanged_state_when_wait_elapses(double):
    register_ttl(double, "web-1")
    _, headers, before = call(double, "GET", "/v1/health/service/web")
    index = headers["X-Consul-Index"]
    _, headers, after = call(double, "GET", f"/v1/health/service/web?index={index}&wait=100ms")
    assert headers["X-Consul-Index"] == index and after == before


def test_blocking_query_parameters_are_validated(double):
    assert call(double, "GET", "/v1/health/service/web?index=abc")[0] == 400
    assert call(double, "GET", "/v1/health/service/web?index=1&wait=forever")[0] == 400


def test_index_can_go_backwards(double):
    register_ttl(double, "web-1")
    register_ttl(double, "web-2")
    double.reset_index(1)
    _, headers, entries = call(double, "GET", "/v1/health/service/web")
    assert headers["X-Consul-Index"] == "1" and len(entries) == 2


def test_status_leader(double):
    code, _, leader = call(double, "GET", "/v1/status/leader")
    assert code == 200 and leader == "127.0.0.1:8300"


def test_acl_tokens():
    with ConsulDouble(acl_token="s3cret") as double:
        reg = {"Name": "web", "ID": "w", "Port": 1, "Check": {"TTL": "10s", "Status": "passing"}}
        code, _, body = call(double, "PUT", "/v1/agent/service/register", reg)
        assert code == 403 and "Permission denied" in body
        code, _, body = call(double, "PUT", "/v1/agent/service/register", reg, token="wrong")
        assert code == 403 and body == "ACL not found"
        assert call(double, "PUT", "/v1/agent/service/register", reg, token="s3cret")[0] == 200

        # anonymous reads are filtered, not refused
        code, headers, entries = call(double, "GET", "/v1/health/service/web")
        assert code == 200 and entries == []
        assert headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
        assert call(double, "GET", "/v1/health/service/web", token="wrong")[0] == 403
        assert len(call(double, "GET", "/v1/health/service/web", token="s3cret")[2]) == 1
        assert len(call(double, "GET", "/v1/health/service/web?token=s3cret")[2]) == 1
        bearer = {"Authorization": "Bearer s3cret"}
        assert len(call(double, "GET", "/v1/health/service/web", headers=bearer)[2]) == 1
        assert call(double, "GET", "/v1/agent/services", token="s3cret")[2].keys() == {"w"}
        assert call(double, "GET", "/v1/agent/services")[2] == {}
        last = double.requests[-1]
        assert (last.method, last.path, last.token) == ("GET", "/v1/agent/services", None)


def test_pause_and_resume(double):
    double.pause()
    code, _, body = call(double, "GET", "/v1/health/service/web")
    assert code == 500 and body == "No cluster leader"
    assert call(double, "GET", "/v1/status/leader")[2] == ""
    register_ttl(double, "web-1")  # the agent's own endpoints work without a leader
    double.resume()
    assert call(double, "GET", "/v1/health/service/web")[0] == 200


def test_stop_refuses_connections_and_start_reuses_the_port(double):
    register_ttl(double, "web-1")
    port = double.port
    double.stop()
    with pytest.raises(urllib.error.URLError):
        call(double, "GET", "/v1/status/leader")
    double.start()
    assert double.port == port
    assert "web-1" in call(double, "GET", "/v1/agent/services")[2]  # state survives
    double.wipe()
    assert call(double, "GET", "/v1/agent/services")[2] == {}


def test_stop_cuts_a_blocking_query(double):
    index = call(double, "GET", "/v1/health/service/web")[1]["X-Consul-Index"]
    errors: list[BaseException] = []
    seen = len(double.requests)

    def blocking() -> None:
        try:
            call(double, "GET", f"/v1/health/service/web?index={index}&wait=60s")
        except Exception as e:  # the connection is dropped without an answer
            errors.append(e)

    t = threading.Thread(target=blocking)
    t.start()
    assert double.wait_for(lambda d: len(d.requests) > seen)
    double.stop()
    t.join(20)
    assert not t.is_alive() and errors


def test_grpc_check_is_run_against_the_target(double, health_server: FakeNode):
    port = health_server.port
    body = {
        "Name": "node",
        "ID": "node-1",
        "Address": "127.0.0.1",
        "Port": port,
        "Check": {
            "GRPC": f"127.0.0.1:{port}",
            "GRPCUseTLS": False,
            "Interval": "1s",
            "Timeout": "1s",
            "DeregisterCriticalServiceAfter": "1m",
        },
    }
    assert call(double, "PUT", "/v1/agent/service/register", body)[0] == 200

    def status(d: ConsulDouble) -> str:
        return d.checks()["service:node-1"].status

    assert double.wait_for(lambda d: status(d) == "passing")
    assert len(call(double, "GET", "/v1/health/service/node?passing=1")[2]) == 1
    health_server.set(health_pb2.HealthCheckResponse.NOT_SERVING)
    assert double.wait_for(lambda d: status(d) == "critical")
    assert "NOT_SERVING" in double.checks()["service:node-1"].output
    assert call(double, "GET", "/v1/health/service/node?passing=1")[2] == []


def test_grpc_check_of_an_unreachable_target_is_critical(double, health_server: FakeNode):
    port = health_server.port
    body = {
        "Name": "node",
        "ID": "n",
        "Port": port,
        "Check": {
            "GRPC": f"127.0.0.1:{port}/exesdb.v1.Streams",
            "Interval": "1s",
            "Timeout": "1s",
            "Status": "passing",
        },
    }
    call(double, "PUT", "/v1/agent/service/register", body)
    # the named service is unknown to the health servicer: NOT_FOUND → critical
    assert double.wait_for(lambda d: d.checks()["service:n"].status == "critical")
