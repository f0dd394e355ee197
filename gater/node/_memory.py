"""Giving memory that streams freed back to the system.

Owns: `MemoryTrimmer`. glibc keeps what a process frees in its arenas: after 1,000 reads
whose clients never read had closed, about 220 MB stayed with the node for good. Told that a
stream ended (`note()`), the trimmer runs glibc's `malloc_trim(0)` once, `delay_s` later (so a
burst of closes costs one trim), in a worker thread (it walks the heap). At most one trim is
pending or running at a time. Where there is no `malloc_trim` (not glibc), it does nothing.
Must not import gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

__all__ = ["MemoryTrimmer"]

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class MemoryTrimmer:
    """`note()` after a stream ended; `await stop()` (idempotent) cancels what is pending."""

    def __init__(self, delay_s: float = 1.0) -> None:
        self.delay_s = delay_s
        self._trim = _malloc_trim()
        self._task: asyncio.Task[None] | None = None
        self._waiting = False  # the task sleeps: what is noted now, its trim covers
        self._again = False  # noted while the task trimmed: trim once more
        self._stopped = False

    @property
    def available(self) -> bool:
        return self._trim is not None

    def note(self) -> None:
        """Something that held memory went away: trim soon, once for everything until then."""
        if self._trim is None or self._stopped:
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(self._trim), name="malloc-trim")
        elif not self._waiting:
            self._again = True

    async def _run(self, trim: Callable[[int], int]) -> None:
        try:
            while True:
                self._waiting, self._again = True, False
                await asyncio.sleep(self.delay_s)
                self._waiting = False
                await asyncio.to_thread(trim, 0)
                log.debug("returned free memory to the system")
                if not self._again:
                    return
        finally:
            self._task = None

    async def stop(self) -> None:
        self._stopped = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
