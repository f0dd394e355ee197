"""The SQLite backend: one database file per store under the data directory.

Owns: `SqliteBackend` — the lock on the data directory, the cluster id, the registry of stores
(create, remove, list, open), the shared reader threads, and the janitor that closes what
idle stores hold.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Files: `data_dir/.lock` (an flock held while the backend runs: one process per directory),
`data_dir/cluster_id`, `data_dir/stores/<store>.sqlite` (+ `-wal`, `-shm` while open). A store
is created as `<store>.<random>.creating` and renamed into place when complete, so a create
that fails (a full disk) or a crash leaves no half-made store; leftovers of a crash are removed
at start. Only this user may read them: directories are created 0700 and files 0600, whatever
the umask (a directory that already exists keeps its mode: the operator chose it).

Tasks and threads (owned here, ended by stop()):
- the janitor task: every `idle_close_s / 4` (at most 1 s) it releases the stores idle for
  `idle_close_s`. A store about to open while `max_open_stores` are open first has the least
  recently used idle one released (`_admit`), so the open files stay bounded;
- four reader threads shared by every store (each read borrows one of its store's own
  connections);
- each open store's writer thread (see _store.py, _writer.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import resource
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gater.config import Limits
from gater.errors import StorageUnavailableError, StoreAlreadyExistsError, StoreNotFoundError
from gater.metrics import Metric, Metrics, gauge

from ..base import StorageBackend, StoreInfo
from ._db import PRIVATE_FILE, build, fsync_dir, private_dirs, remove_files, store_info
from ._errors import translate
from ._store import SqliteStore

__all__ = ["DEFAULT_IDLE_CLOSE_S", "SqliteBackend"]

log = logging.getLogger(__name__)

DEFAULT_IDLE_CLOSE_S = 10.0
"""How long a store stays open after its last call. Reopening costs about a millisecond."""

_SUFFIX = ".sqlite"
_CREATING = ".creating"
_READER_THREADS = 4
_FILES_PER_OPEN_STORE = 16
"""Budget per open store when `max_open_stores` is derived from the open-file limit: a writer
connection and up to four reader connections at about three descriptors each."""


class SqliteBackend(StorageBackend):
    """Stores as SQLite files in `data_dir/stores/`; one process at a time (a lock file).

    `idle_close_s`: a store unused this long closes its writer thread and connections.
    `max_open_stores`: at most this many stores hold threads and files at once (None: the soft
    open-file limit / 16, between 8 and 256, read each time a store opens).
    """

    name = "sqlite"

    def __init__(
        self,
        data_dir: Path,
        *,
        synchronous: str = "FULL",
        limits: Limits | None = None,
        idle_close_s: float = DEFAULT_IDLE_CLOSE_S,
        max_open_stores: int | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if idle_close_s <= 0:
            raise ValueError(f"idle_close_s must be > 0, not {idle_close_s!r}")
        if max_open_stores is not None and max_open_stores < 1:
            raise ValueError(f"max_open_stores must be >= 1, not {max_open_stores!r}")
        self.data_dir = Path(data_dir)
        self.synchronous = synchronous.upper()
        self.limits = limits or Limits()
        self.idle_close_s = idle_close_s
        self._max_open_stores = max_open_stores
        self._stores: dict[str, SqliteStore] = {}
        self._open: collections.OrderedDict[str, SqliteStore] = collections.OrderedDict()
        """Stores that may hold a thread or a file, least recently used first."""
        self._lock: asyncio.Lock | None = None
        self._lock_file: int | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._releasing: asyncio.Lock | None = None
        """One release at a time: admissions and the janitor."""
        self._cluster_id = ""
        self._started = False
        self._metrics = metrics
        if metrics is not None:
            metrics.collect(self._collect)

    def _collect(self) -> list[Metric]:
        """Scrape time: the head of every store handle this node has."""
        head = gauge("gater_store_head_position", "Last global position committed, by store.", ["store"])
        for store_id, store in list(self._stores.items()):
            head.add_metric([store_id], store.known_position())
        return [head]

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def _dir(self) -> Path:
        return self.data_dir / "stores"

    def _path(self, store_id: str) -> Path:
        return self._dir / f"{store_id}{_SUFFIX}"

    def _translate(self, e: BaseException, what: str) -> Exception:
        return translate(e, what, self.data_dir)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        try:
            await asyncio.to_thread(self._prepare)
        except OSError as e:
            raise self._translate(e, f"prepare the data directory {self.data_dir}") from e
        self._lock = asyncio.Lock()
        self._releasing = asyncio.Lock()
        self._readers = ThreadPoolExecutor(_READER_THREADS, thread_name_prefix="sqlite-reader")
        self._janitor = asyncio.create_task(self._close_idle_stores(), name="gater.sqlite.janitor")
        self._started = True
        log.info("sqlite backend started", extra={"data_dir": str(self.data_dir), "cluster_id": self._cluster_id})

    def _prepare(self) -> None:
        private_dirs(self._dir)
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageUnavailableError(
                f"data directory {self.data_dir} is in use by another gater process; "
                "stop it or pass another --data-dir"
            ) from None
        self._lock_file = fd
        for leftover in self._dir.glob(f"*{_CREATING}*"):  # creates a crash interrupted
            leftover.unlink(missing_ok=True)
        cluster_file = self.data_dir / "cluster_id"
        if not cluster_file.exists():
            tmp = cluster_file.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            with os.fdopen(fd, "w") as f:
                f.write(str(uuid.uuid4()) + "\n")
            os.replace(tmp, cluster_file)
        self._cluster_id = cluster_file.read_text().strip()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
            self._janitor = None
        for store in list(self._stores.values()):
            await store.close()
        self._stores.clear()
        self._open.clear()
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    async def check(self, timeout_s: float = 2.0) -> None:
        self._require_started()

        def probe() -> None:
            # The directory is there and writable: stores, their WAL files and new stores can
            # be made. No store is opened for this.
            if not os.access(self._dir, os.W_OK | os.X_OK):
                raise StorageUnavailableError(f"data directory {self._dir} is missing or not writable")

        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.to_thread(probe)
        except TimeoutError:
            raise StorageUnavailableError(f"data directory {self._dir} did not answer within {timeout_s:g} s") from None

    def _require_started(self) -> tuple[asyncio.Lock, ThreadPoolExecutor]:
        if not self._started or self._lock is None or self._readers is None:
            raise StorageUnavailableError("the SQLite backend is not started")
        return self._lock, self._readers

    # -- stores -------------------------------------------------------------------------------

    async def create_store(self, store_id: str) -> StoreInfo:
        lock, _ = self._require_started()
        path = self._path(store_id)
        if path.exists():
            raise StoreAlreadyExistsError(store_id)
        tmp = self._dir / f"{store_id}.{uuid.uuid4().hex[:12]}{_CREATING}"
        try:
            # Outside the lock: creates of different stores build their files in parallel.
            created = await asyncio.to_thread(build, tmp, store_id)
        except (sqlite3.Error, OSError) as e:
            raise self._translate(e, f"create store {store_id!r}") from e
        async with lock:
            try:
                await asyncio.to_thread(self._place, tmp, path)
            except FileExistsError:
                raise StoreAlreadyExistsError(store_id) from None
            except OSError as e:
                raise self._translate(e, f"create store {store_id!r}") from e
            store = self._make(store_id, created, -1)
        log.info("created store", extra={"store": store_id})
        return StoreInfo(store_id, store.created_epoch)

    def _place(self, tmp: Path, path: Path) -> None:
        """Renames a built store into place (the commit of a create), or removes it."""
        try:
            if path.exists():
                raise FileExistsError(path)
            os.rename(tmp, path)
            fsync_dir(self._dir)
        except BaseException:
            remove_files(tmp)
            raise

    def _make(self, store_id: str, created_epoch: int, last_position: int) -> SqliteStore:
        _, readers = self._require_started()
        store = SqliteStore(
            store_id,
            self._path(store_id),
            data_dir=self.data_dir,
            synchronous=self.synchronous,
            limits=self.limits,
            reader_threads=readers,
            created_epoch=created_epoch,
            last_position=last_position,
            admit=self._admit,
            commits=self._metrics.commits(self.name, store_id) if self._metrics is not None else None,
        )
        self._stores[store_id] = store
        return store

    async def remove_store(self, store_id: str) -> None:
        lock, _ = self._require_started()
        async with lock:
            path = self._path(store_id)
            if not path.exists():
                raise StoreNotFoundError(store_id)
            store = self._stores.pop(store_id, None)
            self._open.pop(store_id, None)
            if store is not None:
                await store.close()  # waits for its writer and its reads: then no file is open

            def unlink() -> None:
                remove_files(path)
                fsync_dir(self._dir)

            await asyncio.to_thread(unlink)
            log.info("removed store", extra={"store": store_id})

    async def list_stores(self) -> list[StoreInfo]:
        self._require_started()
        names = await asyncio.to_thread(lambda: sorted(p.name for p in self._dir.glob(f"*{_SUFFIX}")))
        infos = []
        for name in names:
            store_id = name[: -len(_SUFFIX)]
            try:
                store = await self.open_store(store_id)
            except StoreNotFoundError:
                continue  # removed meanwhile
            infos.append(StoreInfo(store.store_id, store.created_epoch))
        return infos

    async def count_stores(self) -> int:
        self._require_started()
        return await asyncio.to_thread(lambda: sum(1 for _ in self._dir.glob(f"*{_SUFFIX}")))

    async def open_store(self, store_id: str) -> SqliteStore:
        store = self._stores.get(store_id)
        if store is not None:
            return store
        lock, _ = self._require_started()
        async with lock:
            store = self._stores.get(store_id)
            if store is not None:
                return store
            path = self._path(store_id)
            if not path.exists():
                raise StoreNotFoundError(store_id)
            try:
                # Migrates it if needed, reads what the handle keeps, and closes it again.
                created, last_position = await asyncio.to_thread(store_info, path, store_id, self.synchronous)
            except (sqlite3.Error, OSError) as e:
                raise self._translate(e, f"open store {store_id!r}") from e
            return self._make(store_id, created, last_position)

    # -- what open stores hold ------------------------------------------------------------------

    def max_open_stores(self) -> int:
        if self._max_open_stores is not None:
            return self._max_open_stores
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return 256
        return max(8, min(256, soft // _FILES_PER_OPEN_STORE))

    async def _admit(self, store: SqliteStore) -> None:
        """Called by a store before a call opens or uses its thread or connections: it joins
        the open stores — after the least recently used idle store was released, when
        max_open_stores are open already. When all of them are busy it goes over the limit
        (the janitor brings it back down), rather than making calls wait for each other."""
        if self._open.get(store.store_id) is store:
            self._open.move_to_end(store.store_id)
            return
        if len(self._open) >= self.max_open_stores() and self._releasing is not None:
            async with self._releasing:
                while len(self._open) >= self.max_open_stores():
                    if not await self._release_one(time.monotonic(), 0.0):
                        break
        if not store.closed:
            self._open[store.store_id] = store
            self._open.move_to_end(store.store_id)

    async def _release_one(self, now: float, min_idle_s: float) -> bool:
        """Releases the least recently used store that is idle (for at least `min_idle_s`);
        True when one was released and left the open stores."""
        for store_id, store in list(self._open.items()):  # least recently used first
            if self._open.get(store_id) is not store:
                continue  # removed, or released meanwhile
            idle = store.idle_s(now)
            if idle is None or idle < min_idle_s:
                continue  # a call is in progress, or it was used too recently
            uses = store.uses
            await store.release()
            # Used again while it was being released: it stays open (and will be released
            # later); otherwise it holds nothing now.
            if store.uses == uses and not store.holds() and self._open.get(store_id) is store:
                del self._open[store_id]
                return True
        return False

    async def _close_idle_stores(self) -> None:
        """The janitor: releases stores idle for idle_close_s, and idle stores beyond
        max_open_stores (admissions that found them all busy went over)."""
        assert self._releasing is not None
        tick = max(0.005, min(self.idle_close_s / 4, 1.0))
        while True:
            await asyncio.sleep(tick)
            try:
                async with self._releasing:
                    while await self._release_one(time.monotonic(), self.idle_close_s):
                        pass
                    while len(self._open) > self.max_open_stores():
                        if not await self._release_one(time.monotonic(), 0.0):
                            break
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the janitor must go on; the next round retries
                log.exception("closing idle stores failed")
