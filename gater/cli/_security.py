"""The flags the server commands (dev, node, gateway) share beyond where they listen: TLS,
credentials and policy, the cluster secret, limits, SQLite's resource settings — and SIGHUP.

Owns: `server_options(role)`, the decorator that adds those flags (each with its environment
variable) to a server command and hands it one `ServerFlags` (parameter `security`), checked
and loaded once so that a bad value or an unreadable file is a usage error naming its flag;
`ServerFlags.node`/`.gateway`/`.dev_*`, which put them into the frozen configs; and
`reload_on_sighup`, which makes running servers read certificates, policy and keys again.
The decorator also prepares the process: a node's files are its user's alone (umask 077) and
SIGHUP is ignored until the servers can act on it, so that an early one never kills them.
May import gater.config and gater.security; must not import the servers, gater.console nor the
CLI's client commands.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import secrets
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import click
from click.core import ParameterSource

from ..config import AuthConfig, ConfigError, GatewayConfig, Limits, NodeConfig, TlsConfig

__all__ = ["ServerFlags", "reload_on_sighup", "server_options"]

log = logging.getLogger("gater")

Role = Literal["node", "gateway", "dev"]

_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
_JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                   "ES256", "ES384", "ES512", "EdDSA")  # fmt: skip
_IN_CLEAR = "visible to every user of this machine in /proc/<pid>/cmdline"

# Each option: (roles it is on, click.option); the order is the one --help shows.
_OPTIONS: list[tuple[str, Any]] = [
    ("ngd", click.option("--tls-cert", envvar="GATER_TLS_CERT", type=_FILE,
                         help="Serve TLS with this PEM certificate (chain); re-read when it changes or on SIGHUP "
                              "[env GATER_TLS_CERT].")),
    ("ngd", click.option("--tls-key", envvar="GATER_TLS_KEY", type=_FILE,
                         help="The certificate's PEM private key [env GATER_TLS_KEY].")),
    ("ngd", click.option("--tls-client-ca", envvar="GATER_TLS_CLIENT_CA", type=_FILE,
                         help="Require client certificates signed by this CA (mutual TLS) [env GATER_TLS_CLIENT_CA].")),
    ("ng", click.option("--upstream-ca", envvar="GATER_UPSTREAM_CA", type=_FILE,
                        help="Outgoing channels (gateway → nodes, node → node) use TLS and trust servers signed "
                             "by this CA [env GATER_UPSTREAM_CA].")),
    ("ng", click.option("--upstream-cert", envvar="GATER_UPSTREAM_CERT", type=_FILE,
                        help="Client certificate outgoing channels present (mTLS; default: --tls-cert when "
                             "--upstream-ca is given) [env GATER_UPSTREAM_CERT].")),
    ("ng", click.option("--upstream-key", envvar="GATER_UPSTREAM_KEY", type=_FILE,
                        help="Its private key (default: --tls-key) [env GATER_UPSTREAM_KEY].")),
    ("ng", click.option("--upstream-server-name", envvar="GATER_UPSTREAM_SERVER_NAME", default=None,
                        help="Name to expect in the nodes' certificates when it is not the host dialled "
                             "[env GATER_UPSTREAM_SERVER_NAME].")),
    ("ngd", click.option("--api-keys", "api_keys_file", envvar="GATER_API_KEYS_FILE", type=_FILE,
                         help="Accept the API keys in this TOML file of hashes (`gater keys add` writes it); "
                              "re-read when it changes [env GATER_API_KEYS_FILE].")),
    ("ngd", click.option("--jwt-issuer", envvar="GATER_JWT_ISSUER", default=None,
                         help="Bearer tokens must come from this issuer (iss) [env GATER_JWT_ISSUER].")),
    ("ngd", click.option("--jwt-audience", envvar="GATER_JWT_AUDIENCE", default=None,
                         help="Bearer tokens must be for this audience (aud) [env GATER_JWT_AUDIENCE].")),
    ("ngd", click.option("--jwt-algorithms", envvar="GATER_JWT_ALGORITHMS", default="RS256,ES256", show_default=True,
                         help="Accepted signing algorithms, comma-separated [env GATER_JWT_ALGORITHMS].")),
    ("ngd", click.option("--jwt-key-file", envvar="GATER_JWT_KEY_FILE", type=_FILE,
                         help="Verify bearer tokens with this PEM public key, or the shared secret in this file "
                              "for HS* algorithms [env GATER_JWT_KEY_FILE].")),
    ("ngd", click.option("--jwt-jwks-file", envvar="GATER_JWT_JWKS_FILE", type=_FILE,
                         help="Verify bearer tokens with the keys of this JWKS file (the token's kid picks one) "
                              "[env GATER_JWT_JWKS_FILE].")),
    ("ngd", click.option("--jwt-roles-claim", envvar="GATER_JWT_ROLES_CLAIM", default="roles", show_default=True,
                         help="The token claim holding the caller's roles [env GATER_JWT_ROLES_CLAIM].")),
    ("ngd", click.option("--client-cert-identity", is_flag=True, envvar="GATER_CLIENT_CERT_IDENTITY", default=False,
                         help="A client certificate's common name is the caller (principal cert:<CN>); needs "
                              "--tls-client-ca [env GATER_CLIENT_CERT_IDENTITY].")),
    ("ngd", click.option("--policy", "policy_file", envvar="GATER_POLICY_FILE", type=_FILE,
                         help="TOML policy: roles per principal, what each role may do; re-read when it changes. "
                              "Credentials without a policy: any authenticated caller may do everything "
                              "[env GATER_POLICY_FILE].")),
    ("ngd", click.option("--closed-health", is_flag=True, envvar="GATER_CLOSED_HEALTH", default=False,
                         help="grpc.health.v1 and reflection need credentials too (default: open) "
                              "[env GATER_CLOSED_HEALTH].")),
    ("ng", click.option("--allow-insecure-secret", is_flag=True, envvar="GATER_ALLOW_INSECURE_SECRET", default=False,
                        help="Let the cluster secret travel in plaintext off loopback (a trusted network only) "
                             "[env GATER_ALLOW_INSECURE_SECRET].")),
    ("ng", click.option("--cluster-secret", envvar="EX_ESDB_CLUSTER_SECRET", default=None,
                        help=f"Shared secret (x-gater-secret): nodes require it, gateways send it. As a flag it is "
                             f"{_IN_CLEAR}: prefer the environment variable or --cluster-secret-file "
                             f"[env EX_ESDB_CLUSTER_SECRET].")),
    ("ng", click.option("--cluster-secret-file", envvar="GATER_CLUSTER_SECRET_FILE", type=_FILE,
                        help="Read the cluster secret from this file [env GATER_CLUSTER_SECRET_FILE].")),
    ("ngd", click.option("--max-message-bytes", envvar="GATER_MAX_MESSAGE_BYTES", type=click.IntRange(min=1024),
                         help="Largest request message accepted, in bytes (default 16 MiB) "
                              "[env GATER_MAX_MESSAGE_BYTES].")),
    ("nd", click.option("--max-event-bytes", envvar="GATER_MAX_EVENT_BYTES", type=click.IntRange(min=1),
                        help="Largest event (and snapshot) as stored, in bytes (default and most: 4 MiB - 1 KiB) "
                             "[env GATER_MAX_EVENT_BYTES].")),
    ("nd", click.option("--max-events-per-append", envvar="GATER_MAX_EVENTS_PER_APPEND", type=click.IntRange(min=1),
                        help="Most events in one AppendEvents (default 10000) [env GATER_MAX_EVENTS_PER_APPEND].")),
    ("ngd", click.option("--max-concurrent-streams", envvar="GATER_MAX_CONCURRENT_STREAMS", type=click.IntRange(min=1),
                         help="Calls one client connection may have open at once (default 1000) "
                              "[env GATER_MAX_CONCURRENT_STREAMS].")),
    ("nd", click.option("--max-stores", envvar="GATER_MAX_STORES", type=click.IntRange(min=1),
                        help="Stores a node (or a PostgreSQL cluster) holds (default 10000) [env GATER_MAX_STORES].")),
    ("nd", click.option("--max-subscriptions", envvar="GATER_MAX_SUBSCRIPTIONS", type=click.IntRange(min=1),
                        help="Transient subscriptions a node serves at once (default 10000) "
                             "[env GATER_MAX_SUBSCRIPTIONS].")),
    ("nd", click.option("--max-subscriptions-per-store", envvar="GATER_MAX_SUBSCRIPTIONS_PER_STORE",
                        type=click.IntRange(min=1),
                        help="Transient subscriptions of one store a node serves at once (default 2000) "
                             "[env GATER_MAX_SUBSCRIPTIONS_PER_STORE].")),
    ("nd", click.option("--max-persistent-subscriptions", envvar="GATER_MAX_PERSISTENT_SUBSCRIPTIONS",
                        type=click.IntRange(min=1),
                        help="Persistent subscriptions one store may define (default 1000) "
                             "[env GATER_MAX_PERSISTENT_SUBSCRIPTIONS].")),
    ("gd", click.option("--max-requests-per-s", envvar="GATER_MAX_REQUESTS_PER_S",
                        type=click.FloatRange(min=0, min_open=True),
                        help="Requests per second one caller may make through the gateway (default: no limit) "
                             "[env GATER_MAX_REQUESTS_PER_S].")),
    ("nd", click.option("--store-idle-s", envvar="GATER_STORE_IDLE_S", type=click.FloatRange(min=0, min_open=True),
                        help="SQLite: a store unused this long closes its files and thread (default 10) "
                             "[env GATER_STORE_IDLE_S].")),
    ("nd", click.option("--max-open-stores", envvar="GATER_MAX_OPEN_STORES", type=click.IntRange(min=1),
                        help="SQLite: most stores holding files and a thread at once (default: from the open-file "
                             "limit, 8 to 256) [env GATER_MAX_OPEN_STORES].")),
]  # fmt: skip

_LIMITS = ("max_message_bytes", "max_event_bytes", "max_events_per_append", "max_concurrent_streams", "max_stores",
           "max_subscriptions", "max_subscriptions_per_store", "max_persistent_subscriptions")  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class ServerFlags:
    """What the security, limit and storage flags said, checked."""

    tls: TlsConfig
    auth: AuthConfig
    cluster_secret: str | None
    limits: Limits
    max_requests_per_s: float | None
    sqlite_idle_close_s: float | None
    sqlite_max_open_stores: int | None

    def node(self, **fields: Any) -> NodeConfig:
        """A NodeConfig of `fields` and these flags."""
        return NodeConfig(**fields, tls=self.tls, auth=self.auth, cluster_secret=self.cluster_secret,
                          limits=self.limits, sqlite_idle_close_s=self.sqlite_idle_close_s,
                          sqlite_max_open_stores=self.sqlite_max_open_stores)  # fmt: skip

    def gateway(self) -> dict[str, Any]:
        """GatewayConfig fields these flags set (a dict: `gater gateway --workers` sends it to
        its worker processes)."""
        return dict(tls=self.tls, auth=self.auth, cluster_secret=self.cluster_secret,
                    max_message_bytes=self.limits.max_message_bytes,
                    max_concurrent_streams=self.limits.max_concurrent_streams,
                    max_requests_per_s=self.max_requests_per_s)  # fmt: skip

    def dev_node(self, **fields: Any) -> NodeConfig:
        """`gater dev`'s embedded node, on loopback behind the gateway: plaintext, the same
        credentials and policy, and a secret of this process by which the gateway names the
        callers it forwards for (nobody else on the machine can use the node's port)."""
        secret = secrets.token_urlsafe(32) if self.auth.enabled else None
        return dataclasses.replace(self.node(**fields), tls=TlsConfig(), cluster_secret=secret)

    def dev_gateway(self, node: NodeConfig, **fields: Any) -> GatewayConfig:
        """`gater dev`'s gateway in front of `node` (the secret goes over loopback only)."""
        auth = dataclasses.replace(self.auth, allow_insecure_secret=True)
        return GatewayConfig(**fields, **{**self.gateway(), "auth": auth, "cluster_secret": node.cluster_secret})


def server_options(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the flags of `role` ("node", "gateway" or "dev") to a command, which receives them
    as one `security: ServerFlags` parameter; see the module docstring for what it also does
    to the process."""
    letter = role[0]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        names = []
        for roles, option in reversed(_OPTIONS):
            if letter in roles:
                fn = option(fn)
                names.append(fn.__click_params__[-1].name)

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, None) for name in names}
            security = _build(role, given)
            if role != "gateway":
                os.umask(0o077)  # store files, WAL, lock, cluster id: this user's alone
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until reload_on_sighup takes it
            return fn(security=security, **kwargs)

        return wrapper

    return decorate


def _build(role: Role, given: dict[str, Any]) -> ServerFlags:
    g = given.get
    try:
        tls = TlsConfig(cert=g("tls_cert"), key=g("tls_key"), client_ca=g("tls_client_ca"),
                        upstream_ca=g("upstream_ca"), upstream_cert=g("upstream_cert"),
                        upstream_key=g("upstream_key"), upstream_server_name=g("upstream_server_name"))  # fmt: skip
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    _check_tls_files(tls)
    auth = _auth(given, tls)
    secret = _cluster_secret(g("cluster_secret"), g("cluster_secret_file"))
    overrides = {name: g(name) for name in _LIMITS if g(name) is not None}
    try:
        limits = Limits(**overrides)
    except ValueError:
        most = Limits().max_response_bytes - 1024
        raise click.BadParameter(f"at most {most} (1 KiB below the largest response, so any event fits one)",
                                 param_hint="'--max-event-bytes'") from None  # fmt: skip
    return ServerFlags(tls, auth, secret, limits, g("max_requests_per_s"), g("store_idle_s"), g("max_open_stores"))


def _check_tls_files(tls: TlsConfig) -> None:
    """Loads the certificates now: a file that is not what it should be stops the start."""
    from ..security import ChannelTls, ServerTls, TlsError

    try:
        ServerTls.listener(tls)
    except TlsError as e:
        raise click.BadParameter(str(e), param_hint="'--tls-cert' / '--tls-key' / '--tls-client-ca'") from None
    upstream = ChannelTls.upstream(tls)
    if upstream is not None:
        try:
            upstream.credentials()
        except TlsError as e:
            raise click.BadParameter(str(e), param_hint="'--upstream-ca' / '--upstream-cert' / '--upstream-key'") from None


def _auth(given: dict[str, Any], tls: TlsConfig) -> AuthConfig:
    from ..security import (
        ApiKeys,
        CredentialsError,
        JwtConfig,
        JwtVerifier,
        PolicyError,
        load_policy,
    )

    g = given.get
    algorithms = tuple(a.strip() for a in (g("jwt_algorithms") or "RS256,ES256").split(",") if a.strip())
    unknown = [a for a in algorithms if a not in _JWT_ALGORITHMS]
    if unknown or not algorithms:
        raise click.BadParameter(f"unknown {unknown or 'none given'}; known: {', '.join(_JWT_ALGORITHMS)}",
                                 param_hint="'--jwt-algorithms'")  # fmt: skip
    if len({a.startswith("HS") for a in algorithms}) > 1:
        raise click.BadParameter("do not mix HS* (a shared secret) with public-key algorithms: a public key must "
                                 "never be taken for a secret", param_hint="'--jwt-algorithms'")  # fmt: skip
    auth = AuthConfig(
        api_keys_file=g("api_keys_file"), jwt_issuer=g("jwt_issuer"), jwt_audience=g("jwt_audience"),
        jwt_algorithms=algorithms, jwt_key_file=g("jwt_key_file"), jwt_jwks_file=g("jwt_jwks_file"),
        jwt_roles_claim=g("jwt_roles_claim") or "roles", certificate_identities=bool(g("client_cert_identity")),
        policy_file=g("policy_file"), open_health=not g("closed_health"),
        allow_insecure_secret=bool(g("allow_insecure_secret")),
    )  # fmt: skip
    if auth.jwt_key_file and auth.jwt_jwks_file:
        raise click.UsageError("give one of --jwt-key-file and --jwt-jwks-file, not both")
    if (auth.jwt_issuer or auth.jwt_audience) and not auth.jwt:
        raise click.UsageError("--jwt-issuer/--jwt-audience need the keys that sign the tokens: "
                               "--jwt-key-file or --jwt-jwks-file")  # fmt: skip
    if auth.certificate_identities and tls.client_ca is None:
        raise click.UsageError("--client-cert-identity needs --tls-client-ca: only then do clients present certificates")
    if not auth.open_health and not auth.enabled:
        raise click.UsageError("--closed-health needs credentials to check: --api-keys, --jwt-key-file/--jwt-jwks-file, "
                               "--client-cert-identity or --policy")  # fmt: skip
    checks: list[tuple[str, Callable[[], object]]] = [
        ("'--api-keys'", lambda: auth.api_keys_file and ApiKeys(auth.api_keys_file)),
        ("'--policy'", lambda: auth.policy_file and load_policy(auth.policy_file)),
        ("'--jwt-key-file' / '--jwt-jwks-file'", lambda: auth.jwt and JwtVerifier(JwtConfig(
            key_file=auth.jwt_key_file, jwks_file=auth.jwt_jwks_file, algorithms=algorithms))),
    ]  # fmt: skip
    for hint, load in checks:
        try:
            load()
        except (CredentialsError, PolicyError) as e:
            raise click.BadParameter(str(e), param_hint=hint) from None
    return auth


def _cluster_secret(value: str | None, file: Path | None) -> str | None:
    if value and file:
        raise click.UsageError("give the cluster secret once: --cluster-secret (EX_ESDB_CLUSTER_SECRET) or "
                               "--cluster-secret-file")  # fmt: skip
    if file is not None:
        value = file.read_text(encoding="utf-8").strip()
        if not value:
            raise click.BadParameter(f"{file} is empty", param_hint="'--cluster-secret-file'")
    elif value:
        ctx = click.get_current_context(silent=True)
        if ctx is not None and ctx.get_parameter_source("cluster_secret") == ParameterSource.COMMANDLINE:
            click.echo(f"gater: warning: --cluster-secret is {_IN_CLEAR}; set EX_ESDB_CLUSTER_SECRET or use "
                       "--cluster-secret-file instead", err=True)  # fmt: skip
    return value or None


# -- SIGHUP -----------------------------------------------------------------------------------


class Reloadable(Protocol):
    async def reload(self) -> None: ...


def reload_on_sighup(servers: Sequence[Reloadable]) -> None:
    """From now on SIGHUP makes each server read its certificates, policy and key files again
    (new connections see them; open streams stay). Call it from the running loop."""
    loop = asyncio.get_running_loop()
    running: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        for server in servers:
            try:
                await server.reload()
            except Exception as e:  # noqa: BLE001 - a bad file must not stop a running server
                log.error("reload failed; serving with what was loaded before", extra={"error": str(e)})
                return
        log.info("reloaded certificates, policy and keys (SIGHUP)")

    def on_signal() -> None:
        task = loop.create_task(reload(), name="sighup-reload")
        running.add(task)
        task.add_done_callback(running.discard)

    loop.add_signal_handler(signal.SIGHUP, on_signal)


class WorkerSignals:
    """`gater gateway --workers N`: SIGHUP to the parent is passed on to every worker."""

    def __init__(self, pids: Callable[[], Sequence[int | None]]) -> None:
        self.pids = pids

    async def reload(self) -> None:
        for pid in self.pids():
            if pid:
                os.kill(pid, signal.SIGHUP)
