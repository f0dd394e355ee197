"""What the stream lifecycle costs and how fast a scavenge goes (issue 15), at the store API.

    python -m bench.lifecycle [--postgres-dsn DSN] [--events 200000]

In one process, on a store of the backend (SQLite in a temporary directory, or a scratch
PostgreSQL database): `--events` events in 20 streams, then
1. read $all from the start in pages of 500 (best of 3): with no stream metadata in the store,
   then with one stream given metadata (every read then joins each row to its stream's rules);
2. 100-event appends by 4 writers for 3 s with nothing else going on;
3. half the streams tombstoned, then a scavenge while the same 4 writers append: the events
   removed per second, and the writers' rate meanwhile (steps of 1,000 positions pass appends
   between them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from bench._common import fresh_postgres, report
from gater.config import Limits
from gater.store._lifecycle import StreamMetadata
from gater.store.base import EXPECT_ANY, EventStore, NewEvent, StorageBackend

STREAMS = 20


def _events(n: int) -> list[NewEvent]:
    return [NewEvent(str(uuid.uuid4()), "tick:v1", b'{"temperature": 21.5, "unit": "C"}') for _ in range(n)]


@contextlib.asynccontextmanager
async def _backend(dsn: str | None) -> AsyncIterator[StorageBackend]:
    if dsn:
        from gater.store.postgres import PostgresBackend

        async with fresh_postgres(dsn) as scratch, PostgresBackend(scratch, limits=Limits(), node_id="bench") as b:
            yield b
    else:
        from gater.store.sqlite import SqliteBackend

        with tempfile.TemporaryDirectory() as d:
            async with SqliteBackend(Path(d) / "data", synchronous="FULL", limits=Limits()) as b:
                yield b


async def _read_rate(store: EventStore) -> float:
    best = 0.0
    for _ in range(3):
        started, count, start = time.perf_counter(), 0, 0
        while page := await store.read_all(start, 500):
            count += len(page)
            start = page[-1].position + 1
        best = max(best, count / (time.perf_counter() - started))
    return best


async def _append_for(store: EventStore, stop: asyncio.Event) -> int:
    written = 0
    while not stop.is_set():
        await store.append("live", _events(100), EXPECT_ANY)
        written += 100
    return written


async def _appending(store: EventStore, during: asyncio.Future[object] | None, seconds: float) -> float:
    """Events/s of 4 writers, for `seconds` or until `during` is done."""
    stop = asyncio.Event()
    writers = [asyncio.ensure_future(_append_for(store, stop)) for _ in range(4)]
    started = time.perf_counter()
    if during is None:
        await asyncio.sleep(seconds)
    else:
        await during
    stop.set()
    written = sum(await asyncio.gather(*writers))
    return written / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    async with _backend(args.postgres_dsn) as backend:
        await backend.create_store("bench")
        store = await backend.open_store("bench")
        per_append = 1000
        for i in range(args.events // per_append):
            await store.append(f"s-{i % STREAMS}", _events(per_append), EXPECT_ANY)
        report(f"read $all ({args.events:,} events), no stream metadata: events/s", await _read_rate(store), "events/s")
        await store.set_stream_metadata("elsewhere", StreamMetadata(max_count=10), EXPECT_ANY)
        report("  same, one stream with metadata (rules joined): events/s", await _read_rate(store), "events/s")
        report("100-event appends, 4 writers, nothing else: events/s", await _appending(store, None, 3.0), "events/s")
        for i in range(0, STREAMS, 2):
            await store.delete_stream(f"s-{i}", EXPECT_ANY, tombstone=True)
        started = time.perf_counter()
        scavenge = asyncio.ensure_future(store.scavenge())
        rate = await _appending(store, scavenge, 0)
        status = scavenge.result()
        seconds = time.perf_counter() - started
        report(f"scavenge removing {status.removed:,} of them, appends going on: removed/s", status.removed / seconds, "events/s")
        report("  100-event appends, 4 writers, during the scavenge: events/s", rate, "events/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="run on PostgreSQL instead of SQLite")
    parser.add_argument("--events", type=int, default=200_000, help="events in the store before the reads")
    asyncio.run(main(parser.parse_args()))
