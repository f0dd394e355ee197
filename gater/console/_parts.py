"""The console's parts: its colours, the one-line rendering of an event, the menu's shape, the
workers it runs (observers, producers, subscribers) and the line reader for piped input.

Must not import anything from gater but gater.client.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..client import Event

__all__ = ["Handler", "Lines", "MenuSection", "Observer", "Producer", "Subscriber", "Theme", "compact", "describe"]


@dataclass(frozen=True, slots=True)
class Theme:
    """The seed's colours (BCUtils.ColorFuncs names as rich styles)."""

    seen: str = "bright_green on black"
    received: str = "bright_green on black"
    appended: str = "bright_yellow on black"
    observer: str = "bright_yellow on black"
    subscriber: str = "bright_yellow on green"
    producer: str = "bright_green on black"
    ok: str = "green"
    warn: str = "yellow"
    error: str = "red"
    heading: str = "bold bright_blue"


def compact(value: Any) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def describe(event: Event) -> str:
    """The seed's one-line rendering: ``stream:type (vN) => payload``."""
    return f"{event.stream_id}:{event.event_type} (v{event.version}) => {compact(event.data)}"


Handler = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MenuSection:
    """A heading of the menu and its numbered (label, handler) entries."""

    title: str
    style: str
    entries: tuple[tuple[str, Handler], ...]


@dataclass(eq=False)
class Observer:
    name: str
    kind: str  # "by_stream", "by_event_type", "by_event_payload"
    selector: Any
    task: asyncio.Task[None] | None = None
    seen: int = 0
    error: str = ""

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass(eq=False)
class Producer:
    stream_id: str
    batch_size: int
    period_s: float
    task: asyncio.Task[None] | None = None
    appended: int = 0
    version: int = -1
    error: str = ""

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass(eq=False)
class Subscriber:
    name: str
    selector: str
    task: asyncio.Task[None] | None = None
    received: int = 0
    error: str = ""

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()


@dataclass
class Lines:
    """Lines typed by the person, read on a daemon thread (a blocked read never holds up
    exit) and handed to the loop; None means end of input."""

    source: TextIO
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        def pump() -> None:
            while True:
                line = self.source.readline()
                loop.call_soon_threadsafe(self.queue.put_nowait, line if line else None)
                if not line:
                    return

        threading.Thread(target=pump, name="console-input", daemon=True).start()


