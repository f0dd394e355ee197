"""The `gater` command.

Owns: the `gater` group (exit codes mean the same in every command: a usage error is 1, since
click's 2 means "not found" here) and the explicit list of its commands. The rooms:
_servers (dev, node, gateway) over _security (their TLS, credential, limit flags and SIGHUP), _health
(the probe), _keys (`gater keys`, `gater certs`: files, no server), the client commands _streams (append, read, subscribe,
version, streams), _admin (snapshot, stores, status) and _transfer (export, import) over
_settings (connection flags, run) and _output (printing, exit codes); _backup (backup, restore:
the SQLite file itself, or the portable format through _transfer); and _console (`gater console`).
The client-side modules import only gater.client and gater.errors; only _console imports the
console; only _servers imports the servers. Flags, then environment (through click's
`envvar`; this package is the only reader of os.environ), then defaults.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ._admin import snapshot, status, stores
from ._backup import backup, restore
from ._console import console
from ._health import health
from ._keys import certs, keys
from ._servers import dev, gateway, node
from ._streams import append, read, streams, subscribe, version
from ._transfer import export, import_

__all__ = ["main"]


class _Gater(click.Group):
    """Exit codes mean the same across every command: a usage error is 1 (click's default, 2,
    is "not found" here; see `gater append --help`)."""

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


# Every command, registered here and nowhere else (`gater --help` lists them by name).
for _command in (dev, node, gateway, health, keys, certs, append, read, subscribe, version, streams, snapshot, stores, status,
                 export, import_, backup, restore, console):
    main.add_command(_command)
