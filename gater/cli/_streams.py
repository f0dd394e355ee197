"""The stream commands: append, read, subscribe, version, streams.

Owns: turning their flags into client calls and their results into output lines or tables.
Must not import anything from gater but gater.client, gater.errors and this package's
client-side modules (never gater.console: greenhouse events and payload patterns come from
gater.client).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import click

from ..client import (
    ALL,
    ANY,
    BACKWARD,
    BEGINNING,
    FORWARD,
    NO_STREAM,
    NOW,
    STREAM_EXISTS,
    AppendCondition,
    Client,
    Event,
    NewEvent,
    Query,
)
from ..errors import InvalidArgumentError
from ._output import EXIT_HELP, Output
from ._settings import ClientCommand, Settings, connection_options, run

__all__ = ["append", "read", "streams", "subscribe", "version"]


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



@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream")
@click.argument("source", type=click.File("r"), default="-", required=False)
@click.option("--type", "event_type", help="Append one event of this type (its body from --data).")
@click.option("--data", default=None, help="With --type: the event's JSON body.")
@click.option("--metadata", default=None, help="With --type: the event's JSON metadata.")
@click.option("--id", "event_id", default=None, help="With --type: the event's id (UUID).")
@click.option("--tag", "tags", multiple=True, help="With --type: a tag of the event (repeat for more), e.g. course:c1.")
@click.option("--fail-if-type", "fail_types", multiple=True,
              help="Condition (DCB): fail if an event of this type (repeat: any of them) carrying every "
                   "--fail-if-tag was written after --after. Exit code 3.")
@click.option("--fail-if-tag", "fail_tags", multiple=True, help="Condition (DCB): see --fail-if-type.")
@click.option("--after", type=click.IntRange(min=0), default=None,
              help="Condition (DCB): the position the decision was made on (a query read's head); "
                   "default: any matching event at all fails the append.")
@click.option("--generate", type=click.IntRange(min=1), default=None,
              help="Append this many greenhouse events (the console's producer), e.g. for trying things out.")
@click.option("--expected-version", "expected", default=ANY, show_default=True,
              help="any, no_stream, stream_exists, or the stream's exact current version.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Events per AppendEvents call when reading many.")
@connection_options
def append(settings: Settings, stream: str, source: Any, event_type: str | None, data: str | None,
           metadata: str | None, event_id: str | None, tags: tuple[str, ...], fail_types: tuple[str, ...],
           fail_tags: tuple[str, ...], after: int | None, generate: int | None, expected: str,
           batch_size: int) -> None:  # fmt: skip
    """Append events to STREAM.

    \b
    One event:   gater append greenhouse1 --type temperature_measured:v1 --data '{"temperature": 21.5}'
    Many:        gater append greenhouse1 events.jsonl     (or on stdin: ... | gater append greenhouse1)
    Generated:   gater append greenhouse1 --generate 1000
    Tagged, on a condition (DCB, docs/dcb.md):
      gater append student-s1 --type student_subscribed --tag course:c1 --tag student:s1 \\
          --fail-if-type student_subscribed --fail-if-tag course:c1 --after 41

    Each input line is a JSON object with event_type, data, and optionally metadata, event_id,
    content_type, tags. Batches after the first expect the version the previous one left, so a
    concurrent writer stops the producer with exit code 3. With --generate only the first batch
    is checked: the others go pipelined, 32 in flight over one AppendSession, and commit in any
    order. Prints one JSON line per batch.
    """
    expected_version = _expected(expected)
    if tags and event_type is None:
        raise click.UsageError("--tag goes with --type (JSON lines carry their own \"tags\")")
    condition = None
    if fail_types or fail_tags:
        condition = AppendCondition(Query.of(types=fail_types, tags=fail_tags), after)
    elif after is not None:
        raise click.UsageError("--after goes with --fail-if-type / --fail-if-tag")
    if event_type is not None:
        one = NewEvent(
            event_type,
            _json_arg(data, "--data") if data is not None else {},
            _json_arg(metadata, "--metadata") if metadata is not None else None,
            event_id,
            tags=tags,
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
            from ..client.greenhouse import generate_events

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

            def report(batch: list[Any], result: Any) -> None:
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

            for batch in batches:
                appended += len(batch)
                result = await client.append_events(settings.store, stream, batch, expect, condition=condition)
                expect = result.version
                report(batch, result)
                if generate is not None:
                    # The first batch made the check; the rest go pipelined (the client sends
                    # them over one AppendSession), so they commit in any order.
                    appended += await _pipelined(client, settings.store, stream, batches, report)
        if appended == 0:
            raise InvalidArgumentError("events", "no events on the input")

    run(settings, work)


_PIPELINE = 32
"""Generated batches in flight at once."""


async def _pipelined(client: Client, store: str, stream: str, batches: Iterator[list[Any]], report: Any) -> int:
    """Appends the remaining batches with up to _PIPELINE in flight; returns the events sent."""
    appended = 0

    async def one(batch: list[Any]) -> None:
        report(batch, await client.append_events(store, stream, batch))

    async with asyncio.TaskGroup() as group:
        slots = asyncio.Semaphore(_PIPELINE)
        for batch in batches:
            await slots.acquire()
            appended += len(batch)
            group.create_task(one(batch)).add_done_callback(lambda _: slots.release())
    return appended


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
        if isinstance(item.get("tags"), list):
            item["tags"] = tuple(item["tags"])
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _event_row(e: Event) -> dict[str, Any]:
    return e.to_dict()


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream", required=False)
@click.option("--from", "start", type=click.IntRange(min=0), default=None,
              help="First version (or global position for $all); default: the first (or last, --backward).")
@click.option("--count", type=click.IntRange(min=0), default=0, help="At most this many events (0: all).")
@click.option("--backward", is_flag=True, help="Newest first.")
@click.option("--type", "types", multiple=True,
              help="Query read of $all (DCB): only events of this type (repeat: any of them).")
@click.option("--tag", "tags", multiple=True,
              help="Query read of $all (DCB): only events carrying this tag (repeat: all of them).")
@click.option("--prefix", "stream_prefix", default="", metavar="PREFIX",
              help='Filtered read of $all: only streams whose id starts with PREFIX ("order-" or "order-*").')
@click.option("--since", default=None, metavar="TIME",
              help="Filtered read of $all: start at the first event committed at or after TIME "
                   "(ISO 8601 with a zone, e.g. 2026-11-30T10:00:00Z; --backward: the last at or before it).")
@connection_options
def read(settings: Settings, stream: str | None, start: int | None, count: int, backward: bool,
         types: tuple[str, ...], tags: tuple[str, ...], stream_prefix: str, since: str | None) -> None:  # fmt: skip
    """Read the events of STREAM ($all: every stream, in global order), one JSON line each.

    \b
    gater read greenhouse1
    gater read '$all' --from 100 --count 10
    gater read greenhouse1 --backward --count 1
    gater read --type student_subscribed --tag course:c1     (a DCB query read of $all)
    gater read --prefix order- --since 2026-11-30T10:00:00Z  (streams order-*, from a time)

    A filtered read (--type/--tag/--prefix/--since, which combine) answers from the server's
    indexes and ends with the head it was cut at: a last JSON line {"head": N} (on a
    terminal, a note), the --after of an append decided on what it printed.
    """
    if types or tags or stream_prefix or since is not None:
        if stream not in (None, ALL):
            raise click.UsageError("--type/--tag/--prefix/--since read $all: give no STREAM (or '$all')")
        query = Query.of(types=types, tags=tags) if types or tags else None
        _read_query(settings, query, start, count, backward, stream_prefix, _time(since))
        return
    if stream is None:
        raise click.UsageError(
            "Missing argument 'STREAM' ('$all' for every event), or give --type/--tag/--prefix/--since for a filtered read"
        )

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

    run(settings, work)


def _time(value: str | None) -> datetime | None:
    """--since: an ISO 8601 time that says its zone."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint="--since") from None
    if at.tzinfo is None:
        raise click.BadParameter(f"give the time zone (2026-11-30T10:00:00Z or +01:00): {value!r}", param_hint="--since")
    return at


