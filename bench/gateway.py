"""What the gateway costs, how it hides a node's death, and how soon its health tells.

    python -m bench.gateway [--postgres-dsn DSN | --sqlite] [--seconds 5] [--preload 200000]
                            [--read-repeats 2] [--workers 1,2] [--failover-nodes 3]
                            [--failover-rate 100] [--py-spy DIR]

Every party is its own process: this client, the gateway (`gater gateway --nodes ...`) and
the node(s) (`gater node`), all on one machine whose cores they share (printed below; on 2
cores the gateway's CPU is taken from the node and the client, so "gateway/direct" measures
the whole cost of the extra hop, not only its latency). By default the nodes run on
PostgreSQL: a scratch database is created on the server of `--postgres-dsn` (default
postgresql:///gater_bench?host=/var/run/postgresql; its database is used only to CREATE and
DROP the scratch one) and dropped afterwards. `--sqlite`: one node on SQLite in a temporary
directory instead (no failover figure: SQLite nodes cannot share a store).

1. single-event appends at concurrency 32 (32 tasks, one channel, every event with an id),
   `--seconds` each, straight to the node and through the gateway: appends/s each and the
   ratio gateway/direct.
2. `$all` catch-up read: `--preload` events are appended (1000-event batches, 4 tasks),
   then ReadEvents(stream_id="$all") from the start, straight to the node and through the
   gateway, alternately, `--read-repeats` times each (the best of each is reported; the first
   read, unmeasured, warms caches). The client takes the responses as raw bytes and counts
   the events by walking the length prefixes of ReadEventsResponse.events (no protobuf parse).
3. the gateway with `--workers N` for each N of `--workers` other than 1 (N processes on one
   port, SO_REUSEPORT): figures 1 and 2 through it, against the same direct figures.
4. failover (PostgreSQL only): `--failover-nodes` nodes on the one database behind a fresh
   gateway; appends (one event each, with an event id, so the gateway may retry them) are
   started at a steady `--failover-rate` per second, each its own task; every 2 s (twice, at
   most all nodes but one) a 1000-event append (ids set) is started too, the gateway's
   Cluster.GetStatus says which member has calls in flight, and that node is sent SIGKILL
   while it serves the big append; 2 s after the last kill the appends stop. Per kill: the
   time from the kill to the first append that succeeds afterwards, when the big append
   answered (and whether the retry found it already committed), and the longest
   single-event append in flight at the kill or started in the second after it (the stall
   a client sees); over the whole phase: how many calls failed (the target is none).

5. health: a fresh gateway in front of one fresh node, a grpc.health.v1 Watch open on the
   gateway and no other traffic; the node is sent SIGKILL: the time until the Watch says
   NOT_SERVING (the target is 3 s: the gateway probes its members' health), then a node is
   started again on the same address: the time from its "serving" line to the Watch saying
   SERVING.

Each figure is followed by an `info:` line with the CPU each process used over that phase
(100% = one core). `--py-spy DIR` adds unmeasured phases in which the gateway is recorded with
py-spy (raw format) during appends and during a read; the busiest leaf frames are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench._common import (
    CpuMeter,
    GaterProcess,
    Timer,
    children,
    count_records,
    fresh_postgres,
    node_process,
    postgres_pids,
    report,
)
from bench.streams import appends, batch, preload
from exesdb.v1 import cluster_pb2, cluster_pb2_grpc, streams_pb2, streams_pb2_grpc, types_pb2

READ = "/exesdb.v1.Streams/ReadEvents"
DEFAULT_DSN = "postgresql:///gater_bench?host=/var/run/postgresql"
BODY = b'{"temperature":21.5,"humidity":48,"greenhouse":"gh-1","operator":"John"}'


# -- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def gateway_process(addresses: list[str], workers: int = 1):  # noqa: ANN201
    """`gater gateway --nodes ...` (with `--workers N`: N processes on one fixed port)."""
    listen = "127.0.0.1:0" if workers == 1 else f"127.0.0.1:{free_port()}"
    gw = GaterProcess("gateway", "--listen", listen, "--nodes", ",".join(addresses), "--workers", str(workers))
    await gw.start()
    try:
        async with asyncio.timeout(30):  # every worker serving, not only the first
            while sum("gateway serving" in line for line in gw.log) < workers:  # noqa: ASYNC110 - the log is a list
                await asyncio.sleep(0.05)
        yield gw
    finally:
        await gw.terminate()


def gateway_pids(gw: GaterProcess) -> list[int]:
    return [gw.proc.pid, *children(gw.proc.pid)]


# -- the client side --------------------------------------------------------------------------


def count_read_events(message: bytes) -> int:
    """Records in a serialized ReadEventsResponse (field 1, repeated)."""
    return count_records(message)


async def raw_read_all(channel: grpc.aio.Channel) -> tuple[int, float]:
    request = streams_pb2.ReadEventsRequest(stream_id="$all").SerializeToString()
    count = 0
    with Timer() as t:
        async for message in channel.unary_stream(READ, request_serializer=None, response_deserializer=None)(request):
            count += count_read_events(message)
    return count, t.seconds




# -- py-spy -----------------------------------------------------------------------------------


def py_spy(pids: list[int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    out.parent.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "py-spy"
    return [
        subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "-d", str(max(1, round(seconds))), "-f", "raw", "-o", f"{out}.{pid}.txt", "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def leaf_summary(directory: Path, pattern: str, top: int = 12) -> list[str]:
    """The `top` leaf frames over the samples of the files matching `pattern` (py-spy raw:
    "frame;...;leaf count")."""
    files = sorted(directory.glob(pattern))
    leaves: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for file in files:
        if not file.exists():
            continue
        for line in file.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            frames = stack.split(";")
            leaves[frames[-1]] += int(n)
            threads[frames[0]] += int(n)
            total += int(n)
    if not total:
        return ["  profile: no samples"]
    out = [f"  profile: {total} samples (100 per second per busy thread); by thread: "
           + ", ".join(f"{k} {v / total:.0%}" for k, v in threads.most_common(4))]
    out += [f"    {v / total:6.1%}  {k}" for k, v in leaves.most_common(top)]
    return out


# -- phases -----------------------------------------------------------------------------------


async def append_rate(stub, seconds: float) -> float:  # noqa: ANN001
    calls, _, elapsed = await appends(stub, events_per_append=1, concurrency=32, seconds=seconds)
    return calls / elapsed


async def best_reads(channels: dict[str, grpc.aio.Channel], repeats: int, meters) -> dict[str, tuple[int, float, str, list[float]]]:  # noqa: ANN001
    """Reads of $all, alternating between the channels; per channel the best (count,
    events/s, cpu line of that read) and every rate."""
    best: dict[str, tuple[int, float, str, list[float]]] = {}
    for _ in range(repeats):
        for name, channel in channels.items():
            with meters() as cpu:
                count, seconds = await raw_read_all(channel)
            rate = count / seconds
            rates = [*best.get(name, (0, 0.0, "", []))[3], rate]
            if name not in best or rate > best[name][1]:
                best[name] = (count, rate, cpu.line(), rates)
            else:
                best[name] = (*best[name][:3], rates)
    return best


def spread(rates: list[float]) -> str:
    return " / ".join(f"{r:,.0f}" for r in rates)


async def throughput(args: argparse.Namespace, node: GaterProcess, extra_note: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        direct = await stack.enter_async_context(grpc.aio.insecure_channel(node.address))
        direct_stub = streams_pb2_grpc.StreamsStub(direct)
        gw = await stack.enter_async_context(gateway_process([node.address]))
        via = await stack.enter_async_context(grpc.aio.insecure_channel(gw.address))
        via_stub = streams_pb2_grpc.StreamsStub(via)
        for stub in (direct_stub, via_stub):  # connect, warm the code paths
            await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))
        print(f"  info: {os.cpu_count()} cores, shared by this client, the gateway and the node{extra_note}", flush=True)

        def meters(g: GaterProcess = gw) -> CpuMeter:
            return CpuMeter(client=[os.getpid()], gateway=lambda: gateway_pids(g), node=[node.proc.pid], postgres=postgres_pids)

        # 1. appends
        rates = {}
        for name, stub in (("direct", direct_stub), ("gateway", via_stub)):
            with meters() as cpu:
                rates[name] = await append_rate(stub, args.seconds)
            report(f"single-event appends, concurrency 32, {name}: appends/s", rates[name], "appends/s")
            print(f"  info: {cpu.line()}", flush=True)
        report("single-event appends: gateway/direct, %", 100 * rates["gateway"] / rates["direct"], "%", 60)

        # 2. $all read
        with Timer() as t:
            await preload(direct_stub, args.preload)
        print(f"  info: preloaded to {args.preload:,} events in {t.seconds:.1f} s", flush=True)
        await raw_read_all(direct)  # warm caches once
        reads = await best_reads({"direct": direct, "gateway": via}, args.read_repeats, meters)
        for name, (count, rate, line, every) in reads.items():
            report(f"read $all from the start ({count:,} events), {name}: events/s", rate, "events/s")
            print(f"  info: best of {spread(every)} events/s; {line}", flush=True)
        report("read $all: gateway/direct, %", 100 * reads["gateway"][1] / reads["direct"][1], "%", 80)

        if args.py_spy:
            await profile(args, gw, direct_stub, via_stub, via, "workers1")

        # 3. more gateway workers, against the same direct figures
        for workers in args.workers:
            if workers == 1:
                continue
            async with gateway_process([node.address], workers) as gw_n, grpc.aio.insecure_channel(gw_n.address) as chan:
                stub_n = streams_pb2_grpc.StreamsStub(chan)
                await stub_n.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))
                with meters(gw_n) as cpu:
                    rate = await append_rate(stub_n, args.seconds)
                report(f"single-event appends, concurrency 32, gateway --workers {workers}: appends/s", rate, "appends/s")
                print(f"  info: {100 * rate / rates['direct']:.0f}% of direct; {cpu.line()}", flush=True)
                # One channel: all of one client's calls ride one HTTP/2 connection, which the
                # kernel gives to one worker; a second channel (own connection) may get the other.
                chans = [chan] + [await stack.enter_async_context(grpc.aio.insecure_channel(gw_n.address, options=[("grpc.use_local_subchannel_pool", 1)])) for _ in range(workers - 1)]
                multi = [streams_pb2_grpc.StreamsStub(c) for c in chans]
                with meters(gw_n) as cpu:
                    calls, _, elapsed = await appends(multi, events_per_append=1, concurrency=32, seconds=args.seconds)
                report(f"  same, the 32 tasks over {workers} channels: appends/s", calls / elapsed, "appends/s")
                print(f"  info: {100 * calls / elapsed / rates['direct']:.0f}% of direct; {cpu.line()}", flush=True)
                reads_n = await best_reads({"gateway": chan}, args.read_repeats, lambda: meters(gw_n))
                count, rate, line, every = reads_n["gateway"]
                report(f"read $all ({count:,} events), gateway --workers {workers}: events/s", rate, "events/s")
                print(f"  info: {100 * rate / reads['direct'][1]:.0f}% of direct; best of {spread(every)}; {line}", flush=True)


async def profile(args: argparse.Namespace, gw: GaterProcess, direct_stub, via_stub, via: grpc.aio.Channel, tag: str) -> None:  # noqa: ANN001
    """Unmeasured: py-spy on the gateway during appends, then during reads."""
    out = Path(args.py_spy)
    pids = gateway_pids(gw)
    spies = py_spy(pids, 5, out / f"{tag}-appends")
    await append_rate(via_stub, 5.5)
    for s in spies:
        s.wait()
    print(f"  info: py-spy of the gateway during single-event appends ({out}/{tag}-appends.*.txt):", flush=True)
    for line in leaf_summary(out, f"{tag}-appends.*.txt"):
        print(line, flush=True)
    spies = py_spy(pids, 3, out / f"{tag}-read")
    deadline = time.perf_counter() + 3.5
    while time.perf_counter() < deadline:
        await raw_read_all(via)
    for s in spies:
        s.wait()
    print(f"  info: py-spy of the gateway during $all reads ({out}/{tag}-read.*.txt):", flush=True)
    for line in leaf_summary(out, f"{tag}-read.*.txt"):
        print(line, flush=True)


async def failover(args: argparse.Namespace, dsn: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        nodes = list(await asyncio.gather(*(stack.enter_async_context(node_process("--postgres-dsn", dsn)) for _ in range(args.failover_nodes))))
        gw = await stack.enter_async_context(gateway_process([n.address for n in nodes]))
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(gw.address))
        stub = streams_pb2_grpc.StreamsStub(channel)
        for i in range(3 * len(nodes)):  # every node has served a call: all channels connected
            await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"failover-warm-{i}", events=batch(1)))

        calls: list[tuple[float, float, bool]] = []  # (started, ended, ok)
        errors: collections.Counter[str] = collections.Counter()

        async def one(i: int) -> None:
            request = streams_pb2.AppendEventsRequest(
                stream_id=f"failover-{i % 20}",
                events=[types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="temperature_measured:v1", data=BODY)],
            )
            started = time.perf_counter()
            try:
                await stub.AppendEvents(request, timeout=10)
                calls.append((started, time.perf_counter(), True))
            except grpc.aio.AioRpcError as e:
                calls.append((started, time.perf_counter(), False))
                errors[f"{e.code().name}: {e.details()}"] += 1

        kills: list[tuple[float, GaterProcess, float, bool]] = []  # (when, node, its append's ms, duplicate)
        cluster = cluster_pb2_grpc.ClusterStub(channel)
        by_address = {n.address: n for n in nodes}

        async def kill_one() -> None:
            """SIGKILL the node that serves an append in flight (1000 events, ids set: the
            gateway may resend it), found by the gateway's own in-flight count per member."""
            alive = {a: n for a, n in by_address.items() if n.proc.returncode is None and n not in [k[1] for k in kills]}
            big = asyncio.ensure_future(stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"failover-big-{len(kills)}", events=batch(1000)), timeout=10))
            await asyncio.sleep(0.002)
            members = (await cluster.GetStatus(cluster_pb2.GetStatusRequest())).members
            busy = sorted((m for m in members if m.address in alive), key=lambda m: -m.in_flight)
            victim = alive[busy[0].address] if busy else next(iter(alive.values()))
            t = time.perf_counter()
            os.kill(victim.proc.pid, signal.SIGKILL)
            try:
                response = await big
                kills.append((t, victim, (time.perf_counter() - t) * 1000, response.duplicate))
            except grpc.aio.AioRpcError as e:
                kills.append((t, victim, float("nan"), False))
                calls.append((t, time.perf_counter(), False))
                errors[f"the in-flight 1000-event append: {e.code().name}: {e.details()}"] += 1

        async def killer() -> None:
            for _ in range(min(2, len(nodes) - 1)):
                await asyncio.sleep(2)
                await kill_one()

        tasks = []
        kill_task = asyncio.create_task(killer())
        start = time.perf_counter()
        n = int(args.failover_rate * (2 * (min(2, len(nodes) - 1)) + 2))
        for i in range(n):
            delay = start + i / args.failover_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks, kill_task)

        failed = sum(not ok for _, _, ok in calls)
        before = sorted(e - s for s, e, ok in calls if ok and e < kills[0][0]) if kills else []
        p99 = before[min(len(before) - 1, round(len(before) * 0.99) - 1)] * 1000 if before else float("nan")
        print(
            f"  info: {len(nodes)} nodes on one PostgreSQL database behind one gateway; {len(calls)} single-event appends"
            f" started at {args.failover_rate:.0f}/s (each its own task, timeout 10 s); before the first kill: p50"
            f" {before[len(before) // 2] * 1000:.1f} ms, p99 {p99:.1f} ms per append",
            flush=True,
        )
        for k, (t_kill, victim, big_ms, duplicate) in enumerate(kills, 1):
            after = [e for s, e, ok in calls if ok and e > t_kill]
            first = (min(after) - t_kill) * 1000 if after else float("nan")
            hit = [(s, e, ok) for s, e, ok in calls if s <= t_kill < e or t_kill <= s < t_kill + 1]
            worst = max((e - s for s, e, _ in hit), default=float("nan")) * 1000
            report(f"kill -9 #{k} -> first successful append via gateway: ms", first, "ms")
            print(
                f"  info: node {victim.address} killed ({len(nodes) - k + 1} alive before) while serving a 1000-event append,"
                f" which answered {big_ms:.1f} ms after the kill ({'duplicate: the node had committed it' if duplicate else 'written after the kill'});"
                f" {sum(s <= t_kill for s, _, _ in hit)} single-event appends in flight at the kill; longest single-event append"
                f" in flight or started within 1 s after: {worst:.1f} ms; appends start every {1000 / args.failover_rate:.0f} ms",
                flush=True,
            )
        report("failover: client calls that failed", failed, "calls", 0, higher_is_better=False)
        if errors:
            print("  info: errors: " + "; ".join(f"{v}x {k}" for k, v in errors.most_common(5)), flush=True)
        retried = sum("trying another" in line for line in gw.log)
        print(f"  info: the gateway logged {retried} calls retried on another node", flush=True)


