"""The `gater` client commands: append, read, subscribe, version, streams, snapshot, stores,
status, and console.

Owns: turning flags (then GATER_* environment variables, through click's `envvar`) into
client calls, printing results (JSON lines when stdout is not a terminal or with --json,
rich tables when it is), progress bars on stderr, and the exit codes below.
Must not import anything from gater but gater.client, gater.errors, gater.config and
gater.console (the console is a client program too).

Exit codes: 0 ok, 1 usage or bad input (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), 2 not found
(store, snapshot, subscription), 3 wrong expected version (FAILED_PRECONDITION), 4 server
unavailable, cannot connect, or deadline exceeded, 5 any other server error, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .client import (
    ANY,
    BACKWARD,
    BEGINNING,
    FORWARD,
    NO_STREAM,
    NOW,
    STREAM_EXISTS,
    Client,
    ClusterStatus,
    Event,
    NewEvent,
    Snapshot,
    TLSConfig,
)
from .errors import (
    DeadlineExceededError,
    GaterError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
    WrongExpectedVersionError,
)

__all__ = ["EXIT_CODES", "register"]

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_NOT_FOUND = 2
EXIT_WRONG_VERSION = 3
EXIT_UNAVAILABLE = 4
EXIT_SERVER = 5
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_BAD_INPUT: "usage or bad input",
    EXIT_NOT_FOUND: "not found (store, snapshot, subscription)",
    EXIT_WRONG_VERSION: "wrong expected version",
    EXIT_UNAVAILABLE: "unavailable: cannot connect, no healthy node, or deadline exceeded",
    EXIT_SERVER: "other server error",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
_EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:<3} {what}" for code, what in EXIT_CODES.items())


def exit_code_for(error: GaterError) -> int:
    if isinstance(error, InvalidArgumentError):
        return EXIT_BAD_INPUT
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, WrongExpectedVersionError):
        return EXIT_WRONG_VERSION
    if isinstance(error, UnavailableError | DeadlineExceededError):
        return EXIT_UNAVAILABLE
    return EXIT_SERVER


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


class Settings:
    """What every client command was told: where, how, and how to print."""

    def __init__(self, addr: str, store: str, timeout_s: float, connect_timeout_s: float, json_out: bool,
                 tls: bool, ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                 server_name: str | None) -> None:  # fmt: skip
        self.addr = addr
        self.store = store
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.json = json_out or not sys.stdout.isatty()
        self.tls = None
        if tls or ca_file or cert_file or key_file:
            self.tls = TLSConfig(
                root_certificates=ca_file.read_bytes() if ca_file else None,
                certificate_chain=cert_file.read_bytes() if cert_file else None,
                private_key=key_file.read_bytes() if key_file else None,
                server_name=server_name,
            )

    def client_options(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "connect_timeout_s": self.connect_timeout_s, "tls": self.tls}

    async def connect(self) -> Client:
        return await Client.connect(self.addr, **self.client_options())


def _connection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--addr", envvar="GATER_ADDR", default="127.0.0.1:50051", show_default=True,
                     help="host:port of a node or gateway; several, comma-separated, are tried in turn "
                          "[env GATER_ADDR]."),
        click.option("--store", envvar="GATER_STORE", default="", show_default="the server's default",
                     help="Store to use [env GATER_STORE]."),
        click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True,
                     help="Deadline of each call, in seconds."),
        click.option("--connect-timeout", "connect_timeout_s", type=float, default=5.0, show_default=True,
                     help="Seconds to wait for a server to answer."),
        click.option("--json", "json_out", is_flag=True,
                     help="JSON lines on stdout even on a terminal (the default when piped)."),
        click.option("--tls", is_flag=True, help="Use TLS (with the system's CAs unless --ca-file)."),
        click.option("--ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM CA certificate(s) to trust (implies --tls)."),
        click.option("--cert-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM client certificate for mutual TLS."),
        click.option("--key-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="PEM client key for mutual TLS."),
        click.option("--server-name", default=None, help="Name to check the server's certificate against."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)

    @functools.wraps(fn)
    def wrapper(addr: str, store: str, timeout_s: float, connect_timeout_s: float, json_out: bool, tls: bool,
                ca_file: Path | None, cert_file: Path | None, key_file: Path | None, server_name: str | None,
                **kwargs: Any) -> Any:  # fmt: skip
        settings = Settings(addr, store, timeout_s, connect_timeout_s, json_out, tls, ca_file, cert_file, key_file, server_name)
        return fn(settings, **kwargs)

    return wrapper


def _run(settings: Settings, work: Callable[[Client, Output], Any]) -> None:
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


# -- output ----------------------------------------------------------------------------------------


class Output:
    """JSON lines (scripts) or rich tables (people), and errors on stderr."""

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode
        self._console: Any = None
        self._err: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    @property
    def err(self) -> Any:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    def line(self, record: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def records(self, rows: list[dict[str, Any]], title: str, columns: list[str] | None = None) -> None:
        if self.json:
            for row in rows:
                self.line(row)
            return
        from rich.table import Table

        columns = columns or (list(rows[0]) if rows else [])
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        self.console.print(table)

    def record(self, row: dict[str, Any], title: str) -> None:
        if self.json:
            self.line(row)
            return
        from rich.table import Table

        table = Table("field", "value", title=title, show_header=False)
        for key, value in row.items():
            table.add_row(key, _cell(value))
        self.console.print(table)

    def note(self, message: str) -> None:
        """A remark for a person: stderr, so stdout stays data."""
        if not self.json:
            self.err.print(message)

    def error(self, e: GaterError) -> None:
        code = exit_code_for(e)
        if self.json:
            record: dict[str, Any] = {"error": e.code, "message": e.message, "exit_code": code}
            if isinstance(e, WrongExpectedVersionError):
                record["current_version"] = e.current_version
            sys.stderr.write(json.dumps(record) + "\n")
        else:
            click.echo(f"gater: {e.code}: {e.message}", err=True)

    def progress(self, description: str, total: int | None) -> Any:
        """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
        if not sys.stderr.isatty():
            return _NoProgress()
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self.err, transient=True)  # fmt: skip
        return _Bar(progress, description, total)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class _Bar:
    def __init__(self, progress: Any, description: str, total: int | None) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=total)

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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