def _read_query(
    settings: Settings, query: Query | None, start: int | None, count: int, backward: bool,
    stream_prefix: str = "", since: datetime | None = None,
) -> None:  # fmt: skip
    async def work(client: Client, out: Output) -> None:
        result = await client.read_query(
            settings.store, query, start, count, BACKWARD if backward else FORWARD, stream_prefix=stream_prefix, since=since
        )
        if out.json:
            for e in result.events:
                out.line(_event_row(e))
            out.line({"head": result.head})
            return
        if result.events:
            out.records(
                [{"pos": e.position, "stream": e.stream_id, "type": e.event_type, "tags": " ".join(e.tags),
                  "data": e.data if not isinstance(e.data, bytes) else f"<{len(e.data)} bytes>"} for e in result.events],
                title=f"filtered read ({len(result.events)} events)",
            )  # fmt: skip
        else:
            out.note("no events match")
        out.note(f"head: {result.head} (append with --after {result.head} to decide on this read)")

    run(settings, work)


def _start(value: str) -> str | int:
    if value in (BEGINNING, NOW):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not beginning, now or a position", param_hint="--from") from None


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream", required=False)
@click.option("--type", "event_type", default=None, help="Only events of this type.")
@click.option("--payload", default=None,
              help='Only events whose JSON body matches, e.g. \'%{operator: "John"}\' or \'{"intensity": "_"}\' '
                   '("_" means any value).')
