"""The console's data entries: "View Stream Data" (a stream, $all, or a DCB query / prefix read)
and "Append an Event" (with tags, and an optional DCB append condition).

Owns: `DataMenu`, mixed into ConsoleApp; what is typed to select events is parsed by
`_selection`.
Must not import anything from gater but gater.client, gater.errors and this package.
"""

from __future__ import annotations

from rich.table import Table

from ..client import AppendCondition, Event, NewEvent, greenhouse
from ..client.patterns import PatternError, parse_pattern
from ..errors import AppendConditionFailedError
from ._io import ConsoleIO
from ._parts import compact
from ._selection import SelectionError, is_selection, parse_selection

__all__ = ["DataMenu"]


class DataMenu(ConsoleIO):
    """Mixed into ConsoleApp."""

    async def _say_streams(self) -> list[str]:
        """Lists the store's streams (asked of the server) and returns their ids."""
        streams = [info.stream_id for info in await self.client.get_streams(self.store)]
        self.say(f"Available streams: {', '.join(streams) if streams else '(none yet: producers make greenhouse1..7)'}")
        return streams

    async def view_stream_data(self) -> None:
        self.say("\n📈 View Stream Data", "bold bright_blue")
        streams = await self.client.get_streams(self.store)
        if streams:
            self.say("Available streams:", "cyan")
            for i, s in enumerate(streams, 1):
                self.say(f"  {i}. {s.stream_id} (version {s.version})")
        else:
            self.say("⚠️  No streams yet", self.theme.warn)
        self.say("Or select from $all: tags:<tag> <tag>... (all of them), type:<T> <T>... (any of them), "
                 "prefix:<p> (streams starting with p), combined as you like", "dim")  # fmt: skip
        raw = await self.ask("Enter stream name (or its number, or $all, or tags:/type:/prefix: words): ")
        stream_id = streams[int(raw) - 1].stream_id if raw.isdigit() and 0 < int(raw) <= len(streams) else raw
        count = await self.ask_int("Number of events to fetch (default 10): ", 10, 1)
        if count is None or not stream_id:
            return
        events: list[Event]
        if is_selection(stream_id):
            try:
                selection = parse_selection(stream_id)
            except SelectionError as e:
                self.fail(str(e), "type e.g. tags:room:r1 type:temperature_measured:v1 prefix:greenhouse")
                return
            read = await self.client.read_query(self.store, selection.query, None, count, stream_prefix=selection.prefix)
            events = read.events
            head = f" cut at head {read.head}" if read.head >= 0 else ""
            self.say(f"Query read of $all{head} ({selection.describe()})", "cyan")
            if read.head >= 0 and selection.query is not None:
                self.say(f"(an append decided on these events: its condition's position is {read.head})", "dim")
        else:
            events = await self.client.get_events(self.store, stream_id, None, count)
        if not events:
            self.say(f"⚠️  No events in '{stream_id}'", self.theme.warn)
            return
        table = Table("Pos", "Stream", "Ver", "Type", "Tags", "Data", "Created", title=f"Events from '{stream_id}'")
        for e in events:
            table.add_row(str(e.position), e.stream_id, str(e.version), e.event_type, " ".join(e.tags), compact(e.data),
                          e.created.strftime("%H:%M:%S.%f")[:-3])
        self.out.print(table)

    async def append_event(self) -> None:
        self.say("\n📝 Append an Event", "bold bright_green")
        await self._say_streams()
        stream_id = await self.ask("Enter stream name: ")
        if not stream_id:
            self.fail("A stream name is needed.")
            return
        self.say(f"Event types of the greenhouse: {', '.join(greenhouse.EVENT_TYPES)}")
        event_type = await self.ask("Event type (or its number): ")
        if event_type.isdigit() and 0 < int(event_type) <= len(greenhouse.EVENT_TYPES):
            event_type = greenhouse.EVENT_TYPES[int(event_type) - 1]
        if not event_type:
            self.fail("An event type is needed.")
            return
        text = await self.ask('Data, JSON or %{temperature: 21.5} (default {}): ', "{}")
        try:
            data = parse_pattern(text)
        except PatternError as e:
            self.fail(f"Not a JSON object or map: {e}")
            return
        tags = tuple((await self.ask("Tags, space-separated, e.g. room:r1 (default none): ", "")).split())
        ok, condition = await self._ask_condition()
        if not ok:
            return
        event = NewEvent(event_type, data, tags=tags)
        try:
            result = await self.client.append_events(self.store, stream_id, [event], condition=condition)
        except AppendConditionFailedError as e:
            self.fail(
                f"Append refused: the event at position {e.conflicting_position} matches the condition "
                f"(the store's head was {e.head}); nothing was written.",
                "view it (View Stream Data with the same tags:/type:) and decide again after that head",
            )
            return
        self.say(f"✅ Appended {event_type} to '{stream_id}' (now at version {result.version}) at position {result.position}", self.theme.ok)
        self.say(f"  • {event_type} {compact(data)}")

    async def _ask_condition(self) -> tuple[bool, AppendCondition | None]:
        """(ok, the append's DCB condition or None); not ok when what was typed is refused."""
        raw = await self.ask("Condition: fail if events match tags:/type: words (default none): ", "")
        if not raw:
            return True, None
        try:
            selection = parse_selection(raw if is_selection(raw) else f"tags:{raw}")
        except SelectionError as e:
            self.fail(str(e), "type e.g. tags:room:r1 type:temperature_measured:v1")
            return False, None
        if selection.prefix or selection.query is None:
            self.fail("A condition matches tags:/type:, not a stream prefix.", "leave prefix: out of the condition")
            return False, None
        ok, after = await self.ask_optional_int("…after position (default: any such event at all): ", -1)
        if not ok:
            return False, None
        self.say(f"Condition: no event with {selection.describe()} after position {'-' if after is None else after}", "dim")
        return True, AppendCondition(selection.query, after)