def _expected(value: str) -> int | str:
    if value in (ANY, NO_STREAM, STREAM_EXISTS):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not any, no_stream, stream_exists or a version number", param_hint="--expected-version"
        ) from None


# -- commands ----------------------------------------------------------------------------------


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@click.argument("stream")
@click.argument("source", type=click.File("r"), default="-", required=False)
@click.option("--type", "event_type", help="Append one event of this type (its body from --data).")
@click.option("--data", default=None, help="With --type: the event's JSON body.")
@click.option("--metadata", default=None, help="With --type: the event's JSON metadata.")
@click.option("--id", "event_id", default=None, help="With --type: the event's id (UUID).")
@click.option("--generate", type=click.IntRange(min=1), default=None,
              help="Append this many greenhouse events (the console's producer), e.g. for trying things out.")
@click.option("--expected-version", "expected", default=ANY, show_default=True,
              help="any, no_stream, stream_exists, or the stream's exact current version.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Events per AppendEvents call when reading many.")
@_connection_options
def append(settings: Settings, stream: str, source: Any, event_type: str | None, data: str | None,
           metadata: str | None, event_id: str | None, generate: int | None, expected: str, batch_size: int) -> None:  # fmt: skip
    """Append events to STREAM.

    \b
    One event:   gater append greenhouse1 --type temperature_measured:v1 --data '{"temperature": 21.5}'
    Many:        gater append greenhouse1 events.jsonl     (or on stdin: ... | gater append greenhouse1)
    Generated:   gater append greenhouse1 --generate 1000

    Each input line is a JSON object with event_type, data, and optionally metadata, event_id,
    content_type. Batches after the first expect the version the previous one left, so a
    concurrent writer stops the producer with exit code 3. Prints one JSON line per batch.
    """
    expected_version = _expected(expected)
    if event_type is not None:
        one = NewEvent(
            event_type,
            _json_arg(data, "--data") if data is not None else {},
            _json_arg(metadata, "--metadata") if metadata is not None else None,
            event_id,
        )
        batches: Iterator[list[Any]] = iter([[one]])
        total: int | None = 1
    elif generate is not None:
        batches, total = iter(()), generate
    else:
        if source.isatty():
            raise click.UsageError("give --type, --generate, or JSON lines in a file or on stdin")
        batches, total = _batches(source, batch_size), None

    async def work(client: Client, out: Output) -> None:
        nonlocal batches
        if generate is not None:
            from .console.greenhouse import generate_events

            rng = random.Random()
            version = await client.get_version(settings.store, stream)

            def generated() -> Iterator[list[Any]]:
                left, v = generate, version
                while left > 0:
                    n = min(left, batch_size)
                    yield generate_events(v, n, rng)
                    left -= n
                    v += n

            batches = generated()
        expect: int | str = expected_version
        appended = 0
        with out.progress(f"appending to {stream}", total) as bar:
            for batch in batches:
                appended += len(batch)
                result = await client.append_events(settings.store, stream, batch, expect)
                expect = result.version
                bar.advance(len(batch))
                row = {"stream_id": stream, "events": len(batch), "first_version": result.first_version,
                       "version": result.version, "first_position": result.first_position,
                       "position": result.position, "duplicate": result.duplicate}  # fmt: skip
                if out.json:
                    out.line(row)
                else:
                    out.console.print(
                        f"appended {len(batch)} event(s) to {stream}: versions {result.first_version}..{result.version}, "
                        f"positions {result.first_position}..{result.position}" + (" (duplicate: nothing written)" if result.duplicate else "")
                    )
        if appended == 0:
            raise InvalidArgumentError("events", "no events on the input")

    _run(settings, work)


