"""The server commands of `gater`: dev, node and gateway.

Owns: turning flags (then environment, then defaults) into frozen configs for nodes and
gateways (the security, limit and SQLite resource flags come from _security), logging setup,
signal handling, and the `gater dev` banner.
May import the servers (gater.node, gater.gateway), lazily, so that client commands start fast.
Must not import gater.console nor the CLI's client commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import sys
from pathlib import Path

import click

from ..config import DEFAULT_STORE, NodeConfig, ObservabilityConfig
from ._observability import configure_logging, for_worker, observability_options
from ._security import ServerFlags, WorkerSignals, reload_on_sighup, server_options

__all__ = ["dev", "gateway", "node"]

log = logging.getLogger("gater")


def _log_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option(
        "--log-level",
        envvar="LOG_LEVEL",
        default="INFO",
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        help="Log level [env LOG_LEVEL].",
    )(fn)
    fn = click.option(
        "--log-format",
        envvar="GATER_LOG_FORMAT",
        default="text",
        show_default=True,
        type=click.Choice(["text", "json"]),
        help="Log lines as readable text or JSON [env GATER_LOG_FORMAT].",
    )(fn)
    return fn


def _node_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            click.option("--data-dir", envvar="GATER_DATA_DIR", default="./data", show_default=True,
                         type=click.Path(file_okay=False, path_type=Path),
                         help="SQLite: where store files live [env GATER_DATA_DIR]."),
            click.option("--postgres-dsn", envvar="GATER_POSTGRES_DSN", default=None,
                         help="Store events in this PostgreSQL database instead of SQLite "
                              "[env GATER_POSTGRES_DSN]."),
            click.option("--default-store", envvar="GATER_DEFAULT_STORE", default=DEFAULT_STORE,
                         show_default=True,
                         help="Store used when a request leaves `store` empty; created at start "
                              "[env GATER_DEFAULT_STORE]."),
            click.option("--synchronous", envvar="GATER_SQLITE_SYNCHRONOUS", default="FULL",
                         show_default=True, type=click.Choice(["FULL", "NORMAL", "EXTRA"]),
                         help="SQLite durability: FULL survives power loss [env GATER_SQLITE_SYNCHRONOUS]."),
            click.option("--node-id", envvar="GATER_NODE_ID", default=None,
                         help="This node's id (default: host:port) [env GATER_NODE_ID]."),
        ]
    ):
        fn = option(fn)
    return fn


def _consul_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            click.option("--consul-addr", envvar="CONSUL_HTTP_ADDR", default="127.0.0.1:8500", show_default=True,
                         help="Consul agent, host:port or http(s)://host:port [env CONSUL_HTTP_ADDR]."),
            click.option("--consul-token", envvar="CONSUL_HTTP_TOKEN", default=None,
                         help="Consul ACL token [env CONSUL_HTTP_TOKEN]."),
            click.option("--consul-service", envvar="GATER_CONSUL_SERVICE", default="exesdb-gater", show_default=True,
                         help="Service name nodes register under [env GATER_CONSUL_SERVICE]."),
            click.option("--consul-dc", envvar="GATER_CONSUL_DC", default=None,
                         help="Consul datacenter [env GATER_CONSUL_DC]."),
            click.option("--consul-tag", envvar="GATER_CONSUL_TAG", default=None,
                         help="Register with / discover only this tag [env GATER_CONSUL_TAG]."),
        ]
    ):
        fn = option(fn)
    return fn


def _agent(consul_addr: str, consul_token: str | None, consul_dc: str | None):  # type: ignore[no-untyped-def]
    from ..config import ConfigError
    from ..consul import ConsulAgentConfig

    try:
        return ConsulAgentConfig(address=consul_addr, token=consul_token, datacenter=consul_dc)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from e


async def _until_signalled(servers=()) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reload_on_sighup(servers)
    await stop.wait()
    log.info("shutting down")


async def _serve_node(config: NodeConfig, registration=None) -> None:  # type: ignore[no-untyped-def]
    from ..node import NodeServer

    node = NodeServer(config)
    try:
        await node.start()
    except Exception as e:  # noqa: BLE001 - the entry point tells the user what to do
        raise click.ClickException(str(e)) from e
    if registration is not None:
        registration = registration(node)
        await registration.start()
    await _until_signalled([node])
    if registration is not None:
        await registration.stop()
    await node.stop()


async def _serve_dev(config: NodeConfig, listen: str, security: ServerFlags, observability: ObservabilityConfig) -> None:
    """An embedded node on a free loopback port, and a gateway in front of it on `listen`.
    With --metrics-listen, one endpoint serves both: the gateway counts the calls, the node
    its storage and subscriptions."""
    from ..gateway.discovery import StaticDiscovery
    from ..gateway.server import GatewayServer
    from ..metrics import Metrics
    from ..node import NodeServer

    metrics = Metrics("dev") if observability.metrics_listen else None
    # The node serves no HTTP of its own, and the gateway writes the one access line per call.
    node_observability = dataclasses.replace(observability, metrics_listen=None, access_log=False)
    node = NodeServer(dataclasses.replace(config, observability=node_observability), metrics=metrics)
    try:
        await node.start()
        gateway = GatewayServer(
            security.dev_gateway(config, listen=listen, observability=observability),
            StaticDiscovery([node.address], source="gater dev"),
            metrics=metrics,
        )
        await gateway.start()
    except Exception as e:  # noqa: BLE001 - the entry point tells the user what to do
        await node.stop()
        raise click.ClickException(str(e)) from e
    _print_banner(gateway.address, config, security)
    await _until_signalled([node, gateway])
    await gateway.stop()
    await node.stop()


def _print_banner(address: str, config: NodeConfig, security: ServerFlags) -> None:
    where = config.postgres_dsn and "PostgreSQL" or f"SQLite in {config.data_dir}"
    # `make run` installs into a virtualenv whose bin/ a new shell does not have on its PATH.
    bin_dir = Path(sys.executable).parent
    # With TLS, grpcurl and gater trust the CA that signed --tls-cert (gater certs: its ca.crt);
    # with credentials, they present a key (gater keys add printed it).
    ca = ""
    if security.tls.cert:
        beside = security.tls.cert.parent / "ca.crt"
        ca = str(beside) if beside.exists() else "YOUR-CA.crt"
    grpcurl = f"grpcurl -cacert {ca}" if ca else "grpcurl -plaintext"
    gater_tls = f" --ca-file {ca}" if ca else ""
    key_line = ""
    if security.auth.enabled:
        grpcurl += ' -H "authorization: Bearer $GATER_API_KEY"'
        key_line = "  export GATER_API_KEY=gtr....               # a key of --api-keys (gater keys add printed it)\n"
    click.echo(
        f"""
