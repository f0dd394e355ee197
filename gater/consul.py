"""The Consul agent, as nodes (registration) and gateways (discovery) both talk to it.

Owns: `ConsulAgentConfig` (how to reach the local agent, Consul's CONSUL_HTTP_* conventions),
`AsyncConsul` — py-consul's API (`health.service`, `agent.service.register`, …) over a small
stdlib HTTP/1.1 transport instead of aiohttp — `ConsulUnreachableError`,
`parse_consul_address`, `describe` (an error as one log/status line) and `DEFAULT_SERVICE_NAME`.

Why a transport of our own: py-consul's asyncio client (`consul.aio`) needs aiohttp, which
gater does not depend on. py-consul's API classes only call `http.get/put/delete/post(callback,
path, params, …)`, so a transport whose methods are coroutines gives the same awaitable API.
One request per connection (Connection: close) keeps it simple and cancellable; a blocking
query holds its connection for up to `wait` anyway.

Connection-level failures (refused, reset, timeout, malformed answer) become
`ConsulUnreachableError` here and nowhere else; Consul's own HTTP errors stay py-consul's
(`ACLPermissionDenied`, `ConsulException`, …).
Must not read os.environ (py-consul's base reads CONSUL_HTTP_* when host/port/token are not
given, so they are always given and the token is set again after construction).
Shared by nodes and gateways: must not import gater.store, gater.subscriptions, gater.node or
gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import http.client
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import consul.base
from consul import ACLDisabled, ACLPermissionDenied, ConsulException

from .config import ConfigError, parse_host_port

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "AsyncConsul",
    "ConsulAgentConfig",
    "ConsulUnreachableError",
    "describe",
    "parse_consul_address",
]

DEFAULT_SERVICE_NAME = "exesdb-gater"
"""The Consul service nodes register under and gateways look for."""
DEFAULT_WAIT_S = 300.0
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024


class ConsulUnreachableError(ConsulException):
    """The Consul agent could not be reached or did not answer in time."""


def parse_consul_address(text: str, *, source: str = "CONSUL_HTTP_ADDR") -> tuple[str, str, int]:
    """Consul's CONSUL_HTTP_ADDR convention, "host:port" or "http(s)://host:port", →
    (scheme, host, port). The port defaults to 8500 (http) or 8501 (https)."""
    text = text.strip()
    scheme = "http"
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigError(source, f"scheme {scheme!r} is not supported (use http:// or https://)")
        text = text.rstrip("/")
    default_port = 8501 if scheme == "https" else 8500
    host, port = parse_host_port(text, source=source, default_port=default_port)
    return scheme, host, port


def _go_duration_s(text: str) -> float:
    total, num = 0.0, ""
    units = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] == "ms" else c
        total += float(num or 0) * units.get(unit, 1.0)
        num = ""
        i += len(unit)
    return total


class _Transport(consul.base.HTTPClient):
    """py-consul HTTPClient whose get/put/delete/post return coroutines."""

    def __init__(
        self,
        host: str,
        port: int,
        scheme: str,
        verify: bool | str,
        cert: Any,
        *,
        timeout_s: float,
    ) -> None:
        super().__init__(host, port, scheme, verify, cert)
        self._timeout_s = timeout_s
        self._ssl: ssl.SSLContext | None = None
        if scheme == "https":
            ctx = ssl.create_default_context()
            if isinstance(verify, str):
                ctx.load_verify_locations(verify)
            elif not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(*cert) if isinstance(cert, tuple) else ctx.load_cert_chain(cert)
            self._ssl = ctx

    def _timeout(self, params: Any) -> float:
        p = dict(params or ())
        if "index" not in p:
            return self._timeout_s
        # A blocking query answers after its wait plus up to wait/16 of jitter.
        wait = _go_duration_s(str(p["wait"])) if "wait" in p else DEFAULT_WAIT_S
        return self._timeout_s + wait + wait / 16

    async def _request(
        self,
        callback: Any,
        method: str,
        path: str,
        params: Any,
        headers: Any,
        data: Any,
        raw: bool = False,
    ) -> Any:
        target = urllib.parse.quote(path, safe="/:")
        if params:
            target += "?" + urllib.parse.urlencode(params)
        body = data.encode() if isinstance(data, str) else (data or b"")
        try:
            async with asyncio.timeout(self._timeout(params)):
                code, resp_headers, resp_body = await self._exchange(
                    method, target, headers or {}, body
                )
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as e:
            raise ConsulUnreachableError(
                f"consul at {self.host}:{self.port}: {type(e).__name__}: {e}".rstrip(": ")
            ) from e
        text: str | bytes = resp_body if raw else resp_body.decode("utf-8", "replace")
        return callback(consul.base.Response(code, resp_headers, text))

    async def _exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self._ssl, limit=_MAX_HEADER_BYTES
        )
        try:
            host = f"[{self.host}]" if ":" in self.host else self.host
            lines = [
                f"{method} {target} HTTP/1.1",
                f"Host: {host}:{self.port}",
                "User-Agent: gater",
                "Accept: application/json",
                "Connection: close",
                f"Content-Length: {len(body)}",
            ]
            if body:
                lines.append("Content-Type: application/json")
            lines += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, _, header_bytes = head.partition(b"\r\n")
            parts = status_line.decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
            code = int(parts[1])
            msg = email.parser.BytesParser(_class=http.client.HTTPMessage).parsebytes(header_bytes)
            assert isinstance(msg, http.client.HTTPMessage)
            if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
                return code, msg, b""
            if "chunked" in (msg.get("Transfer-Encoding") or "").lower():
                data = await self._read_chunked(reader)
            elif msg.get("Content-Length") is not None:
                length = int(msg["Content-Length"])
                if length > _MAX_BODY_BYTES:
                    raise ValueError(f"answer too large ({length} bytes)")
                data = await reader.readexactly(length)
            else:
                data = await reader.read(_MAX_BODY_BYTES)
            return code, msg, data
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError, ssl.SSLError):
                await asyncio.shield(writer.wait_closed())

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # trailers end with an empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            if len(out) + size > _MAX_BODY_BYTES:
                raise ValueError("answer too large")
            out += await reader.readexactly(size)
            await reader.readexactly(2)

    def get(self, callback, path, params=None, headers=None, raw=False):  # type: ignore[no-untyped-def]
        return self._request(callback, "GET", path, params, headers, b"", raw)

    def put(self, callback, path, params=None, data="", headers=None):  # type: ignore[no-untyped-def]
        return self._request(callback, "PUT", path, params, headers, data)

    def delete(self, callback, path, params=None, data="", headers=None):  # type: ignore[no-untyped-def]
        return self._request(callback, "DELETE", path, params, headers, data)

    def post(self, callback, path, params=None, data="", headers=None):  # type: ignore[no-untyped-def]
        return self._request(callback, "POST", path, params, headers, data)

    async def close(self) -> None:
        """Nothing pooled: each request closes its own connection."""


class AsyncConsul(consul.base.Consul):
    """py-consul's API whose calls are awaitable: `await c.health.service(name, index=…)`."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        datacenter: str | None = None,
        tls_verify: bool | str = True,
        timeout_s: float = 10.0,
        source: str = "CONSUL_HTTP_ADDR",
    ) -> None:
        scheme, host, port = parse_consul_address(address, source=source)
        self._timeout_s = timeout_s
        super().__init__(
            host=host, port=port, token=token, scheme=scheme, dc=datacenter, verify=tls_verify
        )
        # py-consul's base prefers CONSUL_HTTP_TOKEN from the environment; config is the truth.
        self.token = token

    def http_connect(self, host, port, scheme, verify=True, cert=None):  # type: ignore[no-untyped-def]
        return _Transport(host, port, scheme, verify, cert, timeout_s=self._timeout_s)


