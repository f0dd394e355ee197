"""The interactive test console (`gater console`): the seed's menu over the client, grown
by the data lifecycle, transfer files and DCB reads (21 entries).

Owns: `ConsoleApp` — the menu loop, observers (transient subscriptions that print
``SEEN [...]``), producers (tasks appending greenhouse events), subscribers (persistent
subscriptions that print ``RECEIVED [...]`` and ack), and the clean shutdown of all of them.
Its data entries come from `_data.DataMenu`, its lifecycle and transfer entries from
`_lifecycle.LifecycleMenu`; prompting and printing from `_io.ConsoleIO`, their common base.
On a terminal, prompts are prompt_toolkit's: what workers print while a person types goes
above the prompt, which stays at the bottom with the typed text intact. Otherwise (input from
a pipe or file) lines are read on a daemon thread. Everything printed goes through one rich
Console on the loop's thread. The menu is one table of (label, handler) entries; a GaterError
from an entry is printed with what to do next, and the menu comes back.
Must not import anything from gater but gater.client, gater.errors and this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..client import ALL, BEGINNING, NOW, Client, greenhouse
from ..client.patterns import PatternError, parse_pattern
from ..errors import GaterError, WrongExpectedVersionError
from ._data import DataMenu
from ._lifecycle import LifecycleMenu
from ._parts import (
    Handler,
    MenuSection,
    Observer,
    Producer,
    Subscriber,
    Theme,
    compact,
    describe,
)
from ._selection import SelectionError, subscription_selector

__all__ = ["ConsoleApp", "Theme", "run_console"]

_SELECTION_HELP = "type a stream, $all, order-* (a prefix), prefix:order-, or tags:<tag>... / type:<T>..."


class ConsoleApp(DataMenu, LifecycleMenu):
    """The console over one connected client. `await app.run()` until the person exits."""

    def __init__(
        self,
        client: Client,
        store: str,
        *,
        console: Console | None = None,
        stdin: TextIO | None = None,
        theme: Theme | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(client, store, console, stdin or sys.stdin, theme)
        self.rng = rng or random.Random()
        self.observers: dict[str, Observer] = {}
        self.producers: dict[str, Producer] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self._monitoring: str | None = None
        self._exit = False
        self.menu: tuple[MenuSection, ...] = (
            MenuSection("📊 Observers:", "green", (
                ("Create Observer by Stream", self.create_observer_by_stream),
                ("Create Observer by Event Type", self.create_observer_by_event_type),
                ("Create Observer by Event Payload", self.create_observer_by_event_payload),
                ("List Active Observers", self.list_observers),
                ("Monitor Specific Observer", self.monitor_observer),
                ("Stop Observer", self.stop_observer),
            )),
            MenuSection("🏭 Producers:", "yellow", (
                ("Start Producers", self.start_producers),
                ("Stop Producer", self.stop_producer),
                ("List Active Producers", self.list_producers),
            )),
            MenuSection("📡 Subscriptions:", "magenta", (
                ("Create Subscription", self.create_subscription),
                ("List Subscriptions", self.list_subscriptions),
            )),
            MenuSection("📈 Data Management:", "blue", (
                ("View Stream Data", self.view_stream_data),
                ("Append an Event", self.append_event),
                ("Get Cluster Status", self.cluster_status),
            )),
            MenuSection("🗂  Data Lifecycle:", "cyan", (
                ("Delete a Stream", self.delete_stream),
                ("Stream Metadata", self.stream_metadata),
                ("Redact an Event", self.redact_event),
                ("Scavenge the Store", self.scavenge),
                ("Export the Store to a File", self.export_store),
                ("Import a File into a Store", self.import_store),
            )),
            MenuSection("🚪 Exit:", "red", (("Exit Console", self.exit),)),
        )  # fmt: skip
        self.entries: tuple[tuple[str, Handler], ...] = tuple(e for section in self.menu for e in section.entries)

    # -- the menu ---------------------------------------------------------------------------

    def show_menu(self) -> None:
        self.say("\n========== ExESDB Interactive Console ==========", self.theme.heading)
        n = 1
        for section in self.menu:
            self.say(section.title, section.style)
            for label, _ in section.entries:
                self.say(f"  {n}. {label}")
                n += 1

    async def run(self) -> None:
        interactive = self._stdin.isatty() and self.out.is_terminal
        with patch_stdout(raw=True) if interactive else contextlib.nullcontext():
            if interactive:
                self._session = PromptSession()
            else:
                self._lines.start(asyncio.get_running_loop())
            await self._run()

    async def _run(self) -> None:
        self.say("🚀 ExESDB Interactive Test Console Started!", "bold bright_green")
        self.say(f"Server: {self.client.target}   Store: {self.store or '(default)'}", "cyan")
        try:
            while not self._exit:
                self.show_menu()
                choice = await self.ask(f"\n👉 Select an option (1-{len(self.entries)}): ")
                if not choice.isdigit() or not 0 < int(choice) <= len(self.entries):
                    self.fail("Invalid choice.", f"type a number from 1 to {len(self.entries)}")
                    continue
                _, handler = self.entries[int(choice) - 1]
                try:
                    await handler()
                except GaterError as e:
                    self.fail_with(e)
        except EOFError:
            self.say("\n(end of input)")
        finally:
            await self.shutdown()

    async def exit(self) -> None:
        self._exit = True

    async def shutdown(self) -> None:
        """Stops every observer, producer and subscriber this console started."""
        self.say("\n👋 Shutting down ExESDB Interactive Console...", "bold red")
        for name, observer in list(self.observers.items()):
            await _stop(observer.task)
            self.say(f"🛑 Stopped observer: {name}", self.theme.warn)
        for stream_id, producer in list(self.producers.items()):
            await _stop(producer.task)
            self.say(f"🛑 Stopped producer: {stream_id} ({producer.appended} events appended)", self.theme.warn)
        for name, subscriber in list(self.subscribers.items()):
            await _stop(subscriber.task)
            self.say(f"🛑 Stopped subscriber: {name} (the subscription stays saved on the server)", self.theme.warn)
        self.observers.clear()
        self.producers.clear()
        self.subscribers.clear()
        self.say("✅ Console shut down successfully!", self.theme.ok)

    # -- observers --------------------------------------------------------------------------

    async def _start_observer(self, name: str, kind: str, selector: Any, **subscribe: Any) -> None:
        if not name:
            self.fail("An observer needs a name.", "type any name, e.g. temps")
            return
        if name in self.observers and self.observers[name].running:
            self.fail(f"Observer '{name}' exists.", "pick another name, or stop it first (Stop Observer)")
            return
        subscription = self.client.subscribe(self.store, start_from=NOW, **subscribe)
        await subscription.start()  # a bad selector or store fails here, in front of the person
        observer = Observer(name, kind, selector)
        observer.task = asyncio.create_task(self._observe(observer, subscription), name=f"observer {name}")
        self.observers[name] = observer
        self.out.print(Text.assemble("OBSERVER [", (name, self.theme.observer), f"] for [{compact(selector)}] is UP!"))
        self.say(f"✅ Observer '{name}' created for {kind.removeprefix('by_').replace('_', ' ')} {compact(selector)}", self.theme.ok)

    async def _observe(self, observer: Observer, subscription: Any) -> None:
        try:
            async with subscription:
                async for event in subscription:
                    observer.seen += 1
                    if self._monitoring not in (None, observer.name):
                        continue
                    self.out.print(
                        Text.assemble("SEEN [", (describe(event), self.theme.seen), "]", (f" ← {observer.name}", "dim")),
                        soft_wrap=True,
                    )
        except GaterError as e:
            observer.error = self.stopped(
                f"Observer '{observer.name}'", e, "create it again (Create Observer) once the cause is fixed"
            )

    async def create_observer_by_stream(self) -> None:
        self.say("\n📊 Creating Observer by Stream", "bold bright_green")
        await self._say_streams()
        self.say("Special streams: $all (all streams), order-* or prefix:order- (streams starting with order-), "
                 "tags:<tag>... / type:<T>... (a DCB query of $all)")  # fmt: skip
        stream = await self.ask("Enter stream name (or $all, a prefix, or tags:/type: words): ", ALL)
        try:
            selected = subscription_selector(stream)
        except SelectionError as e:
            self.fail(str(e), _SELECTION_HELP)
            return
        name = await self.ask("Enter observer name: ")
        await self._start_observer(name, "by_query" if "query" in selected else "by_stream", stream, **selected)

    async def create_observer_by_event_type(self) -> None:
        self.say("\n📊 Creating Observer by Event Type", "bold bright_green")
        self.say("Available event types:")
        for i, event_type in enumerate(greenhouse.EVENT_TYPES, 1):
            self.say(f"  {i}. {event_type}")
        raw = await self.ask("Enter event type (or its number): ")
        event_type = greenhouse.EVENT_TYPES[int(raw) - 1] if raw.isdigit() and 0 < int(raw) <= 15 else raw
        name = await self.ask("Enter observer name: ")
        await self._start_observer(name, "by_event_type", event_type, event_type=event_type)

    async def create_observer_by_event_payload(self) -> None:
        self.say("\n📊 Creating Observer by Event Payload", "bold bright_green")
        self.say("Example patterns:")
        self.say('  %{operator: "John"}   - Events with operator John')
        self.say("  %{temperature: 25}    - Events with temperature 25")
        self.say("  %{intensity: _}       - Events with any intensity field")
        self.say('  {"operator": "John"}  - the same as JSON')
        name = await self.ask("Enter observer name: ")
        text = await self.ask("Pattern: ")
        try:
            pattern = parse_pattern(text)
        except PatternError as e:
            self.fail(f"Not a pattern: {e}", 'type JSON such as {"operator": "John"} or %{operator: "John"}')
            return
        await self._start_observer(name, "by_event_payload", pattern, payload=pattern)

    def _observer_table(self) -> Table:
        table = Table("Name", "Type", "Selector", "Seen", "Status", title="Active Observers")
        for o in self.observers.values():
            status = "🟢 Running" if o.running else f"🔴 Stopped {o.error}".rstrip()
            table.add_row(o.name, o.kind, compact(o.selector), str(o.seen), status)
        return table

    async def list_observers(self) -> None:
        self.say("\n📋 Active Observers", "bold bright_blue")
        if not self.observers:
            self.say("⚠️  No active observers", self.theme.warn)
            return
        self.out.print(self._observer_table())

    async def monitor_observer(self) -> None:
        await self.list_observers()
        if not self.observers:
            return
        name = await self.ask("\nEnter observer name to monitor: ")
        observer = self.observers.get(name)
        if observer is None or not observer.running:
            self.fail(f"Observer '{name}' {'not found' if observer is None else 'is not running'}", "List Active Observers shows the names")
            return
        self.say(f"\n👁️  Monitoring Observer: {name}", "bold bright_yellow")
        self.say(f"Type: {observer.kind}, Selector: {compact(observer.selector)}, seen so far: {observer.seen}", "cyan")
        self.say("Only this observer prints now. Press Enter to stop monitoring.", "dim")
        self._monitoring = name
        try:
            await self.ask("")
        finally:
            self._monitoring = None
        self.say(f"Stopped monitoring '{name}' (seen: {observer.seen})")

    async def stop_observer(self) -> None:
        await self.list_observers()
        if not self.observers:
            return
        name = await self.ask("\nEnter observer name to stop: ")
        observer = self.observers.pop(name, None)
        if observer is None:
            self.fail(f"Observer '{name}' not found", "List Active Observers shows the names")
            return
        was_running = observer.running
        await _stop(observer.task)
        if was_running:
            self.say(f"✅ Observer '{name}' stopped", self.theme.ok)
        else:
            self.say(f"⚠️  Observer '{name}' was already stopped", self.theme.warn)

    # -- producers --------------------------------------------------------------------------

    async def start_producers(self) -> None:
        self.say("\n🏭 Starting Producers", "bold bright_green")
        count = await self.ask_int("Number of producers (default 3): ", 3, 1)
        if count is None:
            return
        batch_size = await self.ask_int("Events per append (default 1): ", 1, 1)
        if batch_size is None:
            return
        period_ms = await self.ask_int("Milliseconds between appends (default 2000): ", 2000, 10)
        if period_ms is None:
            return
        started = []
        n = 1
        while len(started) < count:
            stream_id = f"greenhouse{n}"
            n += 1
            if stream_id in self.producers and self.producers[stream_id].running:
                continue
            producer = Producer(stream_id, batch_size, period_ms / 1000)
            producer.task = asyncio.create_task(self._produce(producer), name=f"producer {stream_id}")
            self.producers[stream_id] = producer
            started.append(stream_id)
            self.out.print(Text.assemble("PRODUCER [", (stream_id, self.theme.producer), f"] for [{self.store or 'default'}:{stream_id}] is UP!"))
        self.say(f"✅ Started {count} producers ({batch_size} event(s) every ~{period_ms} ms each)", self.theme.ok)

    async def _produce(self, producer: Producer) -> None:
        try:
            producer.version = await self.client.get_version(self.store, producer.stream_id)
            while True:
                events = greenhouse.generate_events(producer.version, producer.batch_size, self.rng)
                try:
                    result = await self.client.append_events(self.store, producer.stream_id, events, producer.version)
                except WrongExpectedVersionError as e:
                    producer.version = e.current_version  # someone else appended: go on from there
                    continue
                producer.version = result.version
                producer.appended += len(events)
                if self._monitoring is None:
                    self.out.print(
                        Text.assemble(
                            "APPENDED [",
                            (f"{len(events)} event(s) to {self.store or 'default'}:{producer.stream_id}.v({result.version})", self.theme.appended),
                            "]",
                        ),
                        soft_wrap=True,
                    )
                # Jitter around the period so producers do not march in step.
                await asyncio.sleep(producer.period_s * self.rng.uniform(0.5, 1.5))
        except GaterError as e:
            producer.error = self.stopped(
                f"Producer '{producer.stream_id}'", e, "start it again (Start Producers) once the cause is fixed"
            )

    async def stop_producer(self) -> None:
        self.say("\n🛑 Stopping Producer", "bold bright_red")
        await self.list_producers()
        if not self.producers:
            return
        stream_id = await self.ask("Enter stream ID to stop producer (or 'all'): ")
        chosen = list(self.producers) if stream_id == "all" else [stream_id]
        for sid in chosen:
            producer = self.producers.pop(sid, None)
            if producer is None:
                self.fail(f"No producer for '{sid}'", "List Active Producers shows their streams")
                continue
            await _stop(producer.task)
            self.say(f"✅ Producer for '{sid}' stopped ({producer.appended} events appended)", self.theme.ok)

    async def list_producers(self) -> None:
        self.say("\n📋 Active Producers", "bold bright_blue")
        if not self.producers:
            self.say("⚠️  No active producers", self.theme.warn)
            return
        table = Table("Stream", "Batch", "Period (ms)", "Appended", "Version", "Status", title="Active Producers")
        for p in self.producers.values():
            status = "🟢 Running" if p.running else f"🔴 Stopped {p.error}".rstrip()
            table.add_row(p.stream_id, str(p.batch_size), str(int(p.period_s * 1000)), str(p.appended), str(p.version), status)
        self.out.print(table)

    # -- subscriptions ----------------------------------------------------------------------

    async def create_subscription(self) -> None:
        self.say("\n📡 Creating Subscription", "bold bright_green")
        name = await self.ask("Enter subscription name: ")
        if not name:
            self.fail("A subscription needs a name.", "type any name, e.g. alerts")
            return
        if name in self.subscribers and self.subscribers[name].running:
            self.fail(f"A subscriber for '{name}' runs already.", "pick another name")
            return
        stream = await self.ask("Enter stream name (default $all; or order-*, prefix:order-, tags:/type: words): ", ALL)
        try:
            selected = subscription_selector(stream)
        except SelectionError as e:
            self.fail(str(e), _SELECTION_HELP)
            return
        raw = await self.ask("Start from: 'beginning', 'now' or a position (default beginning): ", BEGINNING)
        start: str | int
        if raw in (BEGINNING, NOW):
            start = raw
        elif raw.isdigit():
            start = int(raw)
        else:
            self.fail(f"Start from must be beginning, now or a number, got {raw!r}", "type beginning, now or a position such as 42")
            return
        info = await self.client.save_subscription(self.store, name, start_from=start, **selected)
        subscription = self.client.subscribe(self.store, name=name)
        await subscription.start()
        subscriber = Subscriber(name, stream)
        subscriber.task = asyncio.create_task(self._receive(subscriber, subscription), name=f"subscriber {name}")
        self.subscribers[name] = subscriber
        self.out.print(Text.assemble("SUBSCRIBER [", (name, self.theme.subscriber), f"] for [{name!r}] is UP!"))
        verb = "created" if info.created else "exists already; consuming it"
        what = f"query {stream}" if "query" in selected else f"stream {selected['stream']}"
        self.say(f"✅ Subscription '{name}' {verb} ({what}, checkpoint {info.checkpoint})", self.theme.ok)

    async def _receive(self, subscriber: Subscriber, subscription: Any) -> None:
        try:
            async with subscription:
                async for event in subscription:
                    subscriber.received += 1
                    if self._monitoring is None:
                        self.out.print(
                            Text.assemble("RECEIVED [", (f"{subscriber.name!r} {describe(event)}", self.theme.received), "]"),
                            soft_wrap=True,
                        )
                    await subscription.ack(event)
        except GaterError as e:
            subscriber.error = self.stopped(
                f"Subscriber '{subscriber.name}'", e, "subscribe again (Create Subscription) once the cause is fixed"
            )

    async def list_subscriptions(self) -> None:
        self.say("\n📋 Subscriptions", "bold bright_blue")
        subscriptions = await self.client.get_subscriptions(self.store)
        if not subscriptions:
            self.say("⚠️  No persistent subscriptions", self.theme.warn)
            return
        table = Table("Name", "Selects", "Checkpoint", "Lag", "In flight", "Parked", "Consumers", "Here", title="Subscriptions")
        for s in subscriptions:
            selects = s.selector if s.pattern is None else compact(s.pattern)
            here = self.subscribers.get(s.name)
            table.add_row(
                s.name, f"{s.type.name.lower()} {selects}", str(s.checkpoint), str(s.lag), str(s.in_flight),
                str(s.parked), str(s.consumers), f"received {here.received}" if here else "-",
            )  # fmt: skip
        self.out.print(table)

    # -- data -------------------------------------------------------------------------------

    async def cluster_status(self) -> None:
        self.say("\n🔗 Cluster Status", "bold bright_blue")
        status = await self.client.cluster_status()
        self.say(
            f"Role: {status.role}   Node: {status.node_id}   Cluster: {status.cluster_id}   "
            f"Version: {status.version}   Backend: {status.backend or '-'}",
            self.theme.ok,
        )
        if status.discovery:
            self.say(f"Discovery: {status.discovery} ({'ok' if status.discovery_ok else 'failing'})")
        table = Table("Node", "Address", "Healthy", "In flight", "Failures", title="Members")
        for m in status.members:
            table.add_row(m.node_id, m.address, "🟢 yes" if m.healthy else "🔴 no", str(m.in_flight), str(m.failures))
        self.out.print(table)


async def _stop(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run_console(targets: str, store: str, **client_options: Any) -> None:
    """Connects and runs the console until the person exits (or input ends)."""
    async with await Client.connect(targets, **client_options) as client:
        await ConsoleApp(client, store).run()
