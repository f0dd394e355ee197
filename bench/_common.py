"""Shared pieces of the benchmarks: a node subprocess and a tiny report format."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.procs import GaterProcess  # noqa: E402  - the same launcher the tests use


@contextlib.asynccontextmanager
async def node_process(*extra: str) -> AsyncIterator[GaterProcess]:
    with tempfile.TemporaryDirectory(prefix="gater-bench-") as data:
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data, "--log-level", "WARNING", *extra)
        # WARNING hides the "serving" line the launcher waits for: keep INFO for that line only.
        node.args = ("node", "--listen", "127.0.0.1:0", "--data-dir", data, *extra)
        await node.start()
        try:
            yield node
        finally:
            await node.terminate()


@contextlib.asynccontextmanager
async def node_processes(count: int, *extra: str) -> AsyncIterator[list[GaterProcess]]:
    """`count` node processes started at once (on PostgreSQL they share one database and so
    one cluster; each gets its own scratch --data-dir)."""
    async with contextlib.AsyncExitStack() as stack:
        entered = [stack.enter_async_context(node_process(*extra)) for _ in range(count)]
        yield list(await asyncio.gather(*entered))


@contextlib.asynccontextmanager
async def fresh_postgres(dsn: str) -> AsyncIterator[str]:
    """A scratch database on the server of `dsn` (a postgresql:// URL; its database is used
    only to connect for CREATE/DROP): yields the scratch database's DSN, drops it afterwards."""
    import asyncpg  # the node's own driver

    url = urllib.parse.urlsplit(dsn)
    if url.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"--postgres-dsn must be a postgresql:// URL, not {dsn!r}")
    base = url.path.lstrip("/") or "postgres"
    name = f"{base}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{url.scheme}://{url.netloc}/{name}" + (f"?{url.query}" if url.query else "")
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def report(name: str, value: float, unit: str, target: float | None = None, higher_is_better: bool = True) -> str:
    verdict = ""
    if target is not None:
        met = value >= target if higher_is_better else value <= target
        verdict = f"  (target {'>=' if higher_is_better else '<='} {target:,.0f}: {'met' if met else 'MISSED'})"
    line = f"{name:<58} {value:>12,.0f} {unit}{verdict}"
    print(line, flush=True)
    return line


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


# -- CPU accounting (/proc/<pid>/stat: utime + stime of every thread) -------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def children(pid: int) -> list[int]:
    """Direct children of `pid` (e.g. the worker processes of `gater gateway --workers N`)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def postgres_pids() -> list[int]:
    """Every process named `postgres` on the machine (server and backends)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


class CpuMeter:
    """CPU used by named groups of processes over a phase (1.0 = one core busy). Group
    members are listed when the phase starts (pass callables to list them then)."""

    def __init__(self, **groups: list[int] | Callable[[], list[int]]) -> None:
        self.groups = groups

    def __enter__(self) -> CpuMeter:
        self.pids = {k: (v() if callable(v) else list(v)) for k, v in self.groups.items()}
        self.wall = time.perf_counter()
        self.before = {k: {p: cpu_seconds(p) for p in v} for k, v in self.pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.wall
        # A process that ended during the phase (a postgres backend) reads 0: left out.
        self.share = {
            k: sum(max(0.0, cpu_seconds(p) - before) for p, before in v.items()) / wall for k, v in self.before.items()
        }

    def line(self) -> str:
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.0%}" for k, v in self.share.items())
        return f"cpu (100% = one core; {os.cpu_count()} cores in all): {parts}"


def count_records(message: bytes, start: int = 0) -> int:
    """Length-delimited records (a repeated message field) from `start` to the end of a
    serialized message, counted by walking the length prefixes: no protobuf parse."""
    i, end, n = start, len(message), 0
    while i < end:
        i += 1  # the field's tag
        length = shift = 0
        while True:
            b = message[i]
            i += 1
            length |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        i += length
        n += 1
    return n
