"""A program on the slave side of a pseudo-terminal, read as a person sees it: `console(addr)`
starts `gater console` that way and yields its `Screen`."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import sys
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyte

MENU_ENTRIES = 21
"""The console's menu: 1-14 the seed's (and tags), 15-20 the data lifecycle, 21 Exit."""

_FORWARD = re.compile(r"\x1b\[(\d*)C")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Screen:
    """A program on the slave side of a pty; the test reads what it shows (colours removed)
    and types lines into it."""

    def __init__(self, master: int, proc: asyncio.subprocess.Process) -> None:
        self.master = master
        self.proc = proc
        self.text = ""
        self.seen_up_to = 0
        self._changed = asyncio.Condition()
        self._raw = b""
        # What a person sees: a terminal emulator fed the same bytes, answering the program's
        # queries (cursor position) as a terminal would.
        self.terminal = pyte.Screen(220, 60)
        self.terminal.write_process_input = lambda data: os.write(master, data.encode())
        self._terminal_input = pyte.ByteStream(self.terminal)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the program exited and closed its side
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.master)
        self._raw += chunk
        self._terminal_input.feed(chunk)
        # Cursor-forward moves (how prompt_toolkit draws spaces) as spaces, other controls removed.
        text = _ANSI.sub("", _FORWARD.sub(lambda m: " " * int(m.group(1) or 1), self._raw.decode(errors="replace")))
        asyncio.get_running_loop().create_task(self._publish(text))

    async def _publish(self, text: str) -> None:
        async with self._changed:
            self.text = text
            self._changed.notify_all()

    async def expect(self, pattern: str, timeout_s: float = 20) -> re.Match[str]:
        """Waits for `pattern` in what appeared since the last expect; moves past it."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(lambda: regex.search(self.text, self.seen_up_to) is not None)
        except TimeoutError:
            raise AssertionError(f"{pattern!r} did not appear; the screen shows:\n{self.text[self.seen_up_to:]}") from None
        match = regex.search(self.text, self.seen_up_to)
        assert match is not None
        self.seen_up_to = match.end()
        return match

    async def count(self, pattern: str, n: int, timeout_s: float = 20) -> list[str]:
        """Waits until `pattern` appeared `n` times since the last expect, without moving past
        them (a prompt printed among them is still there for the next expect)."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(lambda: len(regex.findall(self.text, self.seen_up_to)) >= n)
        except TimeoutError:
            raise AssertionError(f"{pattern!r} did not appear {n} times:\n{self.text[self.seen_up_to:]}") from None
        return regex.findall(self.text, self.seen_up_to)

    async def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    async def keys(self, text: str) -> None:
        """Types without pressing Enter."""
        os.write(self.master, text.encode())

    async def until(self, condition: Any, timeout_s: float = 20) -> None:
        """Waits until `condition()` holds for what the terminal shows."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(condition)
        except TimeoutError:
            raise AssertionError("the terminal shows:\n" + "\n".join(self.terminal.display).rstrip()) from None

    def bottom_line(self) -> str:
        """The last non-empty line the terminal shows."""
        return [line.rstrip() for line in self.terminal.display if line.strip()][-1]

    async def choose(self, option: int) -> None:
        await self.expect(rf"Select an option \(1-{MENU_ENTRIES}\): ")
        await self.type(str(option))


@contextlib.asynccontextmanager
async def console(addr: str) -> AsyncIterator[Screen]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 220, 0, 0))
    env = {**os.environ, "GATER_ADDR": addr, "TERM": "xterm-256color", "COLUMNS": "220"}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gater"), "console",
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    screen = Screen(master, proc)
    try:
        yield screen
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        asyncio.get_running_loop().remove_reader(master)
        os.close(master)