ExESDB Gater dev server on {address}: a gateway in front of an embedded node
(events in {where}, default store "{config.default_store}"; {"TLS" if ca else "plaintext"}, \
{"credentials required" if security.auth.enabled else "no credentials"})

In another terminal, put gater (and grpcurl, from the test extras) on the PATH first:
  export PATH="{bin_dir}:$PATH"
{key_line}
  gater append greenhouse1 --type temperature_measured:v1 --data '{{"temperature": 21.5}}' --addr {address}{gater_tls}
  {grpcurl} {address} list
  {grpcurl} -d '{{"stream_id": "greenhouse-1", "events": [{{"event_type": "temperature_measured:v1", "data_json": {{"celsius": 21}}}}]}}' \\
      {address} exesdb.v1.Streams/AppendEvents
  {grpcurl} -d '{{"stream_id": "greenhouse-1", "json": true}}' {address} exesdb.v1.Streams/ReadEvents
  gater health --addr {address}{gater_tls}

Ctrl-C stops it.
"""
    )


SWITCH_INTERVAL_S = 0.001
"""How long a thread of a server may keep the GIL while another waits for it (Python's
default: 5 ms). A SQLite store's writer and readers give the GIL up for every statement they
run and wait for it back; with the event loop busy checking an import's records, each wait
lasted a whole interval. At 1 ms, a SQLite import went from about 37,000 to 43,000 events/s
(docs/BENCHMARKS.md), with catch-ups and reads unchanged within the noise."""

GC_THRESHOLDS = (20_000, 10, 10)
"""Python's cyclic collector runs its youngest generation after this many new container
objects (its default: 700). An import makes several per event (the record, its fields, the
converted tuple): with 700, the event loop spent 13-14 us an event of an import, with 20,000
11.2 us, and a 200,000-event SQLite import went 34.7-37.5k -> 38.7-39.8k events/s
(docs/BENCHMARKS.md).
The objects made while the server starts are frozen first (`gc.freeze`), out of every later
collection's walk."""


def _run(coro) -> None:  # type: ignore[no-untyped-def]
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)


@click.command()
@click.option("--listen", envvar="GATER_LISTEN", default="127.0.0.1:50051", show_default=True,
              help="host:port of the gateway [env GATER_LISTEN].")
