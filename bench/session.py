"""Issue 13's figures: ceilings measured in the same run, AppendSession direct and through a
gateway, and each ratio with a verdict against the issue's targets.

    python -m bench.session [--postgres-dsn DSN] [--seconds 5] [--preload 100000]

Ceilings (what the machine gives a bare program, today):
- a bare grpc.aio echo server (its own process, no gater code): unary calls/s at concurrency
  32 (request and response the size of a single-event append's), and one server stream of
  100-record messages (records the size of a stored event), records/s;
- raw SQLite: 100-row batch inserts of the same events (one transaction each, WAL,
  synchronous=FULL, a unique index on the event id, as a store has), events/s, in this process;
- with --postgres-dsn: binary COPY of 100-row batches into a table with the same indexes
  (asyncpg copy_records_to_table, one transaction each), events/s.

Gater (a node process on SQLite in a temporary directory; `gater gateway` in front of it):
- single-event appends, 32 in flight over one AppendSession, direct and through the gateway
  (the client writes pre-serialized requests and reads answers as bytes);
- for reference, unary single-event appends at concurrency 32, direct and through the gateway;
- 100-event appends, 4 in flight over one session, SQLite (and PostgreSQL with --postgres-dsn);
- catch-up of `$all` (`--preload` events) to one subscriber, counted from raw bytes.

Each ratio is printed with the issue's target and "met" or "MISSED": a missed target is a
verdict, not a failure. `info:` lines give the CPU per process (100% = one core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import time

import grpc

from bench._common import (
    CpuMeter,
    Timer,
    count_records,
    fresh_postgres,
    node_process,
    postgres_pids,
    report,
)
from bench.gateway import gateway_pids, gateway_process
from bench.streams import BODY, appends, batch, preload
from bench.subscriptions import catch_up
from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from gater._wire import varint
from gater.ids import uuid7

SESSION = "/exesdb.v1.Streams/AppendSession"
ECHO, RECORDS = "/bench.Echo/Unary", "/bench.Echo/Records"
DEFAULT_DSN = "postgresql:///gater_bench?host=/var/run/postgresql"


def ratio(name: str, value: float, target: float, note: str = "") -> None:
    verdict = "met" if value >= target else "MISSED"
    print(f"{name:<58} {value:>12.2f} x   (target >= {target:g}: {verdict}){note}", flush=True)


# -- the bare echo server (its own process: python -m bench.session --echo-server) -----------


def _record() -> bytes:
    return types_pb2.EventRecord(
        stream_id="bench-1-1", version=7, position=123456, event_id=str(uuid7()), event_type="temperature_measured:v1",
        data=BODY, content_type="application/json", created_epoch=1_700_000_000_000_000,
    ).SerializeToString()  # fmt: skip


async def echo_server(messages: int) -> None:
    answer = streams_pb2.AppendEventsResponse(version=12, position=34567, first_version=12, first_position=34567).SerializeToString()
    record = _record()
    message = b"".join(b"\x0a" + varint(len(record)) + record for _ in range(100))

    async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return answer

    async def records(request: bytes, context: grpc.aio.ServicerContext):  # noqa: ANN202
        for _ in range(messages):
            yield message

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Records": grpc.unary_stream_rpc_method_handler(records),
    }),))  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


@contextlib.asynccontextmanager
async def echo_process(messages: int):  # noqa: ANN201
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.session", "--echo-server", "--echo-messages", str(messages), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        port = int((await proc.stdout.readline()).decode())
        yield proc, f"127.0.0.1:{port}"
    finally:
        proc.kill()
        await proc.wait()


def single_append_bytes() -> bytes:
    return streams_pb2.AppendEventsRequest(stream_id="bench-1-1", events=batch(1)).SerializeToString()


async def echo_unary(address: str, seconds: float, concurrency: int = 32) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(ECHO)
        stop, done = asyncio.Event(), [0]

        async def worker() -> None:
            while not stop.is_set():
                await call(single_append_bytes())
                done[0] += 1

        await call(b"")
        with Timer() as t:
            tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks)
        return done[0] / t.seconds


async def echo_records(address: str) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        count = 0
        with Timer() as t:
            async for message in channel.unary_stream(RECORDS)(b""):
                count += count_records(message)
        return count / t.seconds


# -- raw storage ceilings ---------------------------------------------------------------------


def _rows(count: int) -> list[tuple[str, bytes]]:
    """(event id, record) of `count` events, made before the timed loops: the ceilings time
    the storage, not making ids."""
    record = _record()
    return [(str(uuid7()), record) for _ in range(count)]


def raw_sqlite(seconds: float, rows: list[tuple[str, bytes]], per_batch: int = 100) -> float:
    with tempfile.TemporaryDirectory(prefix="gater-bench-sqlite-") as d:
        conn = sqlite3.connect(os.path.join(d, "raw.sqlite"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL,"
            " event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, data BLOB, record BLOB, created INTEGER)"
        )
        conn.execute("CREATE UNIQUE INDEX by_stream ON events (stream_id, version)")
        position, n = 0, 0
        deadline = time.perf_counter() + seconds
        with Timer() as t:
            while time.perf_counter() < deadline and position + per_batch <= len(rows):
                stream = f"s-{n % 50}"
                batch_rows = [
                    (p, stream, p, rows[p][0], "temperature_measured:v1", BODY, rows[p][1], 0)
                    for p in range(position, position + per_batch)
                ]
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch_rows)
                conn.execute("COMMIT")
                position += per_batch
                n += 1
        conn.close()
        return position / t.seconds


async def raw_copy(dsn: str, seconds: float, per_batch: int = 100) -> float:
    record = _record()
    ids = [uuid7() for _ in range(int(seconds * 40_000))]
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE raw_events (position bigint PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL,"
            " event_id uuid NOT NULL UNIQUE, event_type text NOT NULL, data bytea, record bytea,"
            " created timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, version))"
        )
        position, n = 0, 0
        columns = ["position", "stream_id", "version", "event_id", "event_type", "data", "record"]
        deadline = time.perf_counter() + seconds
        with Timer() as t:
            while time.perf_counter() < deadline and position + per_batch <= len(ids):
                stream = f"s-{n % 50}"
                rows = [
                    (p, stream, p, ids[p], "temperature_measured:v1", BODY, record) for p in range(position, position + per_batch)
                ]
                position += per_batch
                async with conn.transaction():
                    await conn.copy_records_to_table("raw_events", records=rows, columns=columns)
                n += 1
        return position / t.seconds
    finally:
        await conn.close()


# -- sessions ---------------------------------------------------------------------------------


def _session_request(cid: int, append: bytes) -> bytes:
    return b"\x08" + varint(cid) + b"\x12" + varint(len(append)) + append


async def session_appends(address: str, *, events: int, in_flight: int, seconds: float) -> tuple[int, int]:
    """Appends of `events` events with up to `in_flight` outstanding over one AppendSession,
    for `seconds`; returns (appends answered, failed)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(SESSION)()
        slots = asyncio.Semaphore(in_flight)
        answered, failed = [0], [0]

        async def read() -> None:
            async for message in call:
                answered[0] += 1
                if _result_tag(message) != 0x12:
                    failed[0] += 1
                slots.release()

        reader = asyncio.create_task(read())
        cid = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await slots.acquire()
            cid += 1
            append = streams_pb2.AppendEventsRequest(stream_id=f"bench-{cid % 50}", events=batch(events)).SerializeToString()
            await call.write(_session_request(cid, append))
        await call.done_writing()
        await reader
        return answered[0], failed[0]


