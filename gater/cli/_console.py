"""`gater console`: the interactive console, started with the client commands' connection flags.

Owns: only the command. The console itself (gater.console) knows nothing of the CLI; the
client commands know nothing of the console.
Must not import anything from gater but gater.console, gater.errors and this package's
client-side modules.
"""

from __future__ import annotations

import asyncio
import sys

import click

from ..console import run_console
from ..errors import GaterError
from ._output import EXIT_HELP, EXIT_INTERRUPTED, Output, exit_code_for
from ._settings import ClientCommand, Settings, connection_options

__all__ = ["console"]


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@connection_options
def console(settings: Settings) -> None:
    """The interactive test console: observers, producers and subscriptions over the
    greenhouse domain, in a 15-entry menu (the seed's)."""
    try:
        asyncio.run(run_console(settings.addr, settings.store, **settings.client_options()))
    except GaterError as e:
        Output(False).error(e)
        sys.exit(exit_code_for(e))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)