@_node_options
@server_options("dev")
@observability_options("dev")
@_log_options
def dev(listen: str, data_dir: Path, postgres_dsn: str | None, default_store: str, synchronous: str,
        node_id: str | None, security: ServerFlags, observability: ObservabilityConfig, log_level: str,
        log_format: str) -> None:
    """Run a gateway and an embedded node in one process, for trying things out."""
    configure_logging(log_level, log_format)
    config = security.dev_node(listen="127.0.0.1:0", data_dir=data_dir, postgres_dsn=postgres_dsn,
                               default_store=default_store, sqlite_synchronous=synchronous, node_id=node_id)
    _run(_serve_dev(config, listen, security, observability))


@click.command()
@click.option("--listen", envvar="GATER_LISTEN", default="0.0.0.0:50051", show_default=True,
              help="host:port to serve on [env GATER_LISTEN].")
@_node_options
@server_options("node")
@observability_options("node")
@click.option("--consul", "use_consul", is_flag=True, envvar="GATER_CONSUL", default=False,
              help="Register in Consul with a GRPC health check; deregister on shutdown [env GATER_CONSUL].")
@click.option("--advertise", envvar="GATER_ADVERTISE", default=None,
              help="host:port gateways should dial (default: the listen address; needed with 0.0.0.0) "
                   "[env GATER_ADVERTISE].")
@_consul_options
@_log_options
def node(listen: str, data_dir: Path, postgres_dsn: str | None, default_store: str, synchronous: str,
         node_id: str | None, security: ServerFlags, observability: ObservabilityConfig, use_consul: bool,
         advertise: str | None,
         consul_addr: str, consul_token: str | None, consul_service: str, consul_dc: str | None,
         consul_tag: str | None, log_level: str, log_format: str) -> None:
    """Run an event-store node."""
    configure_logging(log_level, log_format)
    config = security.node(listen=listen, data_dir=data_dir, postgres_dsn=postgres_dsn, default_store=default_store,
                           sqlite_synchronous=synchronous, node_id=node_id, advertise=advertise,
                           observability=observability)
    registration = None
    if use_consul:
        from ..node.registration import ConsulRegistration

        agent = _agent(consul_addr, consul_token, consul_dc)

        def registration(started):  # type: ignore[no-untyped-def]
            return ConsulRegistration.for_node(started, agent=agent, service=consul_service,
                                               tags=(consul_tag,) if consul_tag else ())
    _run(_serve_node(config, registration))


def _discovery(nodes: str | None, use_consul: bool, dns_name: str | None, dns_port: int | None, dns_kind: str,
               dns_server: str | None, consul_addr: str, consul_token: str | None, consul_service: str,
               consul_dc: str | None, consul_tag: str | None,
               dns_resolv_conf: str | None = "/etc/resolv.conf"):  # type: ignore[no-untyped-def]
    from ..config import ConfigError, parse_host_port
    from ..gateway import discovery as d

    chosen = [x for x in (nodes, use_consul or None, dns_name) if x]
    if len(chosen) != 1:
        raise click.UsageError(
            "say how to find nodes, exactly one of: --nodes host:port,... (or EX_ESDB_GATER_CONNECT_TO), "
            "--consul (CONSUL_HTTP_ADDR), --dns NAME"
        )
    try:
        if nodes:
            return d.StaticDiscovery(d.parse_node_list(nodes))
        if use_consul:
            return d.ConsulDiscovery(d.ConsulDiscoveryConfig(
                agent=_agent(consul_addr, consul_token, consul_dc), service=consul_service, tag=consul_tag))
        servers: tuple[str, ...] = ()
        server_port = 53
        if dns_server:
            host, server_port = parse_host_port(dns_server, source="--dns-server", default_port=53)
            servers = (host,)
        return d.DnsDiscovery(d.DnsDiscoveryConfig(name=dns_name or "", port=dns_port, kind=dns_kind.upper(),
                                                   nameservers=servers, nameserver_port=server_port,
                                                   resolv_conf=dns_resolv_conf or None))
    except ConfigError as e:
        raise click.BadParameter(str(e)) from e


async def _serve_gateway(config, discovery) -> None:  # type: ignore[no-untyped-def]
    from ..gateway.server import GatewayServer

    gateway = GatewayServer(config, discovery)
    try:
        await gateway.start()
    except Exception as e:  # noqa: BLE001 - the entry point tells the user what to do
        raise click.ClickException(str(e)) from e
    await _until_signalled([gateway])
    await gateway.stop()


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the process that started it dies, even by SIGKILL,
    so no orphaned worker keeps the port."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _gateway_worker(kwargs: dict, log_level: str, log_format: str) -> None:
    """One of `gater gateway --workers N`'s processes (started with spawn)."""
    from ..config import GatewayConfig

    _die_with_parent()

    configure_logging(log_level, log_format)
    discovery_kwargs = kwargs.pop("discovery")
    _run(_serve_gateway(GatewayConfig(**kwargs), _discovery(**discovery_kwargs)))


