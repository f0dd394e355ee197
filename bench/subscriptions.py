"""Subscription delivery against one node over loopback: catch-up, live fan-out, latency,
persistent delivery with acks.

    python -m bench.subscriptions [--seconds 5] [--preload 200000] [--subscribers 100]
                                  [--client-procs 2] [--live-tasks 4] [--live-batch 100]
                                  [--live-rate 0] [--latency-rate 200] [--latency-seconds 10]
                                  [--persistent-events 20000]
                                  [--phases catchup,live,latency,persistent] [--synchronous FULL]
                                  [--postgres-dsn DSN] [--py-spy DIR]

Four figures, the node a separate process (tests/procs.py), SQLite in a temporary directory:

1. catch-up of `$all` to one subscriber: `--preload` events are appended first (batches of
   1000 from 4 tasks), then one Subscribe(selector="$all", max_batch=1000) from the beginning;
   events/s until its `caught_up`.
2. live fan-out: `--subscribers` Subscribe streams on `$all` from ORIGIN_NOW; once every one
   has its `caught_up`, `--live-tasks` tasks (4) append `--live-batch`-event batches (100)
   for `--seconds` (`--live-rate` events/s in all, 0 = as fast as the node accepts them);
   events received over all subscribers per second of the append window. A "drain" line adds the time until every subscriber has every
   event.
3. append→delivery latency: one live subscriber, `--latency-rate` single-event appends per
   second for `--latency-seconds`; per event, from just before its AppendEvents call to its
   arrival on the subscriber; p50 and p99.
4. persistent delivery with acks: `--persistent-events` events (batches of 1000) in a store of
   their own, one persistent subscription on `$all` (max_in_flight 1000), one consumer that
   acks each message's events (max_batch 100; AckEvent awaited before it reads on); events/s from Subscribe
   to the last ack. Every ack and every delivery round is a durable state write, so this
   measures the dispatcher's group-committed writes as much as delivery.

The client reads throughput streams as raw bytes (no protobuf parse: responses are counted by
walking their length prefixes), so the Python client costs little per event; the live
subscribers are spread over `--client-procs` processes (0 = in this process). Each figure is
followed by an `info:` line with the CPU used by the node and by the client processes over
that phase (100% = one core; the machine's core count is printed), which says which side was
saturated, and how long the node's threads waited for a CPU (/proc schedstat: other processes
on the machine; large values mean noisy figures). With `--postgres-dsn`, a scratch database is
created on that server for the run and dropped afterwards (the DSN's database is used only to
CREATE and DROP it). The latency phase also prints the
AppendEvents calls' own latency, which the delivery latency cannot be below. `--py-spy DIR` records the node with py-spy (raw format) during each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc

from bench._common import Timer, count_records, fresh_postgres, node_process, report
from bench.streams import preload
from exesdb.v1 import (
    stores_pb2,
    stores_pb2_grpc,
    streams_pb2,
    streams_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
    types_pb2,
)

BODY = b'{"temperature":21.5,"humidity":48,"greenhouse":"gh-1","operator":"John"}'
SUBSCRIBE = "/exesdb.v1.Subscriptions/Subscribe"
_EVENTS_TAG = 0x12  # SubscribeResponse.events (field 2, length-delimited)
_CAUGHT_UP_TAG = 0x1A  # SubscribeResponse.caught_up (field 3)
_TICK = os.sysconf("SC_CLK_TCK")


def batch(n: int) -> list[types_pb2.NewEvent]:
    return [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="temperature_measured:v1", data=BODY) for _ in range(n)]


def count_events(message: bytes) -> int:
    """Records in a serialized SubscribeResponse{events: EventBatch{events: [...]}} (0 for a
    control message)."""
    if not message or message[0] != _EVENTS_TAG:
        return 0
    i = 1
    while message[i] & 0x80:  # the EventBatch's length
        i += 1
    return count_records(message, i + 1)


def subscribe_request(*, origin: int, max_batch: int = 1000) -> bytes:
    return subscriptions_pb2.SubscribeRequest(
        selector="$all", max_batch=max_batch, start_from=subscriptions_pb2.StartFrom(origin=origin)
    ).SerializeToString()


def raw_subscribe(channel: grpc.aio.Channel, request: bytes) -> grpc.aio.UnaryStreamCall:
    """Subscribe with neither request nor response (de)serialized: bytes in, bytes out."""
    return channel.unary_stream(SUBSCRIBE, request_serializer=None, response_deserializer=None)(request)


# -- CPU accounting (/proc/<pid>/stat: utime + stime of every thread) -----------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_queue_wait(pid: int) -> dict[str, int]:
    """Nanoseconds each thread of `pid` has spent runnable but waiting for a CPU
    (/proc/<pid>/task/<tid>/schedstat, second field)."""
    waits = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                waits[tid] = int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return waits


class CpuMeter:
    """CPU used by the node and the client processes over a phase, and how long the node's
    threads waited for a CPU (other processes on the machine: the figures are then noisy)."""

    def __init__(self, node_pid: int, client_pids: list[int]) -> None:
        self.node_pid = node_pid
        self.pids = {"node": [node_pid], "client": client_pids}

    def __enter__(self) -> CpuMeter:
        self.wall = time.perf_counter()
        self.before = {k: sum(cpu_seconds(p) for p in v) for k, v in self.pids.items()}
        self.waits = run_queue_wait(self.node_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.wall
        self.share = {k: (sum(cpu_seconds(p) for p in v) - self.before[k]) / wall for k, v in self.pids.items()}
        after = run_queue_wait(self.node_pid)
        self.node_wait = sum(w - self.waits.get(tid, 0) for tid, w in after.items()) / 1e9 / wall

    def line(self) -> str:
        node, client = self.share["node"], self.share["client"]
        nprocs = len(self.pids["client"])
        return (
            f"node {node:.0%} of a core, client ({nprocs} process{'es' if nprocs > 1 else ''}) {client:.0%};"
            f" node threads waited for a CPU {self.node_wait * 1000:.0f} ms per s"
        )


class Profiler:
    """py-spy on the node during a phase (when --py-spy DIR was given)."""

    def __init__(self, directory: str | None, pid: int) -> None:
        self.directory, self.pid = directory, pid
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, name: str, seconds: float) -> None:
        if self.directory is None:
            return
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).parent / "py-spy"
        out = Path(self.directory) / f"{name}.txt"
        self.proc = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(self.pid), "-d", str(max(1, round(seconds))), "-f", "raw", "-o", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.wait()
            self.proc = None


# -- appenders --------------------------------------------------------------------------------


async def append_for(stub, *, seconds: float, events_per_append: int, tasks: int, rate: float, prefix: str) -> tuple[int, float]:
    """Appends from `tasks` tasks for `seconds`, at `rate` events/s in all (0: unpaced).
    Returns (events appended, elapsed)."""
    appended = [0]
    deadline = time.perf_counter() + seconds
    interval = tasks * events_per_append / rate if rate else 0.0

    async def worker(n: int) -> None:
        i = 0
        next_at = time.perf_counter() + n * interval / tasks
        while time.perf_counter() < deadline:
            if interval:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
            request = streams_pb2.AppendEventsRequest(stream_id=f"{prefix}-{n}-{i % 50}", events=batch(events_per_append))
            await stub.AppendEvents(request)
            appended[0] += events_per_append
            i += 1

    with Timer() as t:
        await asyncio.gather(*(worker(n) for n in range(tasks)))
    return appended[0], t.seconds




# -- 1. catch-up ------------------------------------------------------------------------------


async def catch_up(channel: grpc.aio.Channel) -> tuple[int, float]:
    count = 0
    with Timer() as t:
        call = raw_subscribe(channel, subscribe_request(origin=subscriptions_pb2.StartFrom.ORIGIN_BEGINNING))
        async for message in call:
            if message[0] == _CAUGHT_UP_TAG:
                break
            count += count_events(message)
        call.cancel()
    return count, t.seconds


# -- 2. live fan-out: subscriber groups, in this process or in child processes ----------------


class SubscriberGroup:
    """`n` raw live subscribers on `$all` from ORIGIN_NOW, each counting what it receives."""

    def __init__(self, address: str, n: int) -> None:
        self.address, self.n = address, n
        self.counts = [0] * n
        self.done_at = [0.0] * n
        self.target = -1
        self.all_done = asyncio.Event()

    async def start(self) -> None:
        # One channel (one HTTP/2 connection) per 25 subscribers, as several clients would.
        self.channels = [grpc.aio.insecure_channel(self.address) for _ in range(-(-self.n // 25))]
        ready = [asyncio.get_running_loop().create_future() for _ in range(self.n)]
        request = subscribe_request(origin=subscriptions_pb2.StartFrom.ORIGIN_NOW)
        self.calls = [raw_subscribe(self.channels[i % len(self.channels)], request) for i in range(self.n)]
        self.tasks = [asyncio.create_task(self._read(i, ready[i])) for i in range(self.n)]
        await asyncio.gather(*ready)

    async def _read(self, i: int, ready: asyncio.Future[None]) -> None:
        counts, done_at = self.counts, self.done_at
        try:
            async for message in self.calls[i]:
                if message[0] == _EVENTS_TAG:
                    counts[i] += count_events(message)
                    if counts[i] >= self.target >= 0 and not done_at[i]:
                        done_at[i] = time.perf_counter()
                        if all(done_at):
                            self.all_done.set()
                elif message[0] == _CAUGHT_UP_TAG and not ready.done():
                    ready.set_result(None)
        except asyncio.CancelledError:
            pass
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                raise

    async def drain(self, target: int, timeout_s: float) -> tuple[int, float]:
        """Waits until every subscriber has `target` events (or timeout); (total, last done)."""
        self.target = target
        for i, c in enumerate(self.counts):
            if c >= target and not self.done_at[i]:
                self.done_at[i] = time.perf_counter()
        if all(self.done_at):
            self.all_done.set()
        try:
            await asyncio.wait_for(self.all_done.wait(), timeout_s)
        except TimeoutError:
            pass
        return sum(self.counts), max(self.done_at) if all(self.done_at) else float("nan")

    async def stop(self) -> None:
        for call in self.calls:
            call.cancel()
        await asyncio.gather(*self.tasks)
        for channel in self.channels:
            await channel.close()


def _child(address: str, n: int, conn) -> None:  # noqa: ANN001 - a multiprocessing Connection
    """A client process: commands from the parent over `conn`: total, drain, stop."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        group = SubscriberGroup(address, n)
        await group.start()
        conn.send("ready")
        while True:
            command, *args = await loop.run_in_executor(None, conn.recv)
            if command == "total":
                conn.send(sum(group.counts))
            elif command == "drain":
                conn.send(await group.drain(*args))
            elif command == "stop":
                await group.stop()
                conn.send("stopped")
                return

    asyncio.run(main())