@dataclass(frozen=True, slots=True)
class ConsulAgentConfig:
    """How to reach the local Consul agent (Consul's own CONSUL_HTTP_* conventions)."""

    address: str = "127.0.0.1:8500"
    """CONSUL_HTTP_ADDR: "host:port" or "http(s)://host:port"."""
    token: str | None = None
    """CONSUL_HTTP_TOKEN: ACL token sent as X-Consul-Token; None sends none."""
    datacenter: str | None = None
    """Datacenter to query (`dc`); None means the agent's own."""
    tls_verify: bool | str = True
    """https only: verify the agent's certificate (True), skip (False), or a CA bundle path."""
    request_timeout_s: float = 10.0
    """Connect-and-answer timeout of one request (a blocking query adds its wait to it)."""

    def __post_init__(self) -> None:
        parse_consul_address(self.address)  # fail at config time, naming CONSUL_HTTP_ADDR
        if self.request_timeout_s <= 0:
            raise ConfigError("consul request timeout", "must be > 0")

    def client(self) -> AsyncConsul:
        return AsyncConsul(
            self.address,
            token=self.token,
            datacenter=self.datacenter,
            tls_verify=self.tls_verify,
            timeout_s=self.request_timeout_s,
        )


def describe(e: BaseException) -> str:
    """An error from the agent (or from reaching it) as one line for logs and status pages."""
    if isinstance(e, ACLPermissionDenied):
        return f"consul refused the ACL token: {e}"
    if isinstance(e, ACLDisabled):
        return f"consul ACLs: {e}"
    return str(e) or type(e).__name__