def _result_tag(message: bytes) -> int:
    """The tag after the correlation id (answers start with it: cid >= 1): 0x12 appended,
    0x1a error."""
    i = 1
    while message[i] & 0x80:
        i += 1
    return message[i + 1]


async def measured(name: str, seconds: float, meters, fn) -> float:  # noqa: ANN001
    with meters() as cpu:
        with Timer() as t:
            done, failed = await fn()
    rate = done / t.seconds
    report(name, rate, "appends/s" if "single" in name else "events/s")
    print(f"  info: {cpu.line()}" + (f"; {failed} appends failed" if failed else ""), flush=True)
    return rate


async def main(args: argparse.Namespace) -> None:
    s = args.seconds
    print(f"  info: {os.cpu_count()} cores, shared by this client, the servers, the gateway and PostgreSQL", flush=True)
    async with echo_process(args.echo_messages) as (echo, address):
        echo_meter = lambda: CpuMeter(client=[os.getpid()], echo_server=[echo.pid])  # noqa: E731
        await echo_unary(address, 0.5)
        with echo_meter() as cpu:
            unary_ceiling = await echo_unary(address, s)
        report("ceiling: bare grpc.aio echo, unary, concurrency 32: calls/s", unary_ceiling, "calls/s")
        print(f"  info: {cpu.line()}", flush=True)
        with echo_meter() as cpu:
            stream_ceiling = await echo_records(address)
        report("ceiling: bare grpc.aio server stream, 100-record messages: rec/s", stream_ceiling, "records/s")
        print(f"  info: {cpu.line()}", flush=True)
    sqlite_ceiling = await asyncio.to_thread(raw_sqlite, s, _rows(int(s * 100_000)))
    report("ceiling: raw SQLite 100-row batch inserts: events/s", sqlite_ceiling, "events/s")

    async with contextlib.AsyncExitStack() as stack:
        node = await stack.enter_async_context(node_process())
        gw = await stack.enter_async_context(gateway_process([node.address]))
        meters = lambda: CpuMeter(client=[os.getpid()], gateway=lambda: gateway_pids(gw), node=[node.proc.pid])  # noqa: E731
        direct = await stack.enter_async_context(grpc.aio.insecure_channel(node.address))
        via = await stack.enter_async_context(grpc.aio.insecure_channel(gw.address))
        for address in (node.address, gw.address):  # warm up both paths
            await session_appends(address, events=1, in_flight=32, seconds=0.5)

        rates = {}
        for name, address in (("direct", node.address), ("gateway", gw.address)):
            rates[name] = await measured(
                f"session: single-event appends, 32 in flight, {name}", s, meters,
                lambda a=address: session_appends(a, events=1, in_flight=32, seconds=s),
            )  # fmt: skip
        unary = {}
        for name, channel in (("direct", direct), ("gateway", via)):
            stub = streams_pb2_grpc.StreamsStub(channel)

            async def unary_run(stub=stub) -> tuple[int, int]:  # noqa: ANN001
                calls, _, _ = await appends(stub, events_per_append=1, concurrency=32, seconds=s)
                return calls, 0

            unary[name] = await measured(f"unary: single-event appends, concurrency 32, {name}", s, meters, unary_run)
        events100 = await measured(
            "session: 100-event appends, 4 in flight, SQLite, direct", s, meters,
            lambda: _events(session_appends(node.address, events=100, in_flight=4, seconds=s), 100),
        )  # fmt: skip

        await preload(streams_pb2_grpc.StreamsStub(direct), args.preload)
        await catch_up(direct)  # warm the caches once
        with meters() as cpu:
            count, seconds = await catch_up(direct)
        catchup = count / seconds
        report(f"catch-up of $all ({count:,} events) to one subscriber: events/s", catchup, "events/s")
        print(f"  info: {cpu.line()}", flush=True)

    pg = None
    if args.postgres_dsn:
        async with contextlib.AsyncExitStack() as stack:
            dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
            copy_ceiling = await raw_copy(dsn, s)
            report("ceiling: PostgreSQL binary COPY, 100-row batches: events/s", copy_ceiling, "events/s")
            dsn2 = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
            node = await stack.enter_async_context(node_process("--postgres-dsn", dsn2))
            pg_meter = lambda: CpuMeter(client=[os.getpid()], node=[node.proc.pid], postgres=postgres_pids)  # noqa: E731
            await session_appends(node.address, events=100, in_flight=4, seconds=0.5)
            pg_rate = await measured(
                "session: 100-event appends, 4 in flight, PostgreSQL", s, pg_meter,
                lambda: _events(session_appends(node.address, events=100, in_flight=4, seconds=s), 100),
            )  # fmt: skip
            pg = (pg_rate, copy_ceiling)

    print("ratios (issue 13 targets):", flush=True)
    ratio("session direct / bare unary echo ceiling", rates["direct"] / unary_ceiling, 2.0,
          f"; unary appends: {unary['direct'] / unary_ceiling:.2f} x")  # fmt: skip
    ratio("session via gateway / session direct", rates["gateway"] / rates["direct"], 0.8,
          f"; unary: {unary['gateway'] / unary['direct']:.2f} x")  # fmt: skip
    ratio("100-event appends, SQLite / raw SQLite inserts", events100 / sqlite_ceiling, 0.6)
    ratio("catch-up of $all / bare 100-record stream", catchup / stream_ceiling, 0.5)
    if pg is not None:
        ratio("100-event appends, PostgreSQL / binary COPY", pg[0] / pg[1], 0.4)


async def _events(run, per_append: int) -> tuple[int, int]:  # noqa: ANN001
    done, failed = await run
    return done * per_append, failed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help=f"also the PostgreSQL figures (e.g. {DEFAULT_DSN})")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each timed phase")
    parser.add_argument("--preload", type=int, default=100_000, help="events in the store before the catch-up")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo-messages", type=int, default=2_000, help="100-record messages in the bare stream")
    arguments = parser.parse_args()
    if arguments.echo_server:
        asyncio.run(echo_server(arguments.echo_messages))
    else:
        asyncio.run(main(arguments))