class ChildGroups:
    """The same interface as SubscriberGroup over `procs` client processes."""

    def __init__(self, address: str, n: int, procs: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for k in range(procs):
            parent, child = ctx.Pipe()
            share = n // procs + (1 if k < n % procs else 0)
            proc = ctx.Process(target=_child, args=(address, share, child), daemon=True)
            self.pipes.append(parent)
            self.procs.append(proc)

    async def _ask(self, *command: object) -> list[object]:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            pipe.send(command)
        return [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for proc in self.procs:
            proc.start()
        for pipe in self.pipes:
            assert await loop.run_in_executor(None, pipe.recv) == "ready"

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    async def total(self) -> int:
        return sum(await self._ask("total"))

    async def drain(self, target: int, timeout_s: float) -> tuple[int, float]:
        answers = await self._ask("drain", target, timeout_s)
        return sum(a[0] for a in answers), max(a[1] for a in answers)

    async def stop(self) -> None:
        await self._ask("stop")
        for proc in self.procs:
            proc.join(5)


async def live_fanout(node, stub, args: argparse.Namespace, profiler: Profiler) -> None:
    if args.client_procs:
        group: SubscriberGroup | ChildGroups = ChildGroups(node.address, args.subscribers, args.client_procs)
    else:
        group = SubscriberGroup(node.address, args.subscribers)
    await group.start()
    pids = group.pids if isinstance(group, ChildGroups) else [os.getpid()]
    how = f"{args.client_procs} client processes" if args.client_procs else "in the benchmark process"
    fell_behind = sum("fell behind" in line for line in node.log)
    profiler.start("live", args.seconds)
    with CpuMeter(node.proc.pid, pids + ([os.getpid()] if args.client_procs else [])) as cpu:
        t0 = time.perf_counter()
        appended, seconds = await append_for(
            stub, seconds=args.seconds, events_per_append=args.live_batch, tasks=args.live_tasks, rate=args.live_rate, prefix="live"
        )
        in_window = await group.total() if isinstance(group, ChildGroups) else sum(group.counts)
    profiler.stop()
    total, last = await group.drain(appended, timeout_s=60)
    await group.stop()
    fell_behind = sum("fell behind" in line for line in node.log) - fell_behind
    offered = f"{args.live_rate:,.0f} events/s offered" if args.live_rate else "unpaced"
    report(f"live $all to {args.subscribers} subscribers: events/s received, all", in_window / seconds, "events/s", 100_000)
    print(
        f"  info: appended {appended:,} events in {seconds:.1f} s ({appended / seconds:,.0f}/s, {offered}, {args.live_batch} per append,"
        f" {args.live_tasks} tasks); raw-bytes subscribers {how}; {fell_behind} moves back to catch-up (queue full)",
        flush=True,
    )
    print(f"  info: cpu during appends: {cpu.line()}; {os.cpu_count()} cores", flush=True)
    expected = appended * args.subscribers
    if total >= expected:
        print(f"  info: drain: all {expected:,} deliveries done {last - t0:.2f} s after the first append"
              f" ({expected / (last - t0):,.0f} events/s aggregate)", flush=True)
    else:
        print(f"  info: drain: only {total:,} of {expected:,} deliveries after 60 s", flush=True)


# -- 3. latency ---------------------------------------------------------------------------------


async def latency(channel: grpc.aio.Channel, stub, rate: float, seconds: float) -> tuple[list[float], list[float], list[float], int]:
    """Seconds per event from just before its AppendEvents call to its arrival, seconds per
    AppendEvents call, seconds from the append's response to the event's arrival (-inf: it
    arrived first), and how many events never arrived."""
    sent: dict[str, float] = {}
    arrived: list[float] = []
    acked: list[float] = []
    ack_at: dict[str, float] = {}
    after_ack: list[float] = []
    finished, all_in = asyncio.Event(), asyncio.Event()
    ready = asyncio.get_running_loop().create_future()
    call = channel.unary_stream(
        SUBSCRIBE,
        request_serializer=subscriptions_pb2.SubscribeRequest.SerializeToString,
        response_deserializer=subscriptions_pb2.SubscribeResponse.FromString,
    )(subscriptions_pb2.SubscribeRequest(selector="$all", max_batch=1000, start_from=subscriptions_pb2.StartFrom(origin=subscriptions_pb2.StartFrom.ORIGIN_NOW)))

    async def read() -> None:
        try:
            async for response in call:
                now = time.perf_counter()
                kind = response.WhichOneof("message")
                if kind == "caught_up" and not ready.done():
                    ready.set_result(None)
                elif kind == "events":
                    for e in response.events.events:
                        t = sent.pop(e.event_id, None)
                        if t is not None:
                            arrived.append(now - t)
                            t_ack = ack_at.pop(e.event_id, None)
                            after_ack.append(now - t_ack if t_ack is not None else float("-inf"))
                    if finished.is_set() and not sent:
                        all_in.set()
        except asyncio.CancelledError:
            pass

    reader = asyncio.create_task(read())
    await ready

    async def one(i: int) -> None:
        event_id = str(uuid.uuid4())
        request = streams_pb2.AppendEventsRequest(
            stream_id=f"latency-{i % 10}",
            events=[types_pb2.NewEvent(event_id=event_id, event_type="temperature_measured:v1", data=BODY)],
        )
        sent[event_id] = t0 = time.perf_counter()
        await stub.AppendEvents(request)
        now = time.perf_counter()
        acked.append(now - t0)
        if event_id in sent:
            ack_at[event_id] = now

    appends = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        appends.append(asyncio.create_task(one(i)))
    await asyncio.gather(*appends)
    finished.set()
    if sent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), 5)
    call.cancel()
    await reader
    return arrived, acked, after_ack, len(sent)


