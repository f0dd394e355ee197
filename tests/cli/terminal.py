"""A command run on a pseudo-terminal, and what a person would see on that terminal (pyte
plays the terminal: cursor moves, erasures and overwrites are applied, not just stripped)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios

import pyte

COLUMNS, ROWS = 160, 40


async def seen_on_terminal(argv: list[str], env: dict[str, str], timeout_s: float = 60) -> tuple[int, list[str]]:
    """Runs `argv` with stdin, stdout and stderr on one terminal; returns its exit code and
    the non-empty lines the terminal shows at the end (trailing blanks removed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
        env={**env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS)},
    )  # fmt: skip
    os.close(slave)
    screen = pyte.Screen(COLUMNS, ROWS)
    stream = pyte.ByteStream(screen)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def readable() -> None:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the program exited and closed its side
            chunk = b""
        if chunk:
            stream.feed(chunk)
        else:
            loop.remove_reader(master)
            done.set()

    loop.add_reader(master, readable)
    try:
        async with asyncio.timeout(timeout_s):
            await done.wait()
            code = await proc.wait()
    finally:
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return code, [line.rstrip() for line in screen.display if line.strip()]