def _batches(source: Any, batch_size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as e:
            raise InvalidArgumentError(f"line {number}", f"not JSON: {e}") from None
        if not isinstance(item, dict):
            raise InvalidArgumentError(f"line {number}", "must be a JSON object with event_type and data")
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _event_row(e: Event) -> dict[str, Any]:
    return e.to_dict()


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@click.argument("stream")
@click.option("--from", "start", type=click.IntRange(min=0), default=None,
              help="First version (or global position for $all); default: the first (or last, --backward).")
@click.option("--count", type=click.IntRange(min=0), default=0, help="At most this many events (0: all).")
@click.option("--backward", is_flag=True, help="Newest first.")
@_connection_options
def read(settings: Settings, stream: str, start: int | None, count: int, backward: bool) -> None:
    """Read the events of STREAM ($all: every stream, in global order), one JSON line each.

    \b
    gater read greenhouse1
    gater read '$all' --from 100 --count 10
    gater read greenhouse1 --backward --count 1
    """

    async def work(client: Client, out: Output) -> None:
        total = None
        if sys.stderr.isatty():
            last = await client.get_version(settings.store, stream)
            first = start if start is not None else (last if backward else 0)
            available = (first + 1) if backward else max(0, last - first + 1)
            total = min(count, available) if count else available
        rows = []
        with out.progress(f"reading {stream}", total) as bar:
            async for batch in client.read_events(settings.store, stream, start, count, BACKWARD if backward else FORWARD):
                bar.advance(len(batch))
                for e in batch:
                    if out.json:
                        out.line(_event_row(e))
                    else:
                        rows.append(e)
        if not out.json:
            if not rows:
                out.note(f"no events in {stream}")
                return
            out.records(
                [{"pos": e.position, "stream": e.stream_id, "ver": e.version, "type": e.event_type,
                  "data": e.data if not isinstance(e.data, bytes) else f"<{len(e.data)} bytes>",
                  "created": e.created.strftime("%Y-%m-%d %H:%M:%S")} for e in rows],
                title=f"{stream} ({len(rows)} events)",
            )  # fmt: skip

    _run(settings, work)


def _start(value: str) -> str | int:
    if value in (BEGINNING, NOW):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not beginning, now or a position", param_hint="--from") from None


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@click.argument("stream", required=False)
@click.option("--type", "event_type", default=None, help="Only events of this type.")
@click.option("--payload", default=None,
              help='Only events whose JSON body matches, e.g. \'%{operator: "John"}\' or \'{"intensity": "_"}\' '
                   '("_" means any value).')
@click.option("--pattern", default=None, help="Only events whose record matches this JSON (stream_id, event_type, data, ...).")
@click.option("--name", default=None,
              help="Consume the persistent subscription NAME (saved first when STREAM/--type/--payload/--pattern "
                   "is given), acking each event after printing it.")
@click.option("--from", "start", default=BEGINNING, show_default=True,
              help="Transient, or a new persistent one: beginning, now, or a position.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Exit after this many events.")
@click.option("--no-ack", is_flag=True, help="Persistent: print without acking.")
@_connection_options
def subscribe(settings: Settings, stream: str | None, event_type: str | None, payload: str | None, pattern: str | None,
              name: str | None, start: str, limit: int | None, no_ack: bool) -> None:  # fmt: skip
    """Print events as they are appended: catch-up first, then live, until Ctrl-C or --limit.

    \b
    gater subscribe '$all'
    gater subscribe --payload '%{operator: "John"}' --from now
    gater subscribe greenhouse1 --name workers      (persistent: saved, consumed, acked)
    """
    from .console.patterns import PatternError, parse_pattern

    selection: dict[str, Any] = {}
    if stream is not None:
        selection["stream"] = stream
    if event_type is not None:
        selection["event_type"] = event_type
    try:
        if payload is not None:
            selection["payload"] = parse_pattern(payload)
        if pattern is not None:
            selection["pattern"] = parse_pattern(pattern)
    except PatternError as e:
        raise click.BadParameter(str(e), param_hint="--payload/--pattern") from None
    if len(selection) > 1:
        raise click.UsageError("give one of STREAM, --type, --payload, --pattern")
    start_from = _start(start)

    async def work(client: Client, out: Output) -> None:
        if name is not None and selection:
            info = await client.save_subscription(settings.store, name, start_from=start_from, **selection)
            out.note(f"subscription {name} {'created' if info.created else 'updated'}")
        if name is not None:
            subscription = client.subscribe(settings.store, name=name)
        else:
            subscription = client.subscribe(settings.store, start_from=start_from, **selection)
        seen = 0
        async with subscription:
            out.note(f"subscribed ({subscription.name}); Ctrl-C stops")
            async for event in subscription:
                if out.json:
                    out.line(_event_row(event))
                else:
                    from rich.text import Text

                    label = "RECEIVED" if subscription.persistent else "SEEN"
                    body = json.dumps(event.data, ensure_ascii=False) if not isinstance(event.data, bytes) else f"<{len(event.data)} bytes>"
                    out.console.print(
                        Text.assemble(f"{label} [", (f"{event.stream_id}:{event.event_type} (v{event.version}) => {body}", "bright_green"), "]"),
                        soft_wrap=True,
                    )
                if subscription.persistent and not no_ack:
                    await subscription.ack(event)
                seen += 1
                if limit is not None and seen >= limit:
                    return

    _run(settings, work)


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@click.argument("stream")
@_connection_options
def version(settings: Settings, stream: str) -> None:
    """Print STREAM's version (-1: no such stream; for $all, the last global position)."""

    async def work(client: Client, out: Output) -> None:
        v = await client.get_version(settings.store, stream)
        if out.json:
            out.line({"stream_id": stream, "version": v})
        else:
            out.console.print(str(v))

    _run(settings, work)


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@_connection_options
def streams(settings: Settings) -> None:
    """List the streams of the store with their versions."""

    async def work(client: Client, out: Output) -> None:
        rows = [{"stream_id": s.stream_id, "version": s.version} for s in await client.get_streams(settings.store)]
        if not rows:
            out.note("no streams")
        out.records(rows, "Streams", ["stream_id", "version"])

    _run(settings, work)


@click.group(cls=ClientGroup, epilog=_EXIT_HELP)
def snapshot() -> None:
    """Record, read, delete and list snapshots."""


@snapshot.command("record", epilog=_EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.argument("source_version", type=click.IntRange(min=0))
@click.argument("data")
@click.option("--type", "source_type", default="", help="A type name for the data (e.g. Greenhouse).")
@_connection_options
def snapshot_record(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int, data: str, source_type: str) -> None:
    """Record DATA (JSON) as the snapshot of SOURCE_UUID/STREAM_UUID at SOURCE_VERSION."""
    body = _json_arg(data, "DATA")

    async def work(client: Client, out: Output) -> None:
        s = await client.record_snapshot(settings.store, source_uuid, stream_uuid, source_version, body, source_type=source_type)
        out.record(_snapshot_row(s, with_data=False), "Snapshot recorded")

    _run(settings, work)


@snapshot.command("read", epilog=_EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.option("--version", "source_version", type=click.IntRange(min=0), default=None, help="Default: the latest.")
@_connection_options
def snapshot_read(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int | None) -> None:
    """Print a snapshot (the latest unless --version)."""

    async def work(client: Client, out: Output) -> None:
        s = await client.read_snapshot(settings.store, source_uuid, stream_uuid, source_version)
        out.record(_snapshot_row(s, with_data=True), "Snapshot")

    _run(settings, work)


@snapshot.command("delete", epilog=_EXIT_HELP)
@click.argument("source_uuid")
@click.argument("stream_uuid")
@click.option("--version", "source_version", type=click.IntRange(min=0), default=None, help="Default: every version.")
@_connection_options
def snapshot_delete(settings: Settings, source_uuid: str, stream_uuid: str, source_version: int | None) -> None:
    """Delete a snapshot (every version unless --version)."""

    async def work(client: Client, out: Output) -> None:
        deleted = await client.delete_snapshot(settings.store, source_uuid, stream_uuid, source_version)
        out.record({"deleted": deleted}, "Snapshots deleted")

    _run(settings, work)


@snapshot.command("list", epilog=_EXIT_HELP)
@click.option("--source", "source_uuid", default="", help="Only this source.")
@click.option("--stream", "stream_uuid", default="", help="Only this stream.")
@_connection_options
def snapshot_list(settings: Settings, source_uuid: str, stream_uuid: str) -> None:
    """List snapshots (without their data)."""

    async def work(client: Client, out: Output) -> None:
        rows = [_snapshot_row(s, False) for s in await client.list_snapshots(settings.store, source_uuid, stream_uuid)]
        out.records(rows, "Snapshots", ["source_uuid", "stream_uuid", "source_version", "source_type", "created_at"])

    _run(settings, work)


@click.group(cls=ClientGroup, invoke_without_command=True, epilog=_EXIT_HELP)
@_connection_options
@click.pass_context
def stores(ctx: click.Context, settings: Settings) -> None:
    """List stores (no subcommand: these options apply to the listing), or create, remove,
    and inspect one (`gater stores create --help`)."""
    if ctx.invoked_subcommand is None:
        _list_stores(settings)


@stores.command("list", epilog=_EXIT_HELP)
@_connection_options
def stores_list(settings: Settings) -> None:
    """List the stores."""
    _list_stores(settings)


def _list_stores(settings: Settings) -> None:
    async def work(client: Client, out: Output) -> None:
        rows = [{"store_id": s.store_id, "created_at": s.created_at.isoformat() if s.created_at else None}
                for s in await client.list_stores()]  # fmt: skip
        out.records(rows, "Stores", ["store_id", "created_at"])

    _run(settings, work)


@stores.command("create", epilog=_EXIT_HELP)
@click.argument("store_id")
@_connection_options
def stores_create(settings: Settings, store_id: str) -> None:
    """Create the store STORE_ID."""

    async def work(client: Client, out: Output) -> None:
        s = await client.create_store(store_id)
        out.record({"store_id": s.store_id, "created_at": s.created_at.isoformat() if s.created_at else None}, "Store created")

    _run(settings, work)


@stores.command("remove", epilog=_EXIT_HELP)
@click.argument("store_id")
@click.option("--yes", is_flag=True, help="Do not ask: every event, snapshot and subscription in it goes.")
@_connection_options
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

    _run(settings, work)


@stores.command("status", epilog=_EXIT_HELP)
@click.argument("store_id", required=False)
@_connection_options
def stores_status(settings: Settings, store_id: str | None) -> None:
    """Counts and sizes of STORE_ID (default: --store, else the server's default store)."""

    async def work(client: Client, out: Output) -> None:
        s = await client.get_store_status(store_id or settings.store)
        out.record(_fields(s), f"Store {s.store_id}")

    _run(settings, work)


@stores.command("config", epilog=_EXIT_HELP)
@click.argument("store_id", required=False)
@_connection_options
def stores_config(settings: Settings, store_id: str | None) -> None:
    """How STORE_ID is configured (backend, location, durability, limits)."""

    async def work(client: Client, out: Output) -> None:
        c = await client.get_store_config(store_id or settings.store)
        row = _fields(c)
        row["created_at"] = c.created_at.isoformat() if c.created_at else None
        out.record(row, f"Store {c.store_id}")

    _run(settings, work)


def _fields(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@_connection_options
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

    _run(settings, work)


@click.command(cls=ClientCommand, epilog=_EXIT_HELP)
@_connection_options
def console(settings: Settings) -> None:
    """The interactive test console: observers, producers and subscriptions over the
    greenhouse domain, in a 15-entry menu (the seed's)."""
    from .console import run_console

    try:
        asyncio.run(run_console(settings.addr, settings.store, **settings.client_options()))
    except GaterError as e:
        Output(False).error(e)
        sys.exit(exit_code_for(e))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


def register(main: click.Group) -> None:
    """Adds the client commands to the `gater` group."""
    for command in (append, read, subscribe, version, streams, snapshot, stores, status, console):
        main.add_command(command)
