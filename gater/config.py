"""Configuration as frozen dataclasses, parsed once at the entry point (cli.py) and passed down.

Owns: the settings of nodes and gateways, their defaults and the documented limits; the
address helpers every entry point shares (`parse_host_port`, `advertised_address`) and
`ConfigError`, which names the flag or variable a bad setting came from.
Must not import anything from gater except errors; no module but cli.py reads os.environ.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_STORE",
    "AuthConfig",
    "ConfigError",
    "GatewayConfig",
    "Limits",
    "NodeConfig",
    "ObservabilityConfig",
    "PoolPolicy",
    "TlsConfig",
    "advertised_address",
    "parse_host_port",
]

DEFAULT_STORE = "default"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits enforced on every call; README's "Limits" table mirrors these defaults."""

    max_message_bytes: int = 16 * 1024 * 1024
    """Largest request message the node accepts, in bytes (gRPC's max receive size; also its
    max send size, a ceiling the node's own responses stay far below)."""
    max_response_bytes: int = 4 * 1024 * 1024
    """Largest response message the node sends: gRPC's default receive limit, so that every
    client reads every answer with default settings. Stream batches are cut to it by bytes."""
    max_event_bytes: int = 4 * 1024 * 1024 - 1024
    """Largest event, counted as it is stored (its EventRecord: body, metadata, type, id,
    content types, stream id and a few dozen bytes of framing); also the largest snapshot.
    Below `max_response_bytes` so that any stored event fits one response message alone."""
    max_json_depth: int = 32
    """Deepest nesting of objects and arrays in a `data_json` / `metadata_json` body. Deeper
    bodies would not survive protobuf's decoding depth limit (100 messages; a JSON level costs
    up to three) in clients; stored bodies deeper than this are sent as bytes on JSON reads."""
    max_events_per_append: int = 10_000
    """Most events in one AppendEvents call."""
    max_session_in_flight: int = 256
    """Most appends one AppendSession has in flight (read and not yet answered); at the cap
    the node stops reading that session until an answer goes out."""
    max_stream_id_bytes: int = 256
    """Longest stream id, event type, snapshot source/stream id, in UTF-8 bytes."""
    max_name_bytes: int = 256
    """Longest event type and snapshot source_type, in UTF-8 bytes."""
    max_content_type_bytes: int = 128
    """Longest content type."""
    max_store_id_chars: int = 64
    """Longest store id."""
    max_page_size: int = 1000
    """Most items in one page of a listing."""
    read_batch: int = 500
    """Most events per storage page and per ReadEventsResponse message."""
    read_buffer_bytes: int = 32 * 1024 * 1024
    """Node-wide: bytes that ReadEvents calls hold, from reading a page until their clients'
    flow control took its messages. A read's messages start at 16 KiB and grow to 1 MiB while
    its client keeps taking them; past this budget every read goes on in 16 KiB steps, so
    reads whose clients stop reading cost little each, however many there are."""

    max_concurrent_streams: int = 1000
    """Calls (unary or streaming) one client connection may have open at once (HTTP/2
    SETTINGS_MAX_CONCURRENT_STREAMS); more wait for one to end."""
    max_stores: int = 10_000
    """Stores one node (or one PostgreSQL cluster) holds; CreateStore beyond it is refused."""
    max_subscriptions: int = 10_000
    """Transient subscriptions one node serves at once."""
    max_subscriptions_per_store: int = 2_000
    """Transient subscriptions of one store a node serves at once."""
    max_persistent_subscriptions: int = 1_000
    """Persistent subscriptions one store may define."""

    def __post_init__(self) -> None:
        # Every stored event must fit one response message alone, with room for its envelope.
        if self.max_event_bytes > self.max_response_bytes - 1024:
            raise ValueError("max_event_bytes must be at least 1 KiB below max_response_bytes")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS of a server's listener and of its outgoing channels (gateway → node, node → node).
    No certificate: plaintext (the `gater dev` default, on loopback)."""

    cert: Path | None = None
    """PEM certificate (chain) the listener presents."""
    key: Path | None = None
    """Its PEM private key."""
    client_ca: Path | None = None
    """Require client certificates signed by this CA (mTLS): a caller without one is refused
    during the handshake."""
    upstream_ca: Path | None = None
    """Outgoing channels use TLS and trust servers signed by this CA."""
    upstream_cert: Path | None = None
    """Client certificate outgoing channels present (mTLS to nodes); default: `cert`."""
    upstream_key: Path | None = None
    """Its key; default: `key`."""
    upstream_server_name: str | None = None
    """Name expected in the servers' certificates when it is not the host dialled."""

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("--tls-cert/--tls-key", "give both the certificate and its key")
        if self.client_ca is not None and self.cert is None:
            raise ConfigError("--tls-client-ca", "needs --tls-cert and --tls-key (mTLS is TLS first)")
        if (self.upstream_cert is None) != (self.upstream_key is None):
            raise ConfigError("--upstream-cert/--upstream-key", "give both the certificate and its key")

    @property
    def listener(self) -> bool:
        return self.cert is not None

    @property
    def upstream(self) -> bool:
        """Outgoing channels use TLS."""
        return self.upstream_ca is not None or self.upstream_cert is not None

    @property
    def upstream_pair(self) -> tuple[Path, Path] | None:
        """The client certificate and key outgoing channels present, if any."""
        if self.upstream_cert is not None and self.upstream_key is not None:
            return self.upstream_cert, self.upstream_key
        if self.upstream and self.cert is not None and self.key is not None:
            return self.cert, self.key
        return None


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Who may call (authentication) and what they may do (authorization); docs/security.md.
    Nothing set: every caller may do everything (development)."""

    api_keys_file: Path | None = None
    """TOML file of hashed API keys (`gater keys add` writes it)."""
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwt_key_file: Path | None = None
    """PEM public key (RS/ES) or a file holding the shared secret (HS)."""
    jwt_jwks_file: Path | None = None
    """A JSON Web Key Set file (the token's kid picks the key)."""
    jwt_roles_claim: str = "roles"
    certificate_identities: bool = False
    """A client certificate's common name is the caller's principal (`cert:<cn>`)."""
    policy_file: Path | None = None
    """TOML policy: roles per principal, rules per role. Without one, any authenticated
    caller may do everything and anonymous callers nothing (once credentials are set)."""
    open_health: bool = True
    """grpc.health.v1 and reflection answer without credentials."""
    allow_insecure_secret: bool = False
    """Accept/send the cluster secret over plaintext on a non-loopback address."""

    @property
    def jwt(self) -> bool:
        return self.jwt_key_file is not None or self.jwt_jwks_file is not None

    @property
    def enabled(self) -> bool:
        """Calls are authenticated and authorized (deny by default)."""
        return bool(self.api_keys_file or self.jwt or self.certificate_identities or self.policy_file)


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    """Metrics, traces and access logs; all off by default."""

    metrics_listen: str | None = None
    """host:port of the HTTP listener serving /metrics, /livez and /readyz."""
    otlp_endpoint: str | None = None
    """OTLP/gRPC collector for traces; None: no tracing."""
    service_name: str = "gater"
    """service.name of the traces."""
    trace_metadata: bool = False
    """Nodes: record the appending call's traceparent in each event's JSON metadata."""
    access_log: bool = False
    """One log line per call on the `gater.access` logger."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How one event-store node runs."""

    listen: str = "127.0.0.1:50051"
    """host:port the gRPC server binds; port 0 picks a free one."""
    data_dir: Path = Path("./data")
    """SQLite backend: where the per-store database files live."""
    postgres_dsn: str | None = None
    """When set, events live in this PostgreSQL database instead of SQLite."""
    default_store: str = DEFAULT_STORE
    """The store used when a request leaves `store` empty; created at start."""
    sqlite_synchronous: str = "FULL"
    """SQLite's synchronous pragma: FULL (durable on power loss) or NORMAL."""
    sqlite_idle_close_s: float | None = None
    """SQLite: a store unused this long closes its writer thread and files; None: the
    backend's default (10 s)."""
    sqlite_max_open_stores: int | None = None
    """SQLite: most stores holding threads and files at once; None: derived from the open-file
    limit (between 8 and 256)."""
    node_id: str | None = None
    """This node's id; None derives one from the host name and port."""
    cluster_secret: str | None = None
    """When set, calls must carry it in the `x-gater-secret` metadata."""
    advertise: str | None = None
    """host:port other nodes and gateways dial to reach this node; None: the bound address."""
    limits: Limits = field(default_factory=Limits)
    """Limits on calls."""
    grace_s: float = 5.0
    """How long a stop waits for calls in flight."""
    health_interval_s: float = 1.0
    """How often the node asks its storage whether it answers (health follows the answer)."""
    health_timeout_s: float = 2.0
    """How long that question may take before the storage counts as unreachable."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    """TLS of the listener and of the channels to other nodes."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    """Authentication and authorization of callers."""
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    """Metrics, traces, access log."""


# -- addresses --------------------------------------------------------------------------------


class ConfigError(ValueError):
    """A setting is malformed; the message names the flag or variable it came from."""

    def __init__(self, source: str, description: str) -> None:
        super().__init__(f"{source}: {description}")
        self.source = source
        self.description = description


def parse_host_port(text: str, *, source: str, default_port: int | None = None) -> tuple[str, int]:
    """ "host:port" / "[v6]:port" (or a bare host with `default_port`) → (host, port);
    raises ConfigError naming `source`."""
    text = text.strip()
    if not text:
        raise ConfigError(source, "empty address (expected host:port)")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(source, f"{text!r} is not [ipv6]:port")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        raise ConfigError(source, f"{text!r}: write IPv6 addresses as [addr]:port")
    else:
        host, port_text = text, ""
    if not host:
        raise ConfigError(source, f"{text!r} has no host (expected host:port)")
    if not port_text:
        if default_port is None:
            raise ConfigError(source, f"{text!r} has no port (expected host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(source, f"{text!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


def advertised_address(listen: str, port: int, advertise: str | None = None) -> str:
    """host:port other processes dial to reach a server that listens on `listen` and bound
    `port`: `advertise` when given, else the listen host with the bound port. A wildcard host
    (0.0.0.0, ::, [::], empty), which no one can dial, becomes this machine's host name."""
    if advertise:
        host, _, port_text = advertise.rpartition(":")
    else:
        host, port_text = listen.rpartition(":")[0], str(port)
    if host in _WILDCARD_HOSTS:
        host = socket.gethostname()
    return f"{host}:{port_text}"


# -- gateways ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """How a gateway's channel pool ejects members whose calls fail."""

    base_ejection_s: float = 1.0
    """Ejection after the first consecutive failure; doubles for each further one."""
    max_ejection_s: float = 30.0
    """Cap on one ejection."""
    jitter: float = 0.0
    """0..1: each ejection is shortened by a random fraction up to this (needs an rng)."""
    panic: bool = True
    """When every member that answers its health is ejected, still offer the one whose
    ejection ends soonest."""

    def __post_init__(self) -> None:
        if not 0 < self.base_ejection_s <= self.max_ejection_s:
            raise ValueError("need 0 < base_ejection_s <= max_ejection_s")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within 0..1")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How one gateway runs (its discovery is configured apart: gateway/discovery)."""

    listen: str = "127.0.0.1:50051"
    """host:port to serve on; port 0 picks a free one."""
    cluster_id: str | None = None
    """Follow only nodes of this cluster; None: the first cluster met."""
    cluster_secret: str | None = None
    """Sent to nodes in the x-gater-secret metadata."""
    max_message_bytes: int = 16 * 1024 * 1024
    """Largest message accepted from clients."""
    reuse_port: bool = False
    """Let several gateway processes share the port (gater gateway --workers)."""
    grace_s: float = 2.0
    """How long stop() lets calls in flight finish."""
    policy: PoolPolicy = field(default_factory=PoolPolicy)
    """How failing nodes are ejected."""
    gateway_id: str | None = None
    """This gateway's id in Cluster.GetStatus; None: host:port."""
    probe_interval_s: float = 1.0
    """How often each member's grpc.health.v1 Check is asked (sooner when its connection
    drops or a call on it fails)."""
    probe_timeout_s: float = 2.0
    """Deadline of one health probe: a member that does not answer SERVING within it is not
    used until a later probe succeeds."""
    default_store: str = DEFAULT_STORE
    """The store a request without `store` means on the nodes (for the gateway's checks)."""
    tls: TlsConfig = field(default_factory=TlsConfig)
    """TLS of the listener and of the channels to nodes."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    """Authentication and authorization of clients."""
    max_requests_per_s: float | None = None
    """Requests per second one principal may make through this gateway (a burst of as many
    is allowed); None: no limit. Over it: RESOURCE_EXHAUSTED naming max_requests_per_s."""
    max_concurrent_streams: int = 1000
    """Calls one client connection may have open at once (HTTP/2 max concurrent streams)."""
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    """Metrics, traces, access log."""

    def __post_init__(self) -> None:
        if self.probe_interval_s <= 0 or self.probe_timeout_s <= 0:
            raise ConfigError("gateway health probe", "interval and timeout must be > 0")