def percentile(seconds: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `seconds`, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, max(0, round(len(ordered) * p / 100) - 1))] * 1000


# -- main -----------------------------------------------------------------------------------------


# -- 4. persistent --------------------------------------------------------------------------------


async def persistent(channel: grpc.aio.Channel, events: int) -> tuple[int, float, int]:
    """(events acked, seconds, AckEvent calls) for one acking consumer of a fresh subscription."""
    store = f"persistent-{uuid.uuid4().hex[:8]}"
    await stores_pb2_grpc.StoresStub(channel).CreateStore(stores_pb2.CreateStoreRequest(store_id=store))
    stub = streams_pb2_grpc.StreamsStub(channel)
    for i in range(0, events, 1000):
        request = streams_pb2.AppendEventsRequest(store=store, stream_id=f"p-{i % 10}", events=batch(min(1000, events - i)))
        await stub.AppendEvents(request)
    subs = subscriptions_pb2_grpc.SubscriptionsStub(channel)
    await subs.SaveSubscription(
        subscriptions_pb2.SaveSubscriptionRequest(
            store=store, name="bench", selector="$all", settings=subscriptions_pb2.SubscriptionSettings(max_in_flight=1000)
        )
    )
    acked, calls = set(), 0
    with Timer() as t:
        call = subs.Subscribe(subscriptions_pb2.SubscribeRequest(store=store, subscription_name="bench", max_batch=100))
        async for message in call:
            if message.WhichOneof("message") != "events":
                continue
            positions = [e.position for e in message.events.events]
            await subs.AckEvent(subscriptions_pb2.AckEventRequest(store=store, subscription_name="bench", positions=positions))
            calls += 1
            acked.update(positions)
            if len(acked) >= events:
                break
        call.cancel()
    return len(acked), t.seconds, calls


