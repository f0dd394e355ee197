"""WAL checkpoints off the writer's path: the checkpoint thread of an open SQLite store.

Owns: `Checkpointer` — a thread with its own connection that copies the write-ahead log's
committed pages into the database file when the writer says enough was written.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Why a thread of its own
-----------------------
SQLite checkpoints in the connection that commits, once the log holds 1,000 pages: the writer
thread then copies every page and waits for two fsyncs before it can take its next batch.
Measured on an import, that was a third of the writer's time per event (19 µs against 12 µs
without). A PASSIVE checkpoint in another connection does the same copy while the writer goes
on (it never blocks a writer or a reader, and stops at the oldest snapshot a reader still
uses); sqlite3 releases the GIL for the whole of it, so it runs on another core.

The writer keeps a checkpoint of its own as a backstop (`BACKSTOP_PAGES`, ten times SQLite's
default): if this thread falls behind or cannot write (a full disk), the log still stops
growing there. Two checkpoints never run at once; the one that finds the other running skips.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from ._db import connect

__all__ = ["BACKSTOP_PAGES", "CHANGES_PER_CHECKPOINT", "Checkpointer"]

log = logging.getLogger(__name__)

CHANGES_PER_CHECKPOINT = 4000
"""Rows the writer changes (events, tags, streams) before it asks for a checkpoint: about the
1,000 pages SQLite would checkpoint at by itself."""

BACKSTOP_PAGES = 10_000
"""The writer's own wal_autocheckpoint (pages of 4 KiB: a 40 MiB log at most, in practice)."""


class Checkpointer:
    """The checkpoint thread of one store's writer: `start`, `request` after commits, `stop`.

    `passes` counts the checkpoints done, `failures` those that failed; `wait_for(condition,
    timeout_s)` waits until `condition(self)` holds (tests)."""

    def __init__(self, store_id: str, path: Path, synchronous: str) -> None:
        self.store_id = store_id
        self._path = path
        self._synchronous = synchronous
        self._wanted = threading.Event()
        self._stopping = False
        self._done = threading.Condition()
        self.passes = 0
        self.failures = 0
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint-{store_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """A checkpoint is wanted (requests while one runs make one more, not one each)."""
        self._wanted.set()

    def stop(self) -> None:
        """Ends the thread once a checkpoint in progress has finished, and closes its connection."""
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def wait_for(self, condition: Callable[[Checkpointer], bool], timeout_s: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: condition(self), timeout_s)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = connect(self._path, self._synchronous, readonly=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (sqlite3.Error, OSError) as e:
                    if not self._failing:  # once per run of failures: the backstop takes over
                        log.warning(
                            "checkpoint failed; the writer checkpoints by itself until this succeeds",
                            extra={"store": self.store_id, "error": str(e)},
                        )
                    self._failing = True
                    with self._done:
                        self.failures += 1
                        self._done.notify_all()
                    continue
                if self._failing:
                    log.info("checkpoints succeed again", extra={"store": self.store_id})
                    self._failing = False
                with self._done:
                    self.passes += 1
                    self._done.notify_all()
        finally:
            if conn is not None:
                conn.close()
