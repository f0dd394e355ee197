"""The console's "Data Lifecycle" entries: delete a stream, its metadata, redact an event,
scavenge, and export / import transfer files (docs/lifecycle.md, docs/transfer.md).

Owns: `LifecycleMenu`, mixed into ConsoleApp, and `ProgressLines`, the progress of a transfer
as lines (one per tenth of the way; a bar redrawn in place would fight the prompt the
workers' output is printed above).
Must not import anything from gater but gater.client, gater.errors and this package.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Awaitable, Callable

from rich.table import Table

from ..client import NO_STREAM, ScavengeStatus, StreamMetadata, TransferSummary
from ._io import ConsoleIO

__all__ = ["LifecycleMenu", "ProgressLines"]


class ProgressLines:
    """`on_start(head, done)` and `on_progress(n)` of Client.export_store / import_store (the
    callbacks the CLI's bar takes), printed as a line each time another tenth is passed."""

    def __init__(self, verb: str, say: Callable[[str], None]) -> None:
        self.verb, self.say = verb, say
        self.total = self.done = 0
        self._tenths = 0

    def start(self, head: int, done: int) -> None:
        self.total, self.done = head + 1, done
        self.say(f"⏳ {self.verb}: {self.total:,} positions to go through" + (f" ({done:,} there already)" if done else ""))

    def advance(self, n: int) -> None:
        self.done += n
        tenths = 10 * self.done // self.total if self.total else 10
        if tenths > self._tenths:
            self._tenths = tenths
            self.say(f"   {self.verb}: {self.done:,} / {self.total:,} positions ({10 * tenths}%)")


def _file(typed: str) -> str:
    """The path typed, with ~ expanded (no file system access)."""
    return os.path.expanduser(typed)


def _when(s: ScavengeStatus) -> str:
    return s.started_at.strftime("%Y-%m-%d %H:%M:%S") if s.started_at else "never"


class LifecycleMenu(ConsoleIO):
    """Mixed into ConsoleApp."""

    async def _ask_stream(self) -> str:
        streams = [info.stream_id for info in await self.client.get_streams(self.store)]
        self.say(f"Streams: {', '.join(streams) if streams else '(none)'}")
        stream = await self.ask("Enter stream name: ")
        if not stream:
            self.fail("A stream name is needed.")
        return stream

    async def delete_stream(self) -> None:
        self.say("\n🗑  Delete a Stream", "bold bright_red")
        stream = await self._ask_stream()
        if not stream:
            return
        how = (await self.ask("Soft delete (an append brings it back) or tombstone (for good)? [soft/tombstone] (default soft): ",
                              "soft")).lower()  # fmt: skip
        if how not in ("soft", "tombstone"):
            self.fail(f"Expected soft or tombstone, got {how!r}")
            return
        tombstone = how == "tombstone"
        if tombstone and not await self.confirm(f"Tombstone stream '{stream}'? It can never be written again."):
            self.say("Not confirmed: nothing deleted.", self.theme.warn)
            return
        version = await self.client.delete_stream(self.store, stream, tombstone=tombstone)
        done = "tombstoned: it can never be written again" if tombstone else "soft-deleted: an append brings it back"
        self.say(f"✅ Stream '{stream}' {done} (its last version was {version})", self.theme.ok)
        self.say("   Its events stay on disk until a scavenge (Scavenge the Store).", "dim")

    def _metadata_table(self, stream: str, m: StreamMetadata) -> Table:
        def rule(value: int | None) -> str:
            return "-" if value is None else str(value)

        table = Table("Rule", "Value", title=f"Metadata of '{stream}'")
        table.add_row("max_count", rule(m.max_count))
        table.add_row("max_age (s)", rule(m.max_age_s))
        table.add_row("truncate_before", rule(m.truncate_before))
        table.add_row("custom", json.dumps(dict(m.custom), ensure_ascii=False))
        table.add_row("meta_version", str(m.meta_version))
        table.add_row("state", m.state)
        return table

    async def stream_metadata(self) -> None:
        self.say("\n🏷  Stream Metadata", "bold bright_blue")
        stream = await self._ask_stream()
        if not stream:
            return
        current = await self.client.get_stream_metadata(self.store, stream)
        self.out.print(self._metadata_table(stream, current))
        if not await self.confirm("Change it?"):
            return
        self.say("Each rule left empty is lifted (no limit); the metadata is replaced whole.", "dim")
        ok, max_count = await self.ask_optional_int("max_count: keep only the newest N events: ", 1)
        if not ok:
            return
        ok, max_age_s = await self.ask_optional_int("max_age: hide events older than this many seconds: ", 1)
        if not ok:
            return
        ok, truncate_before = await self.ask_optional_int("truncate_before: hide versions below: ", 0)
        if not ok:
            return
        raw = await self.ask("custom: a JSON object (default {}): ", "{}")
        try:
            custom = json.loads(raw)
        except ValueError as e:
            self.fail(f"custom is not JSON: {e}", 'type a JSON object, e.g. {"owner": "ops"}')
            return
        if not isinstance(custom, dict):
            self.fail(f"custom must be a JSON object, got {raw!r}", 'type a JSON object, e.g. {"owner": "ops"}')
            return
        wanted = StreamMetadata(max_count=max_count, max_age_s=max_age_s, truncate_before=truncate_before, custom=custom)
        # Replaced only if nobody wrote it since it was shown (WrongExpectedVersionError otherwise).
        expected = current.meta_version if current.meta_version >= 0 else NO_STREAM
        meta_version = await self.client.set_stream_metadata(self.store, stream, wanted, expected)
        self.say(f"✅ Metadata of '{stream}' written (meta version {meta_version}); reads honour it at once", self.theme.ok)
        self.out.print(self._metadata_table(stream, await self.client.get_stream_metadata(self.store, stream)))

    async def redact_event(self) -> None:
        self.say("\n✂️  Redact an Event", "bold bright_red")
        stream = await self._ask_stream()
        if not stream:
            return
        version = await self.ask_int("Version of the event to redact: ", -1, 0)
        if version is None:
            return
        if not await self.confirm(f"Redact version {version} of '{stream}'? Its data and metadata are gone for good."):
            self.say("Not confirmed: nothing redacted.", self.theme.warn)
            return
        await self.client.redact_event(self.store, stream, version)
        self.say(f'✅ Redacted {stream} v{version}: its data and metadata now read {{"$redacted": true}}', self.theme.ok)

    def _scavenge_table(self, s: ScavengeStatus) -> Table:
        table = Table("Running", "Examined below position", "Events removed", "Started", title=f"Scavenge of '{self.store_name}'")
        table.add_row("🟢 yes" if s.running else "no", str(s.next_position), str(s.removed), _when(s))
        return table

    async def scavenge(self) -> None:
        self.say("\n🧹 Scavenge the Store", "bold bright_blue")
        self.out.print(self._scavenge_table(await self.client.get_scavenge_status(self.store)))
        if not await self.confirm("Start a scavenge now (it runs online; this console does not wait)?"):
            return
        status = await self.client.scavenge(self.store, wait=False)
        self.say(f"✅ Scavenge of '{self.store_name}' under way; choose this entry again to see how far it is", self.theme.ok)
        self.out.print(self._scavenge_table(status))

    async def export_store(self) -> None:
        self.say("\n📤 Export the Store to a File", "bold bright_blue")
        stores = [info.store_id for info in await self.client.list_stores()]
        self.say(f"Stores: {', '.join(stores) if stores else '(none)'}")
        store = await self.ask(f"Store to export (default {self.store_name}): ", self.store)
        name = store or "default"
        raw = await self.ask("File to write: ")
        if not raw:
            self.fail("A file name is needed.", "type a path, e.g. /tmp/greenhouse.gater")
            return
        path = _file(raw)
        await self._transfer(
            "Exported", f"exporting {name}", functools.partial(self.client.export_store, store, path),
            f"from '{name}' to {path}", f"Cannot write {path}", "type a path in a directory you may write to",
        )  # fmt: skip

    async def import_store(self) -> None:
        self.say("\n📥 Import a File into a Store", "bold bright_blue")
        raw = await self.ask("File to read: ")
        if not raw:
            self.fail("A file name is needed.", "type the path an export wrote")
            return
        path = _file(raw)
        if not await asyncio.to_thread(os.path.isfile, path):
            self.fail(f"No file at {path}", "type the path an export wrote")
            return
        target = await self.ask("Target store (created when missing; it must be empty or hold a prefix of the file): ")
        if not target:
            self.fail("A target store is needed.", "type a new store's name, e.g. restored")
            return
        await self._transfer(
            "Imported", f"importing into {target}", functools.partial(self.client.import_store, target, path),
            f"from {path} into '{target}'", f"Cannot read {path}", "type the path an export wrote",
        )  # fmt: skip

    async def _transfer(
        self, verb: str, label: str, run: Callable[..., Awaitable[TransferSummary]], where: str, cannot: str, hint: str
    ) -> None:
        """Runs an export or import with progress lines, then says what moved at what rate."""
        progress = ProgressLines(label, self.say)
        began = time.monotonic()
        try:
            summary = await run(on_start=progress.start, on_progress=progress.advance)
        except OSError as e:
            self.fail(f"{cannot}: {e.strerror or e}", hint)
            return
        self._say_summary(verb, summary, where, time.monotonic() - began)

    def _say_summary(self, verb: str, s: TransferSummary, where: str, elapsed_s: float) -> None:
        rate = f"{s.events / elapsed_s:,.0f} events/s" if elapsed_s > 0 else "-"
        self.say(f"✅ {verb} {s.events:,} events {where} in {elapsed_s:.2f} s ({rate})", self.theme.ok)
        self.say(f"   head position {s.head}, {s.snapshots} snapshot(s), {s.subscriptions} subscription(s)"
                 + ("" if s.complete else "; the file has no end entry (an interrupted export): resume it"), "dim")  # fmt: skip
