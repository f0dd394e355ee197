"""Append and read throughput against one node over loopback (issue 2's three figures).

    python -m bench.streams [--postgres-dsn DSN]

Client and node run in separate processes, as they would in production.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import grpc

from bench._common import Timer, node_process, report
from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2

BODY = b'{"temperature":21.5,"humidity":48,"greenhouse":"gh-1","operator":"John"}'


def batch(n: int) -> list[types_pb2.NewEvent]:
    return [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="temperature_measured:v1", data=BODY) for _ in range(n)]


async def appends(stub, *, events_per_append: int, concurrency: int, seconds: float) -> tuple[int, int, float]:
    """Appends from `concurrency` tasks for about `seconds`; returns (appends, events, elapsed)."""
    done = [0]
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        while not stop.is_set():
            request = streams_pb2.AppendEventsRequest(stream_id=f"bench-{n}-{i % 50}", events=batch(events_per_append))
            await stub.AppendEvents(request)
            done[0] += 1
            i += 1

    with Timer() as t:
        tasks = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return done[0], done[0] * events_per_append, t.seconds


async def read_all(stub) -> tuple[int, float]:
    count = 0
    with Timer() as t:
        async for response in stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
            count += len(response.events)
    return count, t.seconds


async def main(args: argparse.Namespace) -> None:
    extra = ("--postgres-dsn", args.postgres_dsn) if args.postgres_dsn else ()
    targets = (15_000, 1_000) if args.postgres_dsn else (30_000, 1_500)
    async with node_process(*extra) as node, grpc.aio.insecure_channel(node.address) as channel:
        stub = streams_pb2_grpc.StreamsStub(channel)
        await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))
        _, events, seconds = await appends(stub, events_per_append=100, concurrency=4, seconds=args.seconds)
        report("100-event appends, 4 concurrent: events/s", events / seconds, "events/s", targets[0])
        calls, _, seconds = await appends(stub, events_per_append=1, concurrency=32, seconds=args.seconds)
        report("single-event appends, concurrency 32: appends/s", calls / seconds, "appends/s", targets[1])
        total = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version + 1
        while total < args.read_events:
            _, events, _ = await appends(stub, events_per_append=500, concurrency=4, seconds=1)
            total += events
        count, seconds = await read_all(stub)
        report(f"read $all from the start ({count:,} events): events/s", count / seconds, "events/s", 100_000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="run the node on PostgreSQL instead of SQLite")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--read-events", type=int, default=200_000, help="events in the store before the read")
    asyncio.run(main(parser.parse_args()))
