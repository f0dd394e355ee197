"""The observability flags of the server commands: metrics, traces, the access log, and the
log setup they share.

Owns: `observability_options(role)` (adds --metrics-listen, --otlp-endpoint, --service-name,
--trace-metadata and --access-log to a command, which receives them as one
`observability: ObservabilityConfig`), `for_worker` (a gateway worker's metrics port) and
`configure_logging` (themed text on a terminal). Flags, then environment, then defaults.
Must not import the servers, the console or the CLI's client commands: configs only.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, Literal

import click

from .. import logging as gater_logging
from ..config import ObservabilityConfig

__all__ = ["configure_logging", "for_worker", "observability_options"]

Role = Literal["dev", "node", "gateway"]

_NAMES = ("metrics_listen", "otlp_endpoint", "service_name", "trace_metadata", "access_log")


def configure_logging(level: str, fmt: str) -> None:
    """Themed text on a terminal (unless NO_COLOR is set), plain text or JSON elsewhere."""
    gater_logging.configure(level, fmt, color=sys.stderr.isatty() and not os.environ.get("NO_COLOR"))


def _host_port(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (port 0: any free one)", ctx, param)
    return value


_OPTIONS = [
    click.option("--metrics-listen", envvar="GATER_METRICS_LISTEN", default=None, metavar="HOST:PORT",
                 callback=_host_port,
                 help="Serve Prometheus /metrics, /livez and /readyz over HTTP here (off by default) "
                      "[env GATER_METRICS_LISTEN]."),
    click.option("--otlp-endpoint", envvar="OTEL_EXPORTER_OTLP_ENDPOINT", default=None, metavar="URL",
                 help="Send OpenTelemetry traces to this OTLP/gRPC collector, e.g. http://otel:4317 "
                      "(off by default) [env OTEL_EXPORTER_OTLP_ENDPOINT]."),
    click.option("--service-name", envvar="OTEL_SERVICE_NAME", default=None,
                 help="service.name of the traces (default: gater-node, gater-gateway, gater-dev) "
                      "[env OTEL_SERVICE_NAME]."),
    click.option("--trace-metadata", is_flag=True, envvar="GATER_TRACE_METADATA", default=False,
                 help="Nodes: write the appending call's traceparent into each event's JSON metadata "
                      "[env GATER_TRACE_METADATA]."),
    click.option("--access-log", is_flag=True, envvar="GATER_ACCESS_LOG", default=False,
                 help="One log line per call (method, status, duration, peer, principal) on the "
                      "gater.access logger [env GATER_ACCESS_LOG]."),
]  # fmt: skip


def observability_options(role: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the flags to a command, which receives them as `observability`."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(_OPTIONS):
            fn = option(fn)

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in _NAMES}
            observability = ObservabilityConfig(
                metrics_listen=given["metrics_listen"] or None,
                otlp_endpoint=given["otlp_endpoint"] or None,
                service_name=given["service_name"] or f"gater-{role}",
                trace_metadata=given["trace_metadata"],
                access_log=given["access_log"],
            )
            return fn(observability=observability, **kwargs)

        return wrapper

    return decorate


def for_worker(observability: ObservabilityConfig, worker: int) -> ObservabilityConfig:
    """`gater gateway --workers N`: worker `worker` serves its metrics on the given port +
    `worker` (each process has its own counters; port 0 stays 0: any free one)."""
    if not observability.metrics_listen:
        return observability
    host, _, port = observability.metrics_listen.rpartition(":")
    shifted = int(port) + worker if int(port) else 0
    return dataclasses.replace(observability, metrics_listen=f"{host}:{shifted}")
