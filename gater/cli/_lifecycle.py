"""The lifecycle commands: delete-stream, stream-meta (get, set), redact, scavenge.

Owns: turning their flags into client calls and their results into output lines or tables
(docs/lifecycle.md says what each guarantees).
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click

from ..client import ANY, NO_STREAM, STREAM_EXISTS, Client, ScavengeStatus, StreamMetadata
from ._output import EXIT_HELP, Output
from ._settings import ClientCommand, ClientGroup, Settings, connection_options, run

__all__ = ["delete_stream", "redact", "scavenge", "stream_meta"]


def _expected(value: str, flag: str) -> int | str:
    if value in (ANY, NO_STREAM, STREAM_EXISTS):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not any, no_stream, stream_exists or a number", param_hint=flag) from None


@click.command("delete-stream", cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream")
@click.option("--tombstone", is_flag=True, help="Delete for good: the stream can never be written again.")
@click.option("--expected-version", "expected", default=ANY, show_default=True,
              help="any, no_stream, stream_exists, or the version the stream must be at.")  # fmt: skip
@click.option("--yes", is_flag=True, help="Do not ask before a tombstone.")
@connection_options
def delete_stream(settings: Settings, stream: str, tombstone: bool, expected: str, yes: bool) -> None:
    """Delete STREAM: soft (reads answer as for a missing stream; an append brings it back,
    continuing its versions) or --tombstone (never written again). The events stay on disk
    until `gater scavenge`."""
    expected_version = _expected(expected, "--expected-version")
    if tombstone and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("a tombstone needs --yes when nobody is at a terminal to confirm")
        if not click.confirm(f"Tombstone stream {stream!r}? It can never be written again.", err=True):
            raise click.UsageError("not confirmed (use --yes in scripts)")

    async def work(client: Client, out: Output) -> None:
        version = await client.delete_stream(settings.store, stream, expected_version, tombstone=tombstone)
        out.record({"stream_id": stream, "version": version, "tombstone": tombstone}, "Stream deleted")

    run(settings, work)


@click.group("stream-meta", cls=ClientGroup, epilog=EXIT_HELP)
def stream_meta() -> None:
    """Read or replace a stream's metadata: max_count, max_age, truncate_before, custom JSON."""


def _meta_row(stream: str, m: StreamMetadata) -> dict[str, Any]:
    return {"stream_id": stream, **dataclasses.asdict(m)}


@stream_meta.command("get", epilog=EXIT_HELP)
@click.argument("stream")
@connection_options
def stream_meta_get(settings: Settings, stream: str) -> None:
    """Print STREAM's metadata, its meta version (-1: none written) and deletion state."""

    async def work(client: Client, out: Output) -> None:
        out.record(_meta_row(stream, await client.get_stream_metadata(settings.store, stream)), f"Metadata of {stream}")

    run(settings, work)


@stream_meta.command("set", epilog=EXIT_HELP)
@click.argument("stream")
@click.option("--max-count", type=click.IntRange(min=1), default=None, help="Keep only the newest N events.")
@click.option("--max-age", "max_age_s", type=click.IntRange(min=1), default=None,
              help="Hide events older than this many seconds.")  # fmt: skip
@click.option("--truncate-before", type=click.IntRange(min=0), default=None, help="Hide versions below this one.")
@click.option("--custom", default="{}", show_default=True, help="The user's JSON object.")
@click.option("--expected-meta-version", "expected", default=ANY, show_default=True,
              help="any, no_stream (none written yet), or the meta version it must be at.")  # fmt: skip
@connection_options
def stream_meta_set(
    settings: Settings, stream: str, max_count: int | None, max_age_s: int | None, truncate_before: int | None,
    custom: str, expected: str,
) -> None:
    """Replace STREAM's metadata (a rule not given is lifted); reads honour it at once."""
    try:
        body = json.loads(custom)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--custom") from None
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--custom")
    meta = StreamMetadata(max_count=max_count, max_age_s=max_age_s, truncate_before=truncate_before, custom=body)
    expected_version = _expected(expected, "--expected-meta-version")

    async def work(client: Client, out: Output) -> None:
        version = await client.set_stream_metadata(settings.store, stream, meta, expected_version)
        out.record({"stream_id": stream, "meta_version": version}, "Metadata written")

    run(settings, work)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream")
@click.argument("version", type=click.IntRange(min=0))
@click.option("--yes", is_flag=True, help="Do not ask: the data and metadata are gone for good.")
@connection_options
def redact(settings: Settings, stream: str, version: int, yes: bool) -> None:
    """Replace the data and metadata of STREAM's event at VERSION with {"$redacted": true},
    keeping its id, type, position and tags (irreversible; audited)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("redacting needs --yes when nobody is at a terminal to confirm")
        if not click.confirm(f"Redact version {version} of {stream!r}? Its data is gone for good.", err=True):
            raise click.UsageError("not confirmed (use --yes in scripts)")

    async def work(client: Client, out: Output) -> None:
        await client.redact_event(settings.store, stream, version)
        out.record({"stream_id": stream, "version": version, "redacted": True}, "Event redacted")

    run(settings, work)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.option("--no-wait", is_flag=True, help="Answer once the scavenge is under way instead of when it is done.")
@click.option("--restart", is_flag=True, help="Start again from position 0 even if one is under way.")
@click.option("--status", "status_only", is_flag=True, help="Only print where the last scavenge is.")
@connection_options
def scavenge(settings: Settings, no_wait: bool, restart: bool, status_only: bool) -> None:
    """Remove from disk the events of the store no reader sees any more (deleted, truncated,
    expired), online; positions of the others never change."""

    async def work(client: Client, out: Output) -> None:
        if status_only:
            s: ScavengeStatus = await client.get_scavenge_status(settings.store)
        else:
            s = await client.scavenge(settings.store, wait=not no_wait, restart=restart, timeout_s=None)
        row = dataclasses.asdict(s)
        row["started_at"] = s.started_at.isoformat() if s.started_at else None
        out.record(row, "Scavenge")

    run(settings, work)