async def health(extra: tuple[str, ...]) -> None:
    """Phase 5: how soon the gateway's own health follows its only node, with no traffic."""
    async with contextlib.AsyncExitStack() as stack:
        node = await stack.enter_async_context(node_process(*extra))
        gw = await stack.enter_async_context(gateway_process([node.address]))
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(gw.address))
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        stack.callback(watch.cancel)
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        t = time.perf_counter()
        os.kill(node.proc.pid, signal.SIGKILL)
        while (await watch.read()).status != health_pb2.HealthCheckResponse.NOT_SERVING:
            pass
        report("kill -9 of the only node -> gateway NOT_SERVING, no traffic: ms", (time.perf_counter() - t) * 1000, "ms", 3000, higher_is_better=False)
        await node.proc.wait()
        again = GaterProcess("node", "--listen", node.address, *node.args[3:])
        await again.start()
        stack.push_async_callback(again.terminate)
        t = time.perf_counter()
        while (await watch.read()).status != health_pb2.HealthCheckResponse.SERVING:
            pass
        report("node serving again -> gateway SERVING: ms", (time.perf_counter() - t) * 1000, "ms")


async def main(args: argparse.Namespace) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if args.sqlite:
            node = await stack.enter_async_context(node_process())
            await throughput(args, node, " (node on SQLite)")
            print("  info: failover skipped: it needs several nodes on one PostgreSQL database (run without --sqlite)", flush=True)
            await health(())
            return
        dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
        node = await stack.enter_async_context(node_process("--postgres-dsn", dsn))
        await throughput(args, node, ", and by PostgreSQL")
        await failover(args, dsn)
        await health(("--postgres-dsn", dsn))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument("--postgres-dsn", default=DEFAULT_DSN, help="PostgreSQL server to create the scratch database on")
    backend.add_argument("--sqlite", action="store_true", help="one node on SQLite instead (no failover figure)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--preload", type=int, default=200_000, help="events in the store before the reads")
    parser.add_argument("--read-repeats", type=int, default=2, help="measured reads of $all per path (best reported)")
    parser.add_argument("--workers", default="1,2", help="gateway --workers values to measure (1 is always measured)")
    parser.add_argument("--failover-nodes", type=int, default=3, help="nodes behind the gateway in the failover phase (>= 2)")
    parser.add_argument("--failover-rate", type=float, default=100, help="appends/s started in the failover phase")
    parser.add_argument("--py-spy", default=None, metavar="DIR", help="profile the gateway (unmeasured extra phases) into DIR")
    arguments = parser.parse_args()
    arguments.workers = [int(w) for w in arguments.workers.split(",") if w]
    if arguments.failover_nodes < 2:
        parser.error("--failover-nodes must be at least 2")
    asyncio.run(main(arguments))
