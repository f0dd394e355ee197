"""What every client command shares: its connection flags, the connection, and the run.

Owns: `ClientCommand` / `ClientGroup` (usage errors exit 1, since 2 means "not found"),
`Settings` (--addr/GATER_ADDR — host:port lists or gater:// connection strings —, --store,
timeouts, --json, TLS files, the credential: --api-key/GATER_API_KEY or --token/GATER_TOKEN),
`connection_options` (the decorator adding those flags; `security_options` alone for `gater
health`), and `run` (connect, do the work, turn what went wrong into a message and an exit
code).
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..client import Client, TLSConfig, check_credentials_travel, parse_target
from ..errors import GaterError
from ._output import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, Output, exit_code_for

__all__ = ["ClientCommand", "ClientGroup", "Security", "Settings", "connection_options", "run", "security_options"]


class _UsageIsOne:
    """Click exits 2 on usage errors; here 2 means "not found", so usage errors exit 1."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)  # type: ignore[misc]
        except click.UsageError as e:
            e.exit_code = EXIT_BAD_INPUT
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except click.UsageError as e:
            e.exit_code = EXIT_BAD_INPUT
            raise


class ClientCommand(_UsageIsOne, click.Command):
    pass


class ClientGroup(_UsageIsOne, click.Group):
    command_class = ClientCommand


# -- shared options and the connection -----------------------------------------------------------


class Security:
    """How a command reaches a server safely: TLS, and who it says it is."""

    def __init__(self, tls: bool, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                 server_name: str | None, api_key: str | None, token: str | None,
                 allow_insecure: bool) -> None:  # fmt: skip
        self.tls = None
        if tls or ca_file or cert_file or key_file:
            self.tls = TLSConfig(
                root_certificates=ca_file.read_bytes() if ca_file else None,
                certificate_chain=cert_file.read_bytes() if cert_file else None,
                private_key=key_file.read_bytes() if key_file else None,
                server_name=server_name,
            )
        if api_key and token:
            raise click.UsageError("give one credential: --api-key (GATER_API_KEY) or --token (GATER_TOKEN)")
        self.api_key = api_key or None
        self.token = token or None
        self.allow_insecure = allow_insecure

    def options(self) -> dict[str, Any]:
        """What the flags said, for `Client.connect` (None: not said)."""
        options = {"tls": self.tls, "api_key": self.api_key, "token": self.token,
                   "allow_insecure_credentials": self.allow_insecure or None}  # fmt: skip
        return {k: v for k, v in options.items() if v is not None}

    def check_travel(self, addr: str) -> None:
        """A credential goes over TLS or to loopback only (see Client); a usage error naming the
        flag otherwise, before anything is sent."""
        try:
            target = parse_target(addr)
        except GaterError:
            return  # connecting says what is wrong with it
        options = {**target.options, **self.options()}
        tls = bool(options.get("tls")) or any(k.startswith("tls_") for k in options)
        try:
            check_credentials_travel(target.addresses, api_key=options.get("api_key"), token=options.get("token"),
                                     tls=tls, allow_insecure=self.allow_insecure)  # fmt: skip
        except GaterError as e:
            flag = "'--api-key'" if options.get("api_key") else "'--token'"
            raise click.BadParameter(e.message.partition(": ")[2] or e.message, param_hint=flag) from None


_SECURITY_OPTIONS = ("tls", "ca_file", "cert_file", "key_file", "server_name", "api_key", "token",
                     "allow_insecure_credentials")


def security_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the TLS and credential flags; the command receives them as `security: Security`."""
    options = [
        click.option("--tls", is_flag=True, help="Use TLS (with the system's CAs unless --ca-file)."),
        click.option("--ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM CA certificate(s) to trust (implies --tls)."),
        click.option("--cert-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM client certificate for mutual TLS."),
        click.option("--key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM client key for mutual TLS."),
        click.option("--server-name", default=None, help="Name to check the server's certificate against."),
        click.option("--api-key", envvar="GATER_API_KEY", default=None,
                     help="API key to call with (gtr.<id>.<secret>). As a flag it is visible to every user of "
                          "this machine in /proc/<pid>/cmdline: prefer the environment variable [env GATER_API_KEY]."),
        click.option("--token", envvar="GATER_TOKEN", default=None,
                     help="Bearer token (a JWT) to call with; as a flag it is visible in /proc/<pid>/cmdline: "
                          "prefer the environment variable [env GATER_TOKEN]."),
        click.option("--allow-insecure-credentials", is_flag=True, envvar="GATER_ALLOW_INSECURE_CREDENTIALS",
                     help="Send --api-key/--token without TLS to a host that is not this machine (a network you "
                          "trust only) [env GATER_ALLOW_INSECURE_CREDENTIALS]."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        security = Security(*(kwargs.pop(name) for name in _SECURITY_OPTIONS))
        return fn(security=security, **kwargs)

    return wrapper


class Settings:
    """What every client command was told: where, how, and how to print."""

    def __init__(self, addr: str, store: str, timeout_s: float | None, connect_timeout_s: float | None, json_out: bool,
                 security: Security) -> None:  # fmt: skip
        self.addr = addr
        self.store = store
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.json = json_out or not sys.stdout.isatty()
        self.security = security

    @property
    def tls(self) -> TLSConfig | None:
        return self.security.tls

    def client_options(self) -> dict[str, Any]:
        """What the flags said, for `Client.connect`; what they left out comes from a gater://
        connection string in --addr, else the client's defaults (10 s, 5 s, plaintext, no
        credential)."""
        options = {"timeout_s": self.timeout_s, "connect_timeout_s": self.connect_timeout_s}
        return {**{k: v for k, v in options.items() if v is not None}, **self.security.options()}

    async def connect(self) -> Client:
        self.security.check_travel(self.addr)
        return await Client.connect(self.addr, **self.client_options())


def connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--addr", envvar="GATER_ADDR", default="127.0.0.1:50051", show_default=True,
                     help="host:port of a node or gateway; several, comma-separated, are tried in turn; "
                          "or a connection string gater://host:port,host:port?tls=true&timeout_s=5 "
                          "[env GATER_ADDR]."),
        click.option("--store", envvar="GATER_STORE", default="", show_default="the server's default",
                     help="Store to use [env GATER_STORE]."),
        click.option("--timeout", "timeout_s", type=float, default=None, show_default="10",
                     help="Deadline of each call, in seconds."),
        click.option("--connect-timeout", "connect_timeout_s", type=float, default=None, show_default="5",
                     help="Seconds to wait for a server to answer."),
        click.option("--json", "json_out", is_flag=True,
                     help="JSON lines on stdout even on a terminal (the default when piped)."),
    ]  # fmt: skip

    @functools.wraps(fn)
    def wrapper(addr: str, store: str, timeout_s: float | None, connect_timeout_s: float | None, json_out: bool,
                security: Security, **kwargs: Any) -> Any:  # fmt: skip
        settings = Settings(addr, store, timeout_s, connect_timeout_s, json_out, security)
        return fn(settings, **kwargs)

    wrapped = security_options(wrapper)
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def run(settings: Settings, work: Callable[[Client, Output], Any]) -> None:
    """Connects, runs `work`, and turns what went wrong into a message and an exit code."""
    out = Output(settings.json)

    async def go() -> None:
        async with await settings.connect() as client:
            await work(client, out)

    try:
        asyncio.run(go())
    except GaterError as e:
        out.error(e)
        sys.exit(exit_code_for(e))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # `gater read ... | head`: the reader left; that is not our failure.
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        sys.exit(EXIT_OK)

