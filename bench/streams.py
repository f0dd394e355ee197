"""Append and read throughput against node processes over loopback (issue 2's three figures).

    python -m bench.streams [--postgres-dsn DSN [--nodes N]] [--seconds 5] [--read-events 200000]

Client and node run in separate processes, as they would in production. Without
--postgres-dsn: one node on SQLite in a temporary directory. With --postgres-dsn: a scratch
database is created on that server for the run (named after the DSN's database plus a random
suffix; the DSN's own database is used only to CREATE and DROP it) and `--nodes` node
processes (default 1) run on it; the appenders are spread round-robin over the nodes
("N nodes appending at once"), the read goes to the first node. PostgreSQL runs also print
an `info:` line per phase with the CPU used by the client, the node(s) and the postgres
processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import uuid

import grpc

from bench._common import CpuMeter, Timer, fresh_postgres, node_processes, postgres_pids, report
from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from gater.ids import uuid7

BODY = b'{"temperature":21.5,"humidity":48,"greenhouse":"gh-1","operator":"John"}'


def batch(n: int, random_ids: bool = False) -> list[types_pb2.NewEvent]:
    """`n` events with time-ordered UUIDv7 ids, as gater's client makes them, or random
    UUIDv4 ids (which cost the store's id index much more: docs/BENCHMARKS.md)."""
    make = uuid.uuid4 if random_ids else uuid7
    return [types_pb2.NewEvent(event_id=str(make()), event_type="temperature_measured:v1", data=BODY) for _ in range(n)]


async def appends(
    stub, *, events_per_append: int, concurrency: int, seconds: float, random_ids: bool = False
) -> tuple[int, int, float]:
    """Appends from `concurrency` tasks for about `seconds`; returns (appends, events, elapsed).
    `stub` may be a list of stubs (one per node): task n then appends through stub n % len."""
    stubs = stub if isinstance(stub, list) else [stub]
    done = [0]
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            events = batch(events_per_append, random_ids)
            request = streams_pb2.AppendEventsRequest(stream_id=f"bench-{n}-{i % 50}", events=events)
            await stubs[n % len(stubs)].AppendEvents(request)
            done[0] += 1
            i += 1

    with Timer() as t:
        tasks = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return done[0], done[0] * events_per_append, t.seconds


async def preload(stub, total: int) -> None:  # noqa: ANN001 - a StreamsStub
    """Appends until the store holds `total` events (batches of 1000 from 4 tasks)."""
    have = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version + 1
    per_task = -(-max(0, total - have) // 4)

    async def worker(n: int) -> None:
        left, i = per_task, 0
        while left > 0:
            size = min(1000, left)
            await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"preload-{n}-{i % 20}", events=batch(size)))
            left -= size
            i += 1

    await asyncio.gather(*(worker(n) for n in range(4)))


async def read_all(stub) -> tuple[int, float]:
    count = 0
    with Timer() as t:
        async for response in stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
            count += len(response.events)
    return count, t.seconds


async def main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if args.postgres_dsn:
            dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
            extra: tuple[str, ...] = ("--postgres-dsn", dsn)
        else:
            extra = ()
        nodes = await stack.enter_async_context(node_processes(args.nodes, *extra))
        channels = [await stack.enter_async_context(grpc.aio.insecure_channel(n.address)) for n in nodes]
        await run(args, nodes, [streams_pb2_grpc.StreamsStub(c) for c in channels])


async def run(args: argparse.Namespace, nodes, stubs) -> None:  # noqa: ANN001 - GaterProcess, stubs
    targets = (15_000, 1_000) if args.postgres_dsn else (30_000, 1_500)
    over = f" over {len(nodes)} nodes" if len(nodes) > 1 else ""
    verbose = bool(args.postgres_dsn)  # the SQLite output stays as it always was
    meter = lambda: CpuMeter(client=[os.getpid()], nodes=[n.proc.pid for n in nodes], postgres=postgres_pids)  # noqa: E731
    stub = stubs[0]
    await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))
    with meter() as cpu:
        _, events, seconds = await appends(stubs, events_per_append=100, concurrency=4, seconds=args.seconds)
    report(f"100-event appends, 4 concurrent{over}: events/s", events / seconds, "events/s", targets[0])
    if verbose:
        print(f"  info: {cpu.line()}", flush=True)
    _, events, seconds = await appends(stubs, events_per_append=100, concurrency=4, seconds=args.seconds, random_ids=True)
    report(f"  same, random UUIDv4 event ids{over}: events/s", events / seconds, "events/s")
    with meter() as cpu:
        calls, _, seconds = await appends(stubs, events_per_append=1, concurrency=32, seconds=args.seconds)
    report(f"single-event appends, concurrency 32{over}: appends/s", calls / seconds, "appends/s", targets[1])
    if verbose:
        print(f"  info: {cpu.line()}", flush=True)
    total = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version + 1
    while total < args.read_events:
        _, events, _ = await appends(stubs, events_per_append=500, concurrency=4, seconds=1)
        total += events
    with meter() as cpu:
        count, seconds = await read_all(stub)
    report(f"read $all from the start ({count:,} events): events/s", count / seconds, "events/s", 100_000)
    if verbose:
        print(f"  info: {cpu.line()}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="run the node on PostgreSQL instead of SQLite")
    parser.add_argument("--nodes", type=int, default=1, help="node processes on the PostgreSQL database (needs --postgres-dsn)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--read-events", type=int, default=200_000, help="events in the store before the read")
    arguments = parser.parse_args()
    if arguments.nodes < 1 or (arguments.nodes > 1 and not arguments.postgres_dsn):
        parser.error("--nodes N > 1 needs --postgres-dsn: SQLite nodes cannot share a store")
    asyncio.run(main(arguments))
