"""The administrative commands: snapshot (record, read, delete, list), stores, status.

Owns: turning their flags into client calls and their results into output lines or tables.
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click

from ..client import (
    Client,
    ClusterStatus,
    Snapshot,
)
from ._output import EXIT_HELP, Output
from ._settings import ClientCommand, ClientGroup, Settings, connection_options, run

__all__ = ["snapshot", "status", "stores"]


def _snapshot_row(s: Snapshot, with_data: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source_uuid": s.source_uuid,
        "stream_uuid": s.stream_uuid,
        "source_version": s.source_version,
        "source_type": s.source_type,
        "created_at": s.created_at.isoformat() if s.created_at else None,
    }
    if with_data:
        row["data"] = s.data if not isinstance(s.data, bytes) else {"hex": s.data.hex()}
        row["metadata"] = s.metadata if not isinstance(s.metadata, bytes) else {"hex": s.metadata.hex()}
    return row



def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=what) from None



@click.group(cls=ClientGroup, epilog=EXIT_HELP)
def snapshot() -> None:
    """Record, read, delete and list snapshots."""


@snapshot.command("record", epilog=EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.argument("source_version", type=click.IntRange(min=0))
@click.argument("data")
@click.option("--type", "source_type", default="", help="A type name for the data (e.g. Greenhouse).")
@connection_options
def snapshot_record(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int, data: str, source_type: str) -> None:
    """Record DATA (JSON) as the snapshot of SOURCE_UUID/STREAM_UUID at SOURCE_VERSION."""
    body = _json_arg(data, "DATA")

    async def work(client: Client, out: Output) -> None:
        s = await client.record_snapshot(settings.store, source_uuid, stream_uuid, source_version, body, source_type=source_type)
        out.record(_snapshot_row(s, with_data=False), "Snapshot recorded")

    run(settings, work)


@snapshot.command("read", epilog=EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.option("--version", "source_version", type=click.IntRange(min=0), default=None, help="Default: the latest.")
@connection_options
def snapshot_read(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int | None) -> None:
    """Print a snapshot (the latest unless --version)."""

    async def work(client: Client, out: Output) -> None:
        s = await client.read_snapshot(settings.store, source_uuid, stream_uuid, source_version)
        out.record(_snapshot_row(s, with_data=True), "Snapshot")

    run(settings, work)


@snapshot.command("delete", epilog=EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.option("--version", "source_version", type=click.IntRange(min=0), default=None, help="Default: every version.")
@connection_options
def snapshot_delete(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int | None) -> None:
    """Delete a snapshot (every version unless --version)."""

    async def work(client: Client, out: Output) -> None:
        deleted = await client.delete_snapshot(settings.store, source_uuid, stream_uuid, source_version)
        out.record({"deleted": deleted}, "Snapshots deleted")

    run(settings, work)


@snapshot.command("list", epilog=EXIT_HELP)
@click.option("--source", "source_uuid", default="", help="Only this source.")
@click.option("--stream", "stream_uuid", default="", help="Only this stream.")
@connection_options
def snapshot_list(settings: Settings, source_uuid: str, stream_uuid: str) -> None:
    """List snapshots (without their data)."""

    async def work(client: Client, out: Output) -> None:
        rows = [_snapshot_row(s, False) for s in await client.list_snapshots(settings.store, source_uuid, stream_uuid)]
        out.records(rows, "Snapshots", ["source_uuid", "stream_uuid", "source_version", "source_type", "created_at"])

    run(settings, work)


@click.group(cls=ClientGroup, invoke_without_command=True, epilog=EXIT_HELP)
@connection_options
@click.pass_context
def stores(ctx: click.Context, settings: Settings) -> None:
    """List stores (no subcommand: these options apply to the listing), or create, remove,
    and inspect one (`gater stores create --help`)."""
    if ctx.invoked_subcommand is None:
        _list_stores(settings)


@stores.command("list", epilog=EXIT_HELP)
@connection_options
def stores_list(settings: Settings) -> None:
    """List the stores."""
    _list_stores(settings)


def _list_stores(settings: Settings) -> None:
    async def work(client: Client, out: Output) -> None:
        rows = [{"store_id": s.store_id, "created_at": s.created_at.isoformat() if s.created_at else None}
                for s in await client.list_stores()]  # fmt: skip
        out.records(rows, "Stores", ["store_id", "created_at"])

    run(settings, work)


@stores.command("create", epilog=EXIT_HELP)
@click.argument("store_id")
@connection_options
def stores_create(settings: Settings, store_id: str) -> None:
    """Create the store STORE_ID."""

    async def work(client: Client, out: Output) -> None:
        s = await client.create_store(store_id)
        out.record({"store_id": s.store_id, "created_at": s.created_at.isoformat() if s.created_at else None}, "Store created")

    run(settings, work)


@stores.command("remove", epilog=EXIT_HELP)
@click.argument("store_id")
@click.option("--yes", is_flag=True, help="Do not ask: every event, snapshot and subscription in it goes.")
@connection_options
def stores_remove(settings: Settings, store_id: str, yes: bool) -> None:
    """Remove the store STORE_ID and everything in it (irreversible)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("removing a store needs --yes when nobody is at a terminal to confirm")
        if not click.confirm(f"Remove store {store_id!r} and every event in it?", err=True):
            raise click.UsageError("not confirmed (use --yes in scripts)")

    async def work(client: Client, out: Output) -> None:
        await client.remove_store(store_id)
        out.record({"store_id": store_id, "removed": True}, "Store removed")

    run(settings, work)


@stores.command("status", epilog=EXIT_HELP)
@click.argument("store_id", required=False)
@connection_options
def stores_status(settings: Settings, store_id: str | None) -> None:
    """Counts and sizes of STORE_ID (default: --store, else the server's default store)."""

    async def work(client: Client, out: Output) -> None:
        s = await client.get_store_status(store_id or settings.store)
        out.record(_fields(s), f"Store {s.store_id}")

    run(settings, work)


@stores.command("config", epilog=EXIT_HELP)
@click.argument("store_id", required=False)
@connection_options
def stores_config(settings: Settings, store_id: str | None) -> None:
    """How STORE_ID is configured (backend, location, durability, limits)."""

    async def work(client: Client, out: Output) -> None:
        c = await client.get_store_config(store_id or settings.store)
        row = _fields(c)
        row["created_at"] = c.created_at.isoformat() if c.created_at else None
        out.record(row, f"Store {c.store_id}")

    run(settings, work)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@connection_options
def status(settings: Settings) -> None:
    """The server's role, ids, version and backend, and the members it knows."""

    async def work(client: Client, out: Output) -> None:
        s: ClusterStatus = await client.cluster_status()
        members = [_fields(m) for m in s.members]
        if out.json:
            row = _fields(s)
            row["members"] = members
            out.line(row)
            return
        row = {k: v for k, v in _fields(s).items() if k != "members"}
        out.record(row, "Cluster status")
        out.records(members, "Members", ["node_id", "address", "cluster_id", "healthy", "in_flight", "failures"])

    run(settings, work)

