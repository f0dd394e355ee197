"""What every part of the console's menu uses to talk to the person: `ConsoleIO`, the base of
`ConsoleApp` and of its menu mixins (`_data`, `_lifecycle`).

Owns: printing (`say`, `fail`: an error and what to do next), prompting (`ask`, `ask_int`,
`ask_optional_int`, `confirm`) and the mapping of a GaterError to the next step a person can
take (`next_step`). The connection (`client`, `store`) and the colours (`theme`) are set by
`ConsoleApp`.
Must not import anything from gater but gater.client, gater.errors and this package.
"""

from __future__ import annotations

import random
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from rich.console import Console
from rich.text import Text

from ..client import Client
from ..errors import (
    AppendConditionFailedError,
    GaterError,
    ImportMismatchError,
    InvalidArgumentError,
    NotFoundError,
    StoreNotFoundError,
    StreamDeletedError,
    StreamNotFoundError,
    UnavailableError,
    WrongExpectedVersionError,
)
from ._parts import Lines, Theme

__all__ = ["ConsoleIO", "next_step"]

# The first class that matches (in this order) says what to do next.
_NEXT_STEPS: tuple[tuple[type[GaterError], str], ...] = (
    (StreamDeletedError, "the stream is tombstoned for good: write to another stream"),
    (StreamNotFoundError, "check the stream's name: View Stream Data lists the streams"),
    (StoreNotFoundError, "check the store's name (gater stores lists them)"),
    (AppendConditionFailedError, "read the matching events again (View Stream Data with the same tags:/type:) "
                                 "and decide again after their head"),  # fmt: skip
    (WrongExpectedVersionError, "read it again and retry from its current version"),
    (ImportMismatchError, "import into a new store, or into one holding a prefix of this file"),
    (NotFoundError, "check the names and numbers typed"),
    (InvalidArgumentError, "correct the value named and try again"),
    (UnavailableError, "check that the server runs (Get Cluster Status) and try again"),
)


def next_step(error: GaterError) -> str:
    """What a person can do after `error` ("" when nothing particular)."""
    return next((step for kind, step in _NEXT_STEPS if isinstance(error, kind)), "")


class ConsoleIO:
    """Printing and prompting, over one client and store."""

    client: Client
    store: str
    out: Console
    theme: Theme
    rng: random.Random

    def __init__(self, client: Client, store: str, console: Console | None, stdin: TextIO, theme: Theme | None) -> None:
        self.client = client
        self.store = store
        self.out = console or Console(highlight=False)
        self.theme = theme or Theme()
        self._stdin = stdin
        self._lines = Lines(stdin)
        self._session: PromptSession[str] | None = None

    @property
    def store_name(self) -> str:
        """The store as people read it ("default" for the server's default store)."""
        return self.store or "default"

    def say(self, message: str, style: str = "") -> None:
        self.out.print(Text(message, style=style), soft_wrap=True)

    def fail(self, message: str, then: str = "") -> None:
        """An error in the theme's error style and, below it, what to do next."""
        self.say(f"❌ {message}", self.theme.error)
        if then:
            self.say(f"   → {then}", self.theme.warn)

    def fail_with(self, error: GaterError) -> None:
        self.fail(f"{error.code}: {error.message}", next_step(error))

    def stopped(self, what: str, error: GaterError, again: str) -> str:
        """A background task (an observer, producer or subscriber) ended on `error`: said in the
        error style with what to do next — the error's own step, else `again` (how to start it
        anew). Returns the error as its list shows it."""
        shown = f"{error.code}: {error.message}"
        self.say(f"💀 {what} stopped: {shown}", self.theme.error)
        self.say(f"   → {next_step(error) or again}", self.theme.warn)
        return shown

    async def ask(self, prompt: str, default: str = "") -> str:
        """One typed line, stripped; `default` when empty. EOFError at the end of input (and
        on Ctrl-C at a prompt, which ends the console cleanly)."""
        if self._session is not None:
            try:
                line: str | None = await self._session.prompt_async(FormattedText([("bold", prompt)]))
            except KeyboardInterrupt:
                raise EOFError from None
        else:
            self.out.print(Text(prompt, style="bold"), end="")
            self.out.file.flush()
            line = await self._lines.queue.get()
        if line is None:
            raise EOFError
        return line.strip() or default

    async def ask_int(self, prompt: str, default: int, minimum: int = 0) -> int | None:
        raw = await self.ask(prompt, str(default))
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            self.fail(f"Expected a whole number >= {minimum}, got {raw!r}")
            return None
        return value

    async def ask_optional_int(self, prompt: str, minimum: int = 0) -> tuple[bool, int | None]:
        """(ok, value): an empty answer is (True, None); a bad one is reported, (False, None)."""
        raw = await self.ask(prompt)
        if not raw:
            return True, None
        if not raw.lstrip("-").isdigit() or int(raw) < minimum:
            self.fail(f"Expected a whole number >= {minimum} or nothing, got {raw!r}")
            return False, None
        return True, int(raw)

    async def confirm(self, question: str) -> bool:
        """y/N: only "y" or "yes" agrees."""
        return (await self.ask(f"{question} (y/N): ")).lower() in ("y", "yes")
