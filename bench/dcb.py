"""Dynamic Consistency Boundary figures (issue 14) against a node process over loopback.

    python -m bench.dcb [--postgres-dsn DSN] [--seconds 5] [--events 1000000]

1. Single-event appends at concurrency 32, unconditional, then each conditioned on a query
   (its own tag, after the head it read): the cost of the condition as a ratio of times per
   append (target <= 1.3).
2. With `--events` events in the store (10 types; each tagged with one of 100 courses, so a
   course is 1% of the store, and one of 1,000 students; one batch in 100 written to a
   "rare-" stream, so that category is 1% too): a query read of one course, and a read by
   stream prefix "rare-", against a full read of `$all` (target: >= 50x faster). Each read
   twice, the better time counts; the query read's first (cold) time is printed too. On
   PostgreSQL the reads follow a VACUUM (ANALYZE), as autovacuum runs after inserts (one
   query read of another course before it is printed).
3. A transient subscription by one course's tag from the start: how fast it catches up
   (matching events/s until `caught_up`; target >= 100,000), twice, both printed.
Both phases run the appends the way bench.streams does (UUIDv7 ids, 100-event batches for the
preload).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import grpc
from google.protobuf import struct_pb2

from bench._common import Timer, fresh_postgres, node_processes, report
from exesdb.v1 import (
    streams_pb2,
    streams_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
    types_pb2,
)
from gater.ids import uuid7

BODY = b'{"seat":1,"course":"c1","student":"s7"}'


def event(n: int, *tags: str) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=str(uuid7()), event_type=f"type-{n % 10}", data=BODY, tags=tags)


async def appends(stub, *, conditional: bool, seconds: float, concurrency: int = 32) -> tuple[int, float]:  # noqa: ANN001
    done = [0]
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        i = 0
        mine = types_pb2.Query(items=[types_pb2.QueryItem(tags=[f"writer:{n}"])])
        while not stop.is_set():
            request = streams_pb2.AppendEventsRequest(stream_id=f"bench-{n}-{i % 50}", events=[event(i, f"writer:{n}")])
            if conditional:
                # As a DCB writer does: its own query, after the position it last saw.
                request.condition.fail_if_events_match.CopyFrom(mine)
                request.condition.after = last[n]
            reply = await stub.AppendEvents(request)
            last[n] = reply.position
            done[0] += 1
            i += 1

    head = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version
    last = [head] * concurrency
    with Timer() as t:
        tasks = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return done[0], t.seconds


async def preload(stub, total: int) -> None:  # noqa: ANN001
    have = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version + 1
    per_task = -(-max(0, total - have) // 4)

    async def worker(n: int) -> None:
        left, i = per_task, 0
        while left > 0:
            size = min(100, left)
            base = n * per_task + (per_task - left)
            events = [event(k, f"course:c{k % 100}", f"student:s{k % 1000}") for k in range(base, base + size)]
            stream_id = f"rare-{n}" if i % 100 == 0 else f"preload-{n}-{i % 20}"  # "rare-": 1% of the events
            await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=stream_id, events=events))
            left -= size
            i += 1

    await asyncio.gather(*(worker(n) for n in range(4)))


async def read(stub, request: streams_pb2.ReadEventsRequest) -> tuple[int, float]:  # noqa: ANN001
    count = 0
    with Timer() as t:
        async for response in stub.ReadEvents(request):
            count += len(response.events)
    return count, t.seconds


async def main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        extra: tuple[str, ...] = ()
        if args.postgres_dsn:
            dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
            extra = ("--postgres-dsn", dsn)
        (node,) = await stack.enter_async_context(node_processes(1, *extra))
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(node.address))
        stub = streams_pb2_grpc.StreamsStub(channel)
        backend = "PostgreSQL" if args.postgres_dsn else "SQLite"
        await appends(stub, conditional=False, seconds=1)  # warm-up
        plain, plain_s = await appends(stub, conditional=False, seconds=args.seconds)
        cond, cond_s = await appends(stub, conditional=True, seconds=args.seconds)
        report(f"{backend}: single-event appends, concurrency 32: appends/s", plain / plain_s, "appends/s")
        report(f"{backend}: same, each conditional: appends/s", cond / cond_s, "appends/s")
        ratio = (cond_s / cond) / (plain_s / plain)
        print(f"{backend}: conditional / unconditional time per append{'':<17} {ratio:>12.2f} x  "
              f"(target <= 1.3: {'met' if ratio <= 1.3 else 'MISSED'})", flush=True)
        with Timer() as load:
            await preload(stub, args.events)
        total = (await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))).version + 1
        print(f"{backend}: preloaded to {total:,} events in {load.seconds:,.0f} s", flush=True)
        if args.postgres_dsn:
            # A freshly written table has no visibility map yet: an index-only scan of the tag
            # index then visits the heap for every entry. Autovacuum builds it on its own once
            # enough rows were inserted; measured here before and after it has.
            matched, took = await read(stub, streams_pb2.ReadEventsRequest(
                query=types_pb2.Query(items=[types_pb2.QueryItem(tags=["course:c40"])])
            ))
            report(f"{backend}: query read of one course ({matched:,} events), before VACUUM: ms", took * 1000, "ms")
            with Timer() as vacuum:
                await vacuum_analyze(dsn)
            print(f"{backend}: VACUUM (ANALYZE) of the preloaded database took {vacuum.seconds:,.1f} s", flush=True)
        # Each read twice, the better time counts: the first also warms caches for the second
        # (the first, cold, is printed too: the query read's look-ups gain more from a warm
        # cache than the scan, whose pages each hold many events).
        scan_s = float("inf")
        query_times = []
        for _ in range(2):
            matched, took = await read(stub, streams_pb2.ReadEventsRequest(
                query=types_pb2.Query(items=[types_pb2.QueryItem(tags=["course:c41"])])
            ))
            query_times.append(took)
        cold_query_s, query_s = query_times[0], min(query_times)
        for _ in range(2):
            everything, took = await read(stub, streams_pb2.ReadEventsRequest(stream_id="$all"))
            scan_s = min(scan_s, took)
        prefix_s = float("inf")
        for _ in range(2):
            in_prefix, took = await read(stub, streams_pb2.ReadEventsRequest(stream_prefix="rare-"))
            prefix_s = min(prefix_s, took)
        report(f"{backend}: query read of one course ({matched:,} events), first: ms", cold_query_s * 1000, "ms")
        report(f"{backend}: query read of one course ({matched:,} events): ms", query_s * 1000, "ms")
        report(f"{backend}: prefix read of rare- ({in_prefix:,} events): ms", prefix_s * 1000, "ms")
        report(f"{backend}: full read of $all ({everything:,} events): ms", scan_s * 1000, "ms")
        print(f"{backend}: query read faster than the full read, first read {'':<9} {scan_s / cold_query_s:>12.1f} x", flush=True)
        speedup = scan_s / query_s
        print(f"{backend}: query read faster than the full read{'':<21} {speedup:>12.1f} x  "
              f"(target >= 50: {'met' if speedup >= 50 else 'MISSED'})", flush=True)
        speedup = scan_s / prefix_s
        print(f"{backend}: prefix read faster than the full read{'':<20} {speedup:>12.1f} x  "
              f"(target >= 50: {'met' if speedup >= 50 else 'MISSED'})", flush=True)
        subscriptions = subscriptions_pb2_grpc.SubscriptionsStub(channel)
        rates = []
        for _ in range(2):  # the first cold, the second after it (printed both, the better counts)
            caught, took = await catch_up(subscriptions, "course:c43")
            rates.append(caught / took)
        best = max(rates)
        report(f"{backend}: subscription by tag, catch-up of {caught:,} events, first: events/s", rates[0], "events/s")
        report(f"{backend}: subscription by tag, catch-up of {caught:,} events: events/s", best, "events/s")
        print(f"{backend}: subscription by tag catch-up{'':<31} {best:>12,.0f} /s "
              f"(target >= 100,000: {'met' if best >= 100_000 else 'MISSED'})", flush=True)


async def vacuum_analyze(dsn: str) -> None:
    """What autovacuum does after inserts, at once: visibility map and statistics."""
    import asyncpg  # the node's own driver

    con = await asyncpg.connect(dsn)
    try:
        await con.execute("VACUUM (ANALYZE)")
    finally:
        await con.close()


async def catch_up(stub, tag: str) -> tuple[int, float]:  # noqa: ANN001
    """A transient subscription by one tag from the start: events until caught_up, seconds."""
    query = struct_pb2.Struct()
    query.update({"items": [{"tags": [tag]}]})
    count = 0
    call = stub.Subscribe(subscriptions_pb2.SubscribeRequest(
        type=subscriptions_pb2.SUBSCRIPTION_TYPE_BY_QUERY, pattern=query, max_batch=1000,
    ))
    with Timer() as t:
        async for message in call:
            kind = message.WhichOneof("message")
            if kind == "events":
                count += len(message.events.events)
            elif kind == "caught_up":
                break
    call.cancel()
    return count, t.seconds


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="run the node on PostgreSQL instead of SQLite")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store before the reads")
    asyncio.run(main(parser.parse_args()))
