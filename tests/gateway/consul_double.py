"""A Consul agent double for tests: a real HTTP server on 127.0.0.1 speaking Consul's HTTP API.

Owns: the subset of https://developer.hashicorp.com/consul/api-docs that gater uses, served by
a stdlib ThreadingHTTPServer in a thread, so sync and async tests can both use it:

- PUT /v1/agent/service/register (Check / Checks: GRPC, TTL; keys are matched like Consul's
  decoder does: case-insensitive, snake_case aliases), PUT /v1/agent/service/deregister/<id>
- PUT /v1/agent/check/register, /v1/agent/check/deregister/<id>,
  /v1/agent/check/pass|warn|fail/<id> (?note=), /v1/agent/check/update/<id> ({Status, Output})
- GET /v1/agent/services, /v1/agent/service/<id>, /v1/agent/checks
- GET /v1/health/service/<name>?passing&tag=&dc=&index=&wait= with X-Consul-Index and blocking
  queries (block while the index is <= the given one, `wait` default 5m, capped at 10m, plus
  up to wait/16 of jitter, as documented)
- GET /v1/status/leader
- ACLs when `acl_token` is set: default deny; an unknown token is 403 "ACL not found"; the
  anonymous token gets reads filtered to nothing (X-Consul-Results-Filtered-By-ACLs: true) and
  403 "Permission denied" on writes, as a real agent with default_policy=deny does.

GRPC checks are really run (grpc.health.v1.Health/Check at the interval, in a thread per
check). Test hooks: set_check_status(), stop()/start() on the same port (outage), pause()/
resume() (no cluster leader: health queries answer 500), wipe() (agent restarted without its state),
reset_index() (the index goes backwards, as after a snapshot restore), wait_for().

Not modelled: several nodes, catalog endpoints, KV, sessions, DeregisterCriticalServiceAfter
reaping (it is stored and shown), HTTP/TCP/script checks (stored, left critical).
Must not import gater: it doubles a third-party server.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["ConsulDouble", "DoubleCheck", "DoubleService", "Request", "parse_go_duration"]

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
_STATUSES = (PASSING, WARNING, CRITICAL)
DEFAULT_WAIT_S = 300.0
MAX_WAIT_S = 600.0
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str | int | float) -> float:
    """A Go duration ("10s", "1m30s", "250ms") in seconds; a bare number is nanoseconds."""
    if isinstance(text, int | float):
        return float(text) / 1e9
    text = text.strip()
    if text in ("", "0"):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"time: invalid duration {text!r}")
    return total


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


def _get(body: dict[str, Any], *names: str, default: Any = None) -> Any:
    """Consul decodes JSON case-insensitively and accepts snake_case aliases."""
    wanted = {_norm(n) for n in names}
    for k, v in body.items():
        if _norm(k) in wanted:
            return v
    return default


@dataclass(frozen=True)
class Request:
    """One request the double received."""

    method: str
    path: str
    query: dict[str, list[str]]
    token: str | None


@dataclass
class DoubleCheck:
    check_id: str
    name: str
    status: str
    service_id: str = ""
    service_name: str = ""
    service_tags: list[str] = field(default_factory=list)
    output: str = ""
    notes: str = ""
    type: str = ""
    grpc: str = ""
    grpc_use_tls: bool = False
    interval_s: float = 0.0
    timeout_s: float = 10.0
    ttl_s: float = 0.0
    deregister_after: str = ""
    create_index: int = 0
    modify_index: int = 0
    ttl_deadline: float | None = None

    def to_json(self, node: str) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        if self.type in ("grpc", "ttl"):
            definition = {
                "Interval": _fmt(self.interval_s),
                "Timeout": _fmt(self.timeout_s),
                "DeregisterCriticalServiceAfter": self.deregister_after or "0s",
            }
        return {
            "Node": node,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": self.notes,
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": list(self.service_tags),
            "Type": self.type,
            "Interval": _fmt(self.interval_s) if self.interval_s else "",
            "Timeout": _fmt(self.timeout_s) if self.type == "grpc" else "",
            "ExposedPort": 0,
            "Definition": definition,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class DoubleService:
    id: str
    service: str
    address: str = ""
    port: int = 0
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0

    def to_json(self, datacenter: str, *, with_indexes: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ID": self.id,
            "Service": self.service,
            "Tags": list(self.tags),
            "Meta": dict(self.meta),
            "Port": self.port,
            "Address": self.address,
            "TaggedAddresses": {},
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": datacenter,
        }
        if with_indexes:
            out["CreateIndex"] = self.create_index
            out["ModifyIndex"] = self.modify_index
        return out


def _fmt(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


class _HttpError(Exception):
    def __init__(self, code: int, body: str) -> None:
        super().__init__(body)
        self.code = code
        self.body = body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ConsulDouble:
    """One Consul agent (one node) with its catalog and health, on 127.0.0.1:<port>."""

    def __init__(
        self,
        *,
        acl_token: str | None = None,
        datacenter: str = "dc1",
        node_name: str = "consul-double",
        node_address: str = "127.0.0.1",
        run_checks: bool = True,
        min_check_interval_s: float = 1.0,
        jitter: bool = True,
    ) -> None:
        """`acl_token`: when set, ACLs are on (default deny) and this is the only valid token.
        `min_check_interval_s`: Consul raises intervals below 1s to 1s; tests may lower it.
        `run_checks`: run GRPC checks and TTL expiry; False leaves statuses to the test."""
        self.acl_token = acl_token
        self.datacenter = datacenter
        self.node_name = node_name
        self.node_address = node_address
        self.node_id = str(uuid.uuid4())
        self.run_checks = run_checks
        self.min_check_interval_s = min_check_interval_s
        self.jitter = jitter
        self._cond = threading.Condition()
        self._index = 1
        self._services: dict[str, DoubleService] = {}
        self._checks: dict[str, DoubleCheck] = {}
        self._runners: dict[str, threading.Event] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._paused = False
        self._stopping = False
        self._open: set[socket.socket] = set()
        self.requests: list[Request] = []
        """Every request received, in order, for assertions."""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ConsulDouble:
        """Serve on 127.0.0.1: a free port the first time, the same port on a restart."""
        with self._cond:
            if self._server is not None:
                return self
            self._stopping = False
        server = _Server(("127.0.0.1", self._port), self._handler_class())
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"consul-double-{self._port}",
        )
        self._thread.start()
        with self._cond:
            for check in self._checks.values():
                self._start_runner(check)
        return self

    def stop(self) -> None:
        """Stop answering (connection refused); in-flight requests are cut. Idempotent."""
        server = self._server
        if server is None:
            return
        with self._cond:
            self._stopping = True
            self._server = None
            for ev in self._runners.values():
                ev.set()
            self._runners.clear()
            self._cond.notify_all()
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ConsulDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        """host:port, as CONSUL_HTTP_ADDR spells it."""
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- test hooks --------------------------------------------------------------------------

    def pause(self) -> None:
        """Lose the cluster leader until resume(): /v1/health/* answers 500 "No cluster
        leader" (blocking queries in flight too), /v1/status/leader answers "", and the
        agent's local endpoints (register, checks, agent listings) keep working."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    @property
    def index(self) -> int:
        with self._cond:
            return self._index

    def reset_index(self, to: int = 1) -> None:
        """Make the index go backwards (as after a Consul snapshot restore)."""
        with self._cond:
            self._index = to
            self._cond.notify_all()

    def wipe(self) -> None:
        """Forget every service and check (an agent restarted without its data dir)."""
        with self._cond:
            for ev in self._runners.values():
                ev.set()
            self._runners.clear()
            self._services.clear()
            self._checks.clear()
            self._bump()

    def set_check_status(self, check_id: str, status: str, output: str = "") -> None:
        """Force a check's status, as if it had just run."""
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}")
        with self._cond:
            check = self._checks[check_id]
            self._set_status(check, status, output)

    def services(self) -> dict[str, DoubleService]:
        with self._cond:
            return dict(self._services)

    def checks(self) -> dict[str, DoubleCheck]:
        with self._cond:
            return dict(self._checks)

    def wait_for(self, predicate: Callable[[ConsulDouble], bool], timeout_s: float = 10.0) -> bool:
        """Block until predicate(self) holds (re-checked on every change); False on timeout.
        From async code: `await asyncio.to_thread(double.wait_for, pred)`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if predicate(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    # -- state changes (hold self._cond) -----------------------------------------------------

    def _bump(self) -> int:
        self._index += 1
        self._cond.notify_all()
        return self._index

    def _set_status(self, check: DoubleCheck, status: str, output: str) -> None:
        if check.ttl_s:
            check.ttl_deadline = time.monotonic() + check.ttl_s
        check.output = output
        if check.status != status:
            check.status = status
            check.modify_index = self._bump()

    def _register_service(self, body: dict[str, Any], replace_checks: bool) -> None:
        name = _get(body, "Name")
        if not name or not isinstance(name, str):
            raise _HttpError(400, "Missing service name")
        sid = _get(body, "ID") or name
        port = _get(body, "Port", default=0) or 0
        if not isinstance(port, int):
            raise _HttpError(400, "Request decode failed: Port must be a number")
        tags = list(_get(body, "Tags", default=None) or [])
        meta = dict(_get(body, "Meta", default=None) or {})
        check_bodies: list[dict[str, Any]] = []
        single = _get(body, "Check")
        if single:
            check_bodies.append(single)
        check_bodies.extend(_get(body, "Checks", default=None) or [])
        new_checks: list[DoubleCheck] = []
        for i, cb in enumerate(check_bodies):
            cid = _get(cb, "CheckID", "ID") or (
                f"service:{sid}" + (f":{i + 1}" if len(check_bodies) > 1 else "")
            )
            new_checks.append(self._make_check(cb, cid, f"Service '{name}' check", sid, name, tags))
        prev = self._services.get(sid)
        idx = self._bump()
        self._services[sid] = DoubleService(
            id=sid,
            service=name,
            address=_get(body, "Address", default="") or "",
            port=port,
            tags=tags,
            meta={str(k): str(v) for k, v in meta.items()},
            create_index=prev.create_index if prev else idx,
            modify_index=idx,
        )
        keep = {c.check_id for c in new_checks}
        if replace_checks:
            for cid in [c for c, ch in self._checks.items() if ch.service_id == sid]:
                if cid not in keep:
                    self._remove_check(cid)
        for check in new_checks:
            self._add_check(check)

    def _make_check(
        self,
        cb: dict[str, Any],
        cid: str,
        default_name: str,
        sid: str,
        sname: str,
        tags: list[str],
    ) -> DoubleCheck:
        try:
            interval = parse_go_duration(_get(cb, "Interval", default="") or "")
            timeout = parse_go_duration(_get(cb, "Timeout", default="") or "") or 10.0
            ttl = parse_go_duration(_get(cb, "TTL", default="") or "")
        except ValueError as e:
            raise _HttpError(400, f"Request decode failed: {e}") from None
        grpc_target = _get(cb, "GRPC", default="") or ""
        if grpc_target:
            if interval <= 0:
                raise _HttpError(
                    400,
                    "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or GRPC checks",
                )
            kind = "grpc"
        elif ttl:
            kind = "ttl"
        elif _get(cb, "HTTP") or _get(cb, "TCP") or _get(cb, "Args", "ScriptArgs"):
            kind = "http" if _get(cb, "HTTP") else ("tcp" if _get(cb, "TCP") else "script")
        else:
            raise _HttpError(400, "Invalid check: TTL must be > 0 for TTL checks")
        status = _get(cb, "Status", default="") or CRITICAL
        if status not in _STATUSES:
            raise _HttpError(400, f"Invalid check status: {status!r}")
        return DoubleCheck(
            check_id=cid,
            name=_get(cb, "Name") or default_name,
            status=status,
            service_id=sid,
            service_name=sname,
            service_tags=list(tags),
            notes=_get(cb, "Notes", default="") or "",
            type=kind,
            grpc=grpc_target,
            grpc_use_tls=bool(_get(cb, "GRPCUseTLS", default=False)),
            interval_s=interval,
            timeout_s=timeout,
            ttl_s=ttl,
            deregister_after=_get(cb, "DeregisterCriticalServiceAfter", default="") or "",
        )

    def _add_check(self, check: DoubleCheck) -> None:
        prev = self._checks.get(check.check_id)
        if prev is not None and prev.type == check.type:
            # Consul keeps the last status of a check that is registered again.
            check.status, check.output = prev.status, prev.output
        self._remove_check(check.check_id, bump=False)
        idx = self._bump()
        check.create_index = prev.create_index if prev else idx
        check.modify_index = idx
        if check.ttl_s:
            check.ttl_deadline = time.monotonic() + check.ttl_s
        self._checks[check.check_id] = check
        if self._server is not None:
            self._start_runner(check)

    def _remove_check(self, check_id: str, *, bump: bool = True) -> None:
        ev = self._runners.pop(check_id, None)
        if ev is not None:
            ev.set()
        if self._checks.pop(check_id, None) is not None and bump:
            self._bump()

    # -- check runners -----------------------------------------------------------------------

    def _start_runner(self, check: DoubleCheck) -> None:
        if not self.run_checks or check.type not in ("grpc", "ttl"):
            return
        stop = threading.Event()
        self._runners[check.check_id] = stop
        target = self._run_grpc if check.type == "grpc" else self._run_ttl
        threading.Thread(
            target=target, args=(check, stop), daemon=True, name=f"check-{check.check_id}"
        ).start()

    def _run_grpc(self, check: DoubleCheck, stop: threading.Event) -> None:
        interval = max(check.interval_s, self.min_check_interval_s)
        addr, _, svc = check.grpc.partition("/")
        if check.grpc_use_tls:
            channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials())
        else:
            channel = grpc.insecure_channel(addr)
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            # Consul staggers the first run randomly within one interval.
            if stop.wait(random.uniform(0, interval) if self.jitter else 0):
                return
            while not stop.is_set():
                try:
                    resp = stub.Check(
                        health_pb2.HealthCheckRequest(service=svc), timeout=check.timeout_s
                    )
                    serving = resp.status == health_pb2.HealthCheckResponse.SERVING
                    status = PASSING if serving else CRITICAL
                    name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
                    output = (
                        f"gRPC check {check.grpc}: success"
                        if serving
                        else f"gRPC check {check.grpc}: failed with status {name}"
                    )
                except grpc.RpcError as e:
                    status, output = CRITICAL, f"gRPC check {check.grpc}: failed: {e.code()}"
                with self._cond:
                    if stop.is_set():
                        return
                    self._set_status(check, status, output)
                stop.wait(interval)
        finally:
            channel.close()

    def _run_ttl(self, check: DoubleCheck, stop: threading.Event) -> None:
        while not stop.wait(min(check.ttl_s / 4, 0.5)):
            with self._cond:
                if stop.is_set():
                    return
                deadline = check.ttl_deadline
                if deadline is not None and time.monotonic() > deadline:
                    check.ttl_deadline = None
                    self._set_status(check, CRITICAL, "TTL expired")

    # -- HTTP --------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with double._cond:
                    double._open.add(self.connection)

            def finish(self) -> None:
                with double._cond:
                    double._open.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

            def _dispatch(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                token = self.headers.get("X-Consul-Token")
                auth = self.headers.get("Authorization", "")
                if not token and auth.lower().startswith("bearer "):
                    token = auth[7:].strip()
                if not token and "token" in query:
                    token = query["token"][0]
                with double._cond:
                    double.requests.append(
                        Request(method, unquote(parts.path), query, token or None)
                    )
                    double._cond.notify_all()
                try:
                    code, body, headers = double._route(
                        method, unquote(parts.path), query, raw, token or None
                    )
                except _HttpError as e:
                    code, body, headers = e.code, e.body, {}
                except _Cut:
                    self.close_connection = True
                    return
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(code)
                ctype = "application/json" if code == 200 and data else "text/plain; charset=utf-8"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

        return Handler

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], raw: bytes, token: str | None
    ) -> tuple[int, str, dict[str, str]]:
        with self._cond:
            if self._stopping:
                raise _Cut
            paused = self._paused
        if path == "/v1/status/leader":
            self._method(method, "GET")
            return 200, json.dumps("" if paused else "127.0.0.1:8300"), {}
        if paused and path.startswith("/v1/health/"):
            # agent endpoints are local and keep working; server queries need a leader
            raise _HttpError(500, "No cluster leader")
        anonymous = self._acl(token)
        routes: list[tuple[str, str, Callable[..., tuple[int, str, dict[str, str]]]]] = [
            ("PUT", "/v1/agent/service/register", self._h_register),
            ("PUT", "/v1/agent/service/deregister/", self._h_deregister),
            ("PUT", "/v1/agent/check/register", self._h_check_register),
            ("PUT", "/v1/agent/check/deregister/", self._h_check_deregister),
            ("PUT", "/v1/agent/check/pass/", self._h_ttl),
            ("PUT", "/v1/agent/check/warn/", self._h_ttl),
            ("PUT", "/v1/agent/check/fail/", self._h_ttl),
            ("PUT", "/v1/agent/check/update/", self._h_ttl),
            ("GET", "/v1/agent/services", self._h_services),
            ("GET", "/v1/agent/service/", self._h_service),
            ("GET", "/v1/agent/checks", self._h_checks),
            ("GET", "/v1/health/service/", self._h_health),
        ]
        for want_method, prefix, handler in routes:
            exact = not prefix.endswith("/")
            if (exact and path == prefix) or (not exact and path.startswith(prefix)):
                self._method(method, want_method)
                arg = "" if exact else path[len(prefix) :]
                return handler(arg=arg, query=query, raw=raw, anonymous=anonymous, path=path)
        raise _HttpError(404, "404 page not found\n")

    @staticmethod
    def _method(method: str, want: str) -> None:
        if method != want and not (want == "PUT" and method == "POST"):
            raise _HttpError(405, f"method {method} not allowed")

    def _acl(self, token: str | None) -> bool:
        """True when the request runs as the anonymous token under default deny."""
        if self.acl_token is None:
            return False
        if token is None or token == "anonymous":
            return True
        if token != self.acl_token:
            raise _HttpError(403, "ACL not found")
        return False

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError as e:
            raise _HttpError(400, f"Request decode failed: {e}") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "Request decode failed: expected an object")
        return body

    def _h_register(self, *, query, raw, anonymous, **_: Any):
        body = self._json(raw)
        if anonymous:
            name = _get(body, "Name")
            raise _HttpError(
                403,
                f"Permission denied: anonymous token lacks permission 'service:write' on \"{name}\"",
            )
        replace = query.get("replace-existing-checks", ["false"])[0].lower() in ("1", "true", "")
        with self._cond:
            self._register_service(body, replace)
        return 200, "", {}

    def _h_deregister(self, *, arg, anonymous, **_: Any):
        with self._cond:
            svc = self._services.get(arg)
            if svc is None:
                raise _HttpError(
                    404,
                    f'Unknown service ID "{arg}". Ensure that the service ID is passed, '
                    "not the service name.",
                )
            if anonymous:
                raise _HttpError(
                    403,
                    "Permission denied: anonymous token lacks permission 'service:write' "
                    f'on "{svc.service}"',
                )
            for cid in [c for c, ch in self._checks.items() if ch.service_id == arg]:
                self._remove_check(cid, bump=False)
            del self._services[arg]
            self._bump()
        return 200, "", {}

    def _h_check_register(self, *, raw, anonymous, **_: Any):
        body = self._json(raw)
        if anonymous:
            raise _HttpError(
                403, "Permission denied: anonymous token lacks permission 'node:write'"
            )
        with self._cond:
            sid = _get(body, "ServiceID", default="") or ""
            svc = self._services.get(sid)
            if sid and svc is None:
                raise _HttpError(404, f'ServiceID "{sid}" does not exist')
            name = _get(body, "Name") or ""
            check = self._make_check(
                body,
                _get(body, "CheckID", "ID") or name,
                name,
                sid,
                svc.service if svc else "",
                svc.tags if svc else [],
            )
            self._add_check(check)
        return 200, "", {}

    def _h_check_deregister(self, *, arg, anonymous, **_: Any):
        if anonymous:
            raise _HttpError(
                403, "Permission denied: anonymous token lacks permission 'node:write'"
            )
        with self._cond:
            if arg not in self._checks:
                raise _HttpError(404, f'Unknown check ID "{arg}"')
            self._remove_check(arg)
        return 200, "", {}

    def _h_ttl(self, *, arg, query, raw, anonymous, path, **_: Any):
        verb = path.split("/")[4]
        if verb == "update":
            body = self._json(raw)
            status = _get(body, "Status", default="") or ""
            output = _get(body, "Output", default="") or ""
            if status not in _STATUSES:
                raise _HttpError(400, f'Invalid check status: "{status}"')
        else:
            status = {"pass": PASSING, "warn": WARNING, "fail": CRITICAL}[verb]
            output = query.get("note", [""])[0]
        if anonymous:
            raise _HttpError(
                403, "Permission denied: anonymous token lacks permission 'node:write'"
            )
        with self._cond:
            check = self._checks.get(arg)
            if check is None:
                raise _HttpError(404, f'Unknown check ID "{arg}"')
            if check.type != "ttl":
                raise _HttpError(500, f'CheckID "{arg}" does not have associated TTL')
            self._set_status(check, status, output)
        return 200, "", {}

    def _filtered(self, anonymous: bool) -> dict[str, str]:
        return {"X-Consul-Results-Filtered-By-ACLs": "true"} if anonymous else {}

    def _h_services(self, *, anonymous, **_: Any):
        with self._cond:
            out = (
                {}
                if anonymous
                else {
                    sid: s.to_json(self.datacenter, with_indexes=False)
                    for sid, s in self._services.items()
                }
            )
        return 200, json.dumps(out), self._filtered(anonymous and bool(self._services))

    def _h_service(self, *, arg, anonymous, **_: Any):
        with self._cond:
            svc = self._services.get(arg)
            if svc is None:
                raise _HttpError(404, f"unknown service ID: {arg}")
            if anonymous:
                raise _HttpError(403, "Permission denied")
            return 200, json.dumps(svc.to_json(self.datacenter, with_indexes=False)), {}

    def _h_checks(self, *, anonymous, **_: Any):
        with self._cond:
            out = (
                {}
                if anonymous
                else {cid: c.to_json(self.node_name) for cid, c in self._checks.items()}
            )
        return 200, json.dumps(out), self._filtered(anonymous and bool(self._checks))

    def _h_health(self, *, arg, query, anonymous, **_: Any):
        service = arg
        dc = query.get("dc", [""])[0]
        if dc and dc != self.datacenter:
            raise _HttpError(500, "No path to datacenter")
        passing = False
        if "passing" in query:
            value = query["passing"][0].lower()
            if value in ("", "1", "t", "true"):
                passing = True
            elif value not in ("0", "f", "false"):
                raise _HttpError(400, "Invalid value for ?passing")
        tags = query.get("tag", [])
        try:
            min_index = int(query.get("index", ["0"])[0] or 0)
        except ValueError:
            raise _HttpError(400, "Invalid index") from None
        try:
            wait_s = parse_go_duration(query["wait"][0]) if "wait" in query else DEFAULT_WAIT_S
        except ValueError:
            raise _HttpError(400, "Invalid wait time") from None
        wait_s = min(wait_s or DEFAULT_WAIT_S, MAX_WAIT_S)
        if self.jitter:
            wait_s += random.uniform(0, wait_s / 16)
        with self._cond:
            if min_index > 0:
                deadline = time.monotonic() + wait_s
                while self._index <= min_index and not (self._stopping or self._paused):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            if self._stopping:
                raise _Cut
            if self._paused:
                raise _HttpError(500, "No cluster leader")
            entries = [] if anonymous else self._health_entries(service, passing, tags)
            index = self._index
        headers = {
            "X-Consul-Index": str(index),
            "X-Consul-KnownLeader": "true",
            "X-Consul-LastContact": "0",
        }
        headers.update(self._filtered(anonymous and bool(self._services)))
        return 200, json.dumps(entries), headers

    def _health_entries(self, service: str, passing: bool, tags: list[str]) -> list[dict[str, Any]]:
        node = {
            "ID": self.node_id,
            "Node": self.node_name,
            "Address": self.node_address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }
        serf = {
            "Node": self.node_name,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": PASSING,
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }
        out = []
        for svc in sorted(self._services.values(), key=lambda s: s.id):
            if svc.service != service or not all(t in svc.tags for t in tags):
                continue
            checks = [serf] + [
                c.to_json(self.node_name) for c in self._checks.values() if c.service_id == svc.id
            ]
            if passing and any(c["Status"] != PASSING for c in checks):
                continue
            out.append(
                {
                    "Node": node,
                    "Service": svc.to_json(self.datacenter, with_indexes=True),
                    "Checks": checks,
                }
            )
        return out


class _Cut(Exception):
    """The double is stopping: drop the connection without an answer."""