@click.option("--pattern", default=None, help="Only events whose record matches this JSON (stream_id, event_type, data, ...).")
@click.option("--tag", "tags", multiple=True,
              help="Only events carrying this tag (repeat: all of them; with --type: of that type), caught up "
                   "from the indexes.")
@click.option("--name", default=None,
              help="Consume the persistent subscription NAME (saved first when STREAM/--type/--payload/--pattern "
                   "is given), acking each event after printing it.")
@click.option("--from", "start", default=BEGINNING, show_default=True,
              help="Transient, or a new persistent one: beginning, now, or a position.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Exit after this many events.")
@click.option("--no-ack", is_flag=True, help="Persistent: print without acking.")
@connection_options
def subscribe(settings: Settings, stream: str | None, event_type: str | None, payload: str | None, pattern: str | None,
              tags: tuple[str, ...], name: str | None, start: str, limit: int | None, no_ack: bool) -> None:  # fmt: skip
    """Print events as they are appended: catch-up first, then live, until Ctrl-C or --limit.

    \b
    gater subscribe '$all'
    gater subscribe 'order-*'                       (every stream whose id starts with order-)
    gater subscribe --payload '%{operator: "John"}' --from now
    gater subscribe greenhouse1 --name workers      (persistent: saved, consumed, acked)
    gater subscribe --tag course:c1 --type student_subscribed   (a DCB query: from the indexes)
    """
    from ..client.patterns import PatternError, parse_pattern

    selection: dict[str, Any] = {}
    if stream is not None:
        selection["stream"] = stream
    if tags:
        selection["query"] = Query.of(types=[event_type] if event_type is not None else [], tags=tags)
    elif event_type is not None:
        selection["event_type"] = event_type
    try:
        if payload is not None:
            selection["payload"] = parse_pattern(payload)
        if pattern is not None:
            selection["pattern"] = parse_pattern(pattern)
    except PatternError as e:
        raise click.BadParameter(str(e), param_hint="--payload/--pattern") from None
    if len(selection) > 1:
        raise click.UsageError("give one of STREAM, --type (with --tag: a query), --payload, --pattern")
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

    run(settings, work)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@click.argument("stream")
@connection_options
def version(settings: Settings, stream: str) -> None:
    """Print STREAM's version (-1: no such stream; for $all, the last global position)."""

    async def work(client: Client, out: Output) -> None:
        v = await client.get_version(settings.store, stream)
        if out.json:
            out.line({"stream_id": stream, "version": v})
        else:
            out.console.print(str(v))

    run(settings, work)


@click.command(cls=ClientCommand, epilog=EXIT_HELP)
@connection_options
def streams(settings: Settings) -> None:
    """List the streams of the store with their versions."""

    async def work(client: Client, out: Output) -> None:
        rows = [{"stream_id": s.stream_id, "version": s.version} for s in await client.get_streams(settings.store)]
        if not rows:
            out.note("no streams")
        out.records(rows, "Streams", ["stream_id", "version"])

    run(settings, work)

