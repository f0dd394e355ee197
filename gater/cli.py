"""The `gater` command: servers (dev, node) and tools (health).

Owns: parsing flags, then environment, then defaults into frozen configs (the only module
that reads the environment, through click's `envvar`), logging setup, signal handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import click

from . import __version__
from . import logging as gater_logging
from .config import DEFAULT_STORE, NodeConfig

__all__ = ["main"]

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gater")
def main() -> None:
    """ExESDB Gater: a gRPC event store (nodes) and the gateway in front of it."""


async def _serve_node(config: NodeConfig, banner: bool) -> None:
    from .node import NodeServer

    node = NodeServer(config)
    try:
        await node.start()
    except Exception as e:  # noqa: BLE001 - the entry point tells the user what to do
        raise click.ClickException(str(e)) from e
    if banner:
        _print_banner(node.address, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await node.stop()


def _print_banner(address: str, config: NodeConfig) -> None:
    where = config.postgres_dsn and "PostgreSQL" or f"SQLite in {config.data_dir}"
    click.echo(
        f"""
ExESDB Gater dev server on {address}  (events in {where}, default store "{config.default_store}")

  grpcurl -plaintext {address} list
  grpcurl -plaintext -d '{{"stream_id": "greenhouse-1", "events": [{{"event_type": "temperature_measured:v1", "data_json": {{"celsius": 21}}}}]}}' \\
      {address} exesdb.v1.Streams/AppendEvents
  grpcurl -plaintext -d '{{"stream_id": "greenhouse-1", "json": true}}' {address} exesdb.v1.Streams/ReadEvents
  gater health --addr {address}

Ctrl-C stops it.
""",
        err=False,
    )


def _run(coro) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)


@main.command()
@click.option("--listen", envvar="GATER_LISTEN", default="127.0.0.1:50051", show_default=True,
              help="host:port to serve on [env GATER_LISTEN].")
@_node_options
@_log_options
def dev(listen: str, data_dir: Path, postgres_dsn: str | None, default_store: str, synchronous: str,
        node_id: str | None, log_level: str, log_format: str) -> None:
    """Run an embedded node for trying things out (SQLite in ./data)."""
    gater_logging.configure(log_level, log_format)
    config = NodeConfig(listen=listen, data_dir=data_dir, postgres_dsn=postgres_dsn, default_store=default_store,
                        sqlite_synchronous=synchronous, node_id=node_id)
    _run(_serve_node(config, banner=True))


@main.command()
@click.option("--listen", envvar="GATER_LISTEN", default="0.0.0.0:50051", show_default=True,
              help="host:port to serve on [env GATER_LISTEN].")
@_node_options
@_log_options
def node(listen: str, data_dir: Path, postgres_dsn: str | None, default_store: str, synchronous: str,
         node_id: str | None, log_level: str, log_format: str) -> None:
    """Run an event-store node."""
    gater_logging.configure(log_level, log_format)
    config = NodeConfig(listen=listen, data_dir=data_dir, postgres_dsn=postgres_dsn, default_store=default_store,
                        sqlite_synchronous=synchronous, node_id=node_id)
    _run(_serve_node(config, banner=False))


@main.command()
@click.option("--addr", envvar="GATER_ADDR", default="127.0.0.1:50051", show_default=True,
              help="host:port of a node or gateway [env GATER_ADDR].")
@click.option("--service", default="", help="Service to check (default: the server as a whole).")
@click.option("--timeout", "timeout_s", default=3.0, show_default=True, help="Seconds to wait for an answer.")
def health(addr: str, service: str, timeout_s: float) -> None:
    """Check a server's gRPC health; exit 0 only when it is SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.RpcError as e:
            click.echo(f"{addr}: {e.code().name}: {e.details()}", err=True)
            sys.exit(2)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    click.echo(f"{addr}{' ' + service if service else ''}: {status}")
    sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
