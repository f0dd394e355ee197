"""The `gater` command.

Owns: the `gater` group (exit codes mean the same in every command: a usage error is 1, since
click's 2 means "not found" here) and the explicit list of its commands. The rooms:
_servers (dev, node, gateway) over _security (their TLS, credential, limit flags and SIGHUP), _health
(the probe), _keys (`gater keys`, `gater certs`: files, no server), the client commands _streams (append, read, subscribe,
version, streams), _lifecycle (delete-stream, stream-meta, redact, scavenge), _admin (snapshot,
stores, status) and _transfer (export, import) over _settings (connection flags, run) and
_output (printing, exit codes); _backup (backup, restore: the SQLite file itself, or the
portable format through _transfer); and _console (`gater console`).
The client-side modules import only gater.client and gater.errors; only _console imports the
console; only _servers imports the servers. Flags, then environment (through click's
`envvar`; this package is the only reader of os.environ), then defaults.
"""

from __future__ import annotations

import difflib
import importlib
import sys

import click

from .. import __version__

__all__ = ["main"]


# Every command, named here and nowhere else: (module of this package, its click object). A
# command's module is imported when the command runs, so `gater health` (a probe run every few
# seconds) or `gater append` does not pay for the console, the servers or the SQLite store.
COMMANDS = {
    "dev": ("_servers", "dev"), "node": ("_servers", "node"), "gateway": ("_servers", "gateway"),
    "health": ("_health", "health"), "keys": ("_keys", "keys"), "certs": ("_keys", "certs"),
    "append": ("_streams", "append"), "read": ("_streams", "read"), "subscribe": ("_streams", "subscribe"),
    "version": ("_streams", "version"), "streams": ("_streams", "streams"),
    "delete-stream": ("_lifecycle", "delete_stream"), "stream-meta": ("_lifecycle", "stream_meta"),
    "redact": ("_lifecycle", "redact"), "scavenge": ("_lifecycle", "scavenge"),
    "snapshot": ("_admin", "snapshot"), "stores": ("_admin", "stores"), "status": ("_admin", "status"),
    "export": ("_transfer", "export"), "import": ("_transfer", "import_"),
    "backup": ("_backup", "backup"), "restore": ("_backup", "restore"), "console": ("_console", "console"),
}


class _Gater(click.Group):
    """Exit codes mean the same across every command: a usage error is 1 (click's default, 2,
    is "not found" here; see `gater append --help`). Commands load on first use (COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            module, attr = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f".{module}", __name__), attr)
            self.add_command(command)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint} `gater --help` lists the commands.")
        return super().resolve_command(ctx, args)

    def main(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            e.show()
            sys.exit(1)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(130)


@click.group(cls=_Gater, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gater")
def main() -> None:
    """ExESDB Gater: a gRPC event store (nodes) and the gateway in front of it."""