@click.command()
@click.option("--listen", envvar="GATER_LISTEN", default="0.0.0.0:50051", show_default=True,
              help="host:port to serve on [env GATER_LISTEN].")
@click.option("--nodes", envvar="EX_ESDB_GATER_CONNECT_TO", default=None,
              help="Static node list host:port,host:port [env EX_ESDB_GATER_CONNECT_TO].")
@click.option("--consul", "use_consul", is_flag=True, envvar="GATER_CONSUL", default=False,
              help="Discover passing nodes in Consul [env GATER_CONSUL].")
@_consul_options
@click.option("--dns", "dns_name", envvar="GATER_DNS_NAME", default=None,
              help="Discover nodes through DNS records of this name (a Kubernetes headless service) "
                   "[env GATER_DNS_NAME].")
@click.option("--dns-kind", envvar="GATER_DNS_KIND", default="A", show_default=True,
              type=click.Choice(["A", "AAAA", "SRV"], case_sensitive=False), help="A/AAAA (+ --dns-port) or SRV records.")
@click.option("--dns-port", envvar="GATER_DNS_PORT", default=None, type=int, help="Node port for A/AAAA records.")
@click.option("--dns-server", envvar="GATER_DNS_SERVER", default=None,
              help="host[:port] of the DNS server to ask (default: the nameservers of --dns-resolv-conf) "
                   "[env GATER_DNS_SERVER].")
@click.option("--dns-resolv-conf", envvar="GATER_DNS_RESOLV_CONF", default="/etc/resolv.conf", show_default=True,
              help="Resolver configuration: its nameservers (unless --dns-server), search domains and ndots, so "
                   "a short name like a Kubernetes service's resolves as for other programs; a name ending in "
                   "'.' is asked as it is [env GATER_DNS_RESOLV_CONF].")
@click.option("--cluster-id", envvar="GATER_CLUSTER_ID", default=None,
              help="Route only to nodes of this cluster (default: the first one met) [env GATER_CLUSTER_ID].")
@server_options("gateway")
@observability_options("gateway")
@click.option("--workers", envvar="GATER_WORKERS", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes serving the same port (SO_REUSEPORT) for more cores; with --metrics-listen "
                   "HOST:PORT worker i serves its metrics on PORT+i [env GATER_WORKERS].")
@_log_options
def gateway(listen: str, nodes: str | None, use_consul: bool, consul_addr: str, consul_token: str | None,
            consul_service: str, consul_dc: str | None, consul_tag: str | None, dns_name: str | None,
            dns_kind: str, dns_port: int | None, dns_server: str | None, dns_resolv_conf: str,
            cluster_id: str | None, security: ServerFlags, observability: ObservabilityConfig, workers: int,
            log_level: str, log_format: str) -> None:
    """Run a gateway: one address for clients, calls spread over healthy nodes."""
    configure_logging(log_level, log_format)
    discovery_kwargs = dict(nodes=nodes, use_consul=use_consul, dns_name=dns_name, dns_port=dns_port,
                            dns_kind=dns_kind, dns_server=dns_server, consul_addr=consul_addr,
                            consul_token=consul_token, consul_service=consul_service, consul_dc=consul_dc,
                            consul_tag=consul_tag, dns_resolv_conf=dns_resolv_conf)
    _discovery(**discovery_kwargs)  # validate before starting anything
    config = dict(listen=listen, cluster_id=cluster_id, reuse_port=workers > 1, observability=observability,
                  **security.gateway())
    if workers == 1:
        from ..config import GatewayConfig

        _run(_serve_gateway(GatewayConfig(**config), _discovery(**discovery_kwargs)))
        return
    if listen.endswith(":0"):
        raise click.UsageError("--workers needs a fixed port: every worker binds the same one")
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    worker_configs = [{**config, "observability": for_worker(observability, i), "discovery": discovery_kwargs}
                      for i in range(workers)]
    procs = [spawn.Process(target=_gateway_worker, args=(worker_config, log_level, log_format),
                           name=f"gateway-worker-{i}") for i, worker_config in enumerate(worker_configs)]
    for proc in procs:
        proc.start()
    log.info("gateway workers started", extra={"workers": workers, "listen": listen})
    try:
        asyncio.run(_until_signalled([WorkerSignals(lambda: [p.pid for p in procs])]))
    except KeyboardInterrupt:
        pass
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(10)

