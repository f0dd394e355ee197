"""Export and import rates (issue 15): a SQLite node's store into a PostgreSQL node and back.

    python -m bench.transfer --postgres-dsn DSN [--events 100000] [--body-bytes 100]

Node processes on loopback, the client (gater.client's export_store / import_store, as
`gater export` / `gater import` run them) in this process. Steps: fill a store of a SQLite
node with `--events` events (8 appenders, 500 events per append, 50 streams, every tenth event
tagged); export it to a file (export rate, SQLite); import the file into a PostgreSQL node
(import rate, PostgreSQL); export that store again (export rate, PostgreSQL); import the second
file into a new SQLite node (import rate, SQLite). Identity: the event entries of the two
files — every record with its id, version, position, body, tags and created time, as each
node stores it — must be byte for byte the same, or the run fails. Without --postgres-dsn only
the SQLite figures are measured (SQLite → SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import tempfile
from pathlib import Path

import grpc

from bench._common import Timer, fresh_postgres, node_process, report
from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from gater.client import Client
from gater.client._transfer import read_entries
from gater.ids import uuid7

STORE = "bench"
EXPORT_TARGET = 100_000
IMPORT_TARGET = 40_000


async def fill(address: str, events: int, body: bytes) -> None:
    """`events` events through 8 concurrent appenders, 500 per append."""
    per_append = 500
    appends = (events + per_append - 1) // per_append
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(appends):
        queue.put_nowait(i)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = streams_pb2_grpc.StreamsStub(channel)

        async def appender() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                n = min(per_append, events - i * per_append)
                batch = [
                    types_pb2.NewEvent(
                        event_id=str(uuid7()), event_type=f"measured_{k % 5}:v1", data=body,
                        tags=[f"greenhouse:gh-{k % 100}"] if k % 10 == 0 else [],
                    )
                    for k in range(n)
                ]  # fmt: skip
                await stub.AppendEvents(streams_pb2.AppendEventsRequest(store=STORE, stream_id=f"s-{i % 50}", events=batch))

        await asyncio.gather(*(appender() for _ in range(8)))


def event_digest(path: Path) -> tuple[int, str]:
    """(events, sha256 of every event entry in order) of a transfer file."""
    digest = hashlib.sha256()
    count = 0
    with path.open("rb") as f:
        for entry, _ in read_entries(f):
            if entry[:1] == b"\x12":
                digest.update(len(entry).to_bytes(4, "big") + entry)
                count += 1
    return count, digest.hexdigest()


async def export(address: str, path: Path, events: int, label: str) -> None:
    async with await Client.connect(address, timeout_s=600) as client:
        with Timer() as t:
            summary = await client.export_store(STORE, path)
    assert summary.events == events and summary.complete, summary
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    report(f"export, {label} node -> file ({events:,} events, {size / 2**20:,.0f} MiB)", events / t.seconds, "events/s",
           EXPORT_TARGET)  # fmt: skip


async def import_(address: str, path: Path, events: int, label: str) -> None:
    async with await Client.connect(address, timeout_s=600) as client:
        with Timer() as t:
            summary = await client.import_store(STORE, path)
        status = await client.get_store_status(STORE)
    assert summary.events == events and status.last_position == events - 1, (summary, status)
    report(f"import, file -> {label} node ({events:,} events)", events / t.seconds, "events/s", IMPORT_TARGET)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--body-bytes", type=int, default=100)
    parser.add_argument("--postgres-dsn", default=None)
    args = parser.parse_args()
    body = (b'{"greenhouse":"gh-1","reading":"' + b"x" * max(0, args.body_bytes - 36) + b'"}')[: max(args.body_bytes, 2)]
    async with contextlib.AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gater-bench-transfer-")))
        source = await stack.enter_async_context(node_process("--default-store", STORE))
        with Timer() as t:
            await fill(source.address, args.events, body)
        print(f"info: filled {args.events:,} events in {t.seconds:.1f} s", flush=True)
        first, second = work / "sqlite.gtx", work / "second.gtx"
        await export(source.address, first, args.events, "SQLite")
        if args.postgres_dsn:
            dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
            middle = await stack.enter_async_context(node_process("--postgres-dsn", dsn, "--default-store", "unused"))
            label = "PostgreSQL"
        else:
            middle = await stack.enter_async_context(node_process("--default-store", "unused"))
            label = "SQLite"
        await import_(middle.address, first, args.events, label)
        await export(middle.address, second, args.events, label)
        last = await stack.enter_async_context(node_process("--default-store", "unused"))
        await import_(last.address, second, args.events, "SQLite")
        a, b = event_digest(first), event_digest(second)
        if a != b:
            raise SystemExit(f"records differ: SQLite export {a}, {label} export {b}")
        print(f"identical: {a[0]:,} event records, sha256 {a[1][:16]}… on the SQLite and the {label} node", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