async def persistent_phase(channel: grpc.aio.Channel, args: argparse.Namespace, node, profiler: Profiler) -> None:
    profiler.start("persistent", 5)
    with CpuMeter(node.proc.pid, [os.getpid()]) as cpu:
        count, seconds, calls = await persistent(channel, args.persistent_events)
    profiler.stop()
    report("persistent $all, one consumer acking each message: events/s", count / seconds, "events/s")
    print(f"  info: {count:,} events in {seconds:.2f} s, {calls:,} AckEvent calls; cpu: {cpu.line()}", flush=True)


async def main(args: argparse.Namespace) -> None:
    if args.postgres_dsn:
        async with fresh_postgres(args.postgres_dsn) as dsn:
            await run(args, ("--postgres-dsn", dsn))
    else:
        await run(args, ("--synchronous", args.synchronous))


async def run(args: argparse.Namespace, extra: tuple[str, ...]) -> None:
    phases = set(args.phases.split(","))
    async with node_process(*extra) as node, grpc.aio.insecure_channel(node.address) as channel:
        stub = streams_pb2_grpc.StreamsStub(channel)
        profiler = Profiler(args.py_spy, node.proc.pid)
        await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))

        if "catchup" in phases:
            await catch_up_phase(channel, stub, args, node, profiler)
        if "live" in phases:
            await live_fanout(node, stub, args, profiler)
        if "latency" in phases:
            await latency_phase(channel, stub, args, node, profiler)
        if "persistent" in phases:
            await persistent_phase(channel, args, node, profiler)


