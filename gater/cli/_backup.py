"""`gater backup` and `gater restore`: a consistent copy of a store while it serves, and back.

Owns: choosing how. With `--data-dir` (SQLite, on the machine holding the node's data
directory): SQLite's online backup API copies the store's file while the node keeps serving,
and `restore` puts the file back into a data directory no node runs on. Without it (any
backend, through any node or gateway): the backup is an export in the portable format — one
consistent view (PostgreSQL: one REPEATABLE READ transaction) — and `restore` imports it into
an empty or new store. `restore` tells the two kinds of file apart by SQLite's file header.
Must not import gater.node, gater.gateway, gater.subscriptions or the other CLI rooms but
_transfer, _output and _settings: it uses the SQLite store's file functions and the client.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..client import Client
from ..errors import GaterError
from ..store.sqlite import SQLITE_MAGIC, DataDirInUseError, backup_file, restore_file
from ._output import EXIT_HELP, Output, exit_code_for
from ._settings import ClientCommand, Settings, connection_options, run
from ._transfer import export_store, import_store, summary_row

__all__ = ["backup", "restore"]

_DATA_DIR = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="GATER_DATA_DIR",
    help="The SQLite node's data directory (this machine): copy the store's database file itself "
         "[env GATER_DATA_DIR]. Without it: a portable export through --addr.",
)  # fmt: skip


def _store(settings: Settings) -> str:
    if not settings.store:
        raise click.UsageError("--store is needed: which store to back up or restore")
    return settings.store


def _local(settings: Settings, title: str, fn: object, *args: object) -> None:
    """Runs a file operation of the SQLite store; its failures exit as the others' do."""
    out = Output(settings.json)
    try:
        out.record(fn(*args), title)  # type: ignore[operator]
    except GaterError as e:
        out.error(e)
        sys.exit(exit_code_for(e))
    except (DataDirInUseError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The backup file to write.")  # fmt: skip
@_DATA_DIR
@connection_options
def backup(settings: Settings, path: Path, data_dir: Path | None) -> None:
    """Take a consistent copy of the store --store while it serves and appends go on: every
    event committed before the backup began, nothing half-written."""
    store = _store(settings)
    if data_dir is not None:

        def copy() -> dict[str, object]:
            last = backup_file(data_dir, store, path)
            return {"store_id": store, "kind": "sqlite", "head": last, "file": str(path)}

        _local(settings, "Backed up", copy)
        return

    async def work(client: Client, out: Output) -> None:
        summary = await export_store(client, out, store, path, resume=False)
        out.record({"kind": "export", **summary_row(summary, path)}, "Backed up")

    run(settings, work)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.option("--file", "path", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True,
              help="A file `gater backup` (or `gater export`) wrote.")  # fmt: skip
@_DATA_DIR
@click.option("--replace", is_flag=True, help="SQLite file: replace the store if the data directory has it.")
@connection_options
def restore(settings: Settings, path: Path, data_dir: Path | None, replace: bool) -> None:
    """Bring a backup back as the store --store. A SQLite backup goes into --data-dir, with no
    node running on it; a portable one is imported through --addr into an empty or new store."""
    store = _store(settings)
    with path.open("rb") as f:
        sqlite_file = f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    if sqlite_file:
        if data_dir is None:
            raise click.UsageError("a SQLite backup is restored into a data directory: give --data-dir")

        def put() -> dict[str, object]:
            last = restore_file(data_dir, store, path, replace=replace)
            return {"store_id": store, "kind": "sqlite", "head": last, "data_dir": str(data_dir)}

        _local(settings, "Restored", put)
        return

    async def work(client: Client, out: Output) -> None:
        summary = await import_store(client, out, store, path)
        out.record({"kind": "export", **summary_row(summary, path)}, "Restored")

    run(settings, work)
