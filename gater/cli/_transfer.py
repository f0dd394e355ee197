"""`gater export` and `gater import`: a store to and from a transfer file, through any node or
gateway, with a progress bar.

Owns: turning their flags into `Client.export_store` / `Client.import_store` and the summary
into output; `export_store` and `import_store` are shared with `gater backup` / `gater restore`
(_backup), which use them for the portable format.
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import click

from ..client import Client, TransferSummary
from ._output import EXIT_HELP, Output
from ._settings import ClientCommand, Settings, connection_options, run

__all__ = ["export", "export_store", "import_", "import_store", "summary_row"]

_FILE = click.Path(dir_okay=False, path_type=Path)


def summary_row(summary: TransferSummary, path: Path) -> dict[str, Any]:
    return {**dataclasses.asdict(summary), "file": str(path)}


def _store(settings: Settings) -> str:
    if not settings.store:
        raise click.UsageError("--store is needed: which store to move")
    return settings.store


class _Bar:
    """The progress bar, made once the total is known (the export's or the file's head)."""

    def __init__(self, out: Output, description: str, stack: contextlib.ExitStack) -> None:
        self.out, self.description, self.stack = out, description, stack
        self.bar: Any = None

    def start(self, head: int, done: int) -> None:
        self.bar = self.stack.enter_context(self.out.progress(self.description, head + 1))
        self.bar.advance(done)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(n)


async def export_store(client: Client, out: Output, store: str, path: Path, resume: bool) -> TransferSummary:
    with contextlib.ExitStack() as stack:
        bar = _Bar(out, f"exporting {store}", stack)
        return await client.export_store(store, path, resume=resume, on_start=bar.start, on_progress=bar.advance)


async def import_store(client: Client, out: Output, store: str, path: Path) -> TransferSummary:
    with contextlib.ExitStack() as stack:
        bar = _Bar(out, f"importing into {store}", stack)
        return await client.import_store(store, path, on_start=bar.start, on_progress=bar.advance)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.option("--file", "path", type=_FILE, required=True, help="The transfer file to write.")
@click.option("--resume", is_flag=True, help="Continue a file an interrupted export left (after its last complete event).")
@connection_options
def export(settings: Settings, path: Path, resume: bool) -> None:
    """Write the store --store into a transfer file: every event, snapshot and subscription,
    from one consistent view of it (docs/transfer.md)."""
    store = _store(settings)

    async def work(client: Client, out: Output) -> None:
        summary = await export_store(client, out, store, path, resume)
        out.record(summary_row(summary, path), "Exported")

    run(settings, work)


@click.command("import", cls=ClientCommand, epilog=EXIT_HELP)
@click.option("--file", "path", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="The transfer file to read.")  # fmt: skip
@connection_options
def import_(settings: Settings, path: Path) -> None:
    """Write a transfer file into the store --store (created when missing), keeping every
    event's id, version, position and created time. The store must be empty or hold a prefix
    of the file: then the import goes on after its head (run it again to resume)."""
    store = _store(settings)

    async def work(client: Client, out: Output) -> None:
        summary = await import_store(client, out, store, path)
        out.record(summary_row(summary, path), "Imported")

    run(settings, work)
