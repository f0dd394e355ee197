"""`gater health`: the grpc.health.v1 probe, over TLS and with credentials when asked.

Owns: only the command. It takes the client commands' address (host:port or a gater://
connection string naming one server) and their TLS and credential flags, and exits 0 only
when the server says SERVING: 1 when it says otherwise, 4 when nothing answers, 6 when it
refuses the caller (a server with closed health).
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules (it asks grpc.health.v1 itself: health is not in the exesdb.v1 client).
"""

from __future__ import annotations

import sys
from typing import Any

import click
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..client import credential_metadata, error_from_status, parse_target
from ..errors import GaterError
from ._output import EXIT_UNAVAILABLE, exit_code_for, hint_for
from ._settings import Security, security_options

__all__ = ["health"]


def _channel(address: str, options: dict[str, Any]) -> grpc.Channel:
    tls = options.get("tls")
    if tls is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(tls.root_certificates, tls.private_key, tls.certificate_chain)
    overrides = [("grpc.ssl_target_name_override", tls.server_name)] if tls.server_name else []
    return grpc.secure_channel(address, credentials, options=overrides)


@click.command()
@click.option("--addr", envvar="GATER_ADDR", default="127.0.0.1:50051", show_default=True,
              help="host:port of a node or gateway, or a connection string gater://host:port?tls=true&... "
                   "naming one [env GATER_ADDR].")
@click.option("--service", default="", help="Service to check (default: the server as a whole).")
@click.option("--timeout", "timeout_s", default=3.0, show_default=True, help="Seconds to wait for an answer.")
@security_options
def health(addr: str, service: str, timeout_s: float, security: Security) -> None:
    """Check a server's gRPC health; exit 0 only when it is SERVING (1: not serving, 4: no
    answer, 6: the server refuses this caller — pass --api-key or --token)."""  # fmt: skip
    try:
        target = parse_target(addr)
        if len(target.addresses) != 1:
            raise click.BadParameter("gater health checks one server: give one address", param_hint="'--addr'")
        options = {**target.client_options(), **security.options()}
        metadata = credential_metadata(options.get("api_key"), options.get("token"))
    except (GaterError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="'--addr' / '--api-key' / '--token'") from None
    (address,) = target.addresses
    security.check_travel(addr)
    with _channel(address, options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s,
                               metadata=metadata or None)  # fmt: skip
        except grpc.RpcError as e:
            click.echo(f"{address}: {e.code().name}: {e.details()}", err=True)
            error = error_from_status(e)  # type: ignore[arg-type]
            if hint_for(error):
                click.echo(f"gater: {hint_for(error)}", err=True)
                sys.exit(exit_code_for(error))
            sys.exit(EXIT_UNAVAILABLE)  # no answer, as for every gater command
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    click.echo(f"{address}{' ' + service if service else ''}: {status}")
    sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