async def catch_up_phase(channel: grpc.aio.Channel, stub, args: argparse.Namespace, node, profiler: Profiler) -> None:
    with Timer() as t:
        await preload(stub, args.preload)
    print(f"  info: preloaded {args.preload:,} events in {t.seconds:.1f} s", flush=True)
    await catch_up(channel)  # warm the page cache and the code paths once
    profiler.start("catchup", 3)
    with CpuMeter(node.proc.pid, [os.getpid()]) as cpu:
        count, seconds = await catch_up(channel)
    profiler.stop()
    report(f"catch-up $all to one subscriber ({count:,} events): events/s", count / seconds, "events/s", 100_000)
    print(f"  info: {seconds:.2f} s; max_batch 1000, raw-bytes client; cpu: {cpu.line()}", flush=True)



async def latency_phase(channel: grpc.aio.Channel, stub, args: argparse.Namespace, node, profiler: Profiler) -> None:
    profiler.start("latency", args.latency_seconds)
    with CpuMeter(node.proc.pid, [os.getpid()]) as cpu:
        arrived, acked, after_ack, lost = await latency(channel, stub, args.latency_rate, args.latency_seconds)
    profiler.stop()
    p50, p99 = percentile(arrived, 50), percentile(arrived, 99)
    rate = f"{args.latency_rate:.0f} single-event appends/s"
    report(f"append->delivery latency, {rate}: p50 ms", p50, "ms", 5, higher_is_better=False)
    report(f"append->delivery latency, {rate}: p99 ms", p99, "ms", 25, higher_is_better=False)
    print(
        f"  info: {len(arrived):,} events timed, {lost} not delivered within 5 s; max {max(arrived) * 1000:.1f} ms;"
        f" p50 {p50:.2f} ms, p99 {p99:.2f} ms; cpu: {cpu.line()}",
        flush=True,
    )
    print(
        f"  info: the AppendEvents calls themselves (commit + fsync + response): p50 {percentile(acked, 50):.2f} ms,"
        f" p99 {percentile(acked, 99):.2f} ms, max {max(acked) * 1000:.1f} ms; arrival after the append's"
        f" response: p50 {percentile(after_ack, 50):.2f} ms, p99 {percentile(after_ack, 99):.2f} ms"
        f" ({sum(x == float('-inf') for x in after_ack)} arrived before it)",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="run the node on PostgreSQL instead of SQLite")
    parser.add_argument("--synchronous", default="FULL", choices=("FULL", "NORMAL", "EXTRA"), help="SQLite durability of the node")
    parser.add_argument("--phases", default="catchup,live,latency,persistent", help="which of catchup,live,latency,persistent to run")
    parser.add_argument("--persistent-events", type=int, default=20_000, help="events for the persistent phase")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the live append phase")
    parser.add_argument("--preload", type=int, default=200_000, help="events in the store before the catch-up")
    parser.add_argument("--subscribers", type=int, default=100, help="live subscribers on $all")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes for the live subscribers (0: this one)")
    parser.add_argument("--live-batch", type=int, default=100, help="events per append in the live phase")
    parser.add_argument("--live-tasks", type=int, default=4, help="concurrent appenders in the live phase")
    parser.add_argument("--live-rate", type=float, default=0, help="events/s appended in the live phase (0: unpaced)")
    parser.add_argument("--latency-rate", type=float, default=200, help="single-event appends/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10, help="duration of the latency phase")
    parser.add_argument("--py-spy", default=None, metavar="DIR", help="record the node with py-spy (raw) into DIR per phase")
    asyncio.run(main(parser.parse_args()))
