"""What metrics cost: the same node with `--metrics-listen` on and off (issue 12's target:
at most 5% fewer events/s on 100-event appends and on catch-up).

    python -m bench.metrics [--rounds 3] [--seconds 5] [--preload 100000] [--catch-ups 3] [--scrape-s 1]

The node is a separate process on SQLite in a temporary directory (bench._common). Each
round starts a node without metrics and one with `--metrics-listen` (the order alternates
between rounds, since this machine's speed drifts), and on each measures the catch-up of
`--preload` events to one subscriber (bench.subscriptions; after one warm-up, the median of
`--catch-ups`), then 100-event appends from 4 concurrent tasks for `--seconds`
(bench.streams). While metrics are on, /metrics is scraped every `--scrape-s` seconds
(Prometheus in the deployment files scrapes every 5 s), so the scrapes' own cost is counted.
Prints each run, then the median of each figure with metrics off and on and the difference,
in events/s and in the node's CPU time per event (/proc: user + system of the node process).

Both move by tens of percent from run to run when other processes share the machine's cores,
so a last part counts work instead of time: a node in this process, with metrics off and
on, runs the same 280 100-event appends (one at a time, so every run commits alike) and three catch-ups of 100,000 events
under cProfile, which counts the calls of gater's own functions and prometheus_client's (the
event loop's and grpc's vary with timing); the difference per append and per caught-up event
is what metrics add, whatever the machine does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import socket
import statistics
import tempfile
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from bench._common import cpu_seconds, node_process, report
from bench.streams import appends, batch, preload
from bench.subscriptions import catch_up
from exesdb.v1 import streams_pb2, streams_pb2_grpc
from gater.config import NodeConfig, ObservabilityConfig
from gater.node import NodeServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def scraping(port: int, every_s: float) -> AsyncIterator[list[int]]:
    """Scrapes http://127.0.0.1:port/metrics every `every_s` (in a thread); yields the list of
    scraped sizes, so the caller can tell the scrapes happened."""
    sizes: list[int] = []

    def get() -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return len(response.read())

    async def loop() -> None:
        while True:
            sizes.append(await asyncio.to_thread(get))
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield sizes
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def one_run(metrics: bool, args: argparse.Namespace) -> tuple[float, float, float, float]:
    """(append events/s, catch-up events/s, node CPU µs per appended event, per caught-up
    event) of one fresh node."""
    port = free_port()
    extra = ("--metrics-listen", f"127.0.0.1:{port}") if metrics else ()
    async with node_process(*extra) as node, grpc.aio.insecure_channel(node.address) as channel:
        stub = streams_pb2_grpc.StreamsStub(channel)
        await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)))
        async with contextlib.AsyncExitStack() as stack:
            sizes = await stack.enter_async_context(scraping(port, args.scrape_s)) if metrics else None
            await preload(stub, args.preload)  # catch-up first: the same store size in every run
            await catch_up(channel)  # warm the page cache and the code paths once
            measured = []
            for _ in range(args.catch_ups):
                cpu = cpu_seconds(node.proc.pid)
                count, seconds = await catch_up(channel)
                measured.append((count / seconds, (cpu_seconds(node.proc.pid) - cpu) / count * 1e6))
            catch_up_rate = statistics.median(rate for rate, _ in measured)
            catch_up_cpu = statistics.median(cpu for _, cpu in measured)
            cpu = cpu_seconds(node.proc.pid)
            _, events, seconds = await appends(stub, events_per_append=100, concurrency=4, seconds=args.seconds)
            append_cpu = (cpu_seconds(node.proc.pid) - cpu) / events * 1e6
            append_rate = events / seconds
            if sizes is not None and not sizes:
                raise SystemExit("metrics on, but /metrics was never scraped")
    label = "on " if metrics else "off"
    print(
        f"  metrics {label}: appends {append_rate:>9,.0f} events/s ({append_cpu:5.1f} µs node CPU/event)"
        f"   catch-up {catch_up_rate:>9,.0f} events/s ({catch_up_cpu:5.1f} µs node CPU/event)",
        flush=True,
    )
    return append_rate, catch_up_rate, append_cpu, catch_up_cpu


_GATER = str(Path(__file__).resolve().parent.parent / "gater")


def _calls(profile: cProfile.Profile) -> tuple[int, int]:
    """(calls of gater's own functions and prometheus_client's, every Python call): the first
    is what the node's code does per unit of work; the second also counts the event loop's
    and grpc's, which vary with timing."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    own = sum(
        ncalls
        for (filename, _, _), (_, ncalls, *_) in stats.items()
        if filename.startswith(_GATER) or "prometheus_client" in filename
    )
    return own, sum(ncalls for _, ncalls, *_ in stats.values())


async def call_counts(metrics: bool) -> tuple[float, float, float, float]:
    """Function calls (own, all) per 100-event append, then (own, all) per caught-up event,
    of a node in this process and its client."""
    observability = ObservabilityConfig(metrics_listen="127.0.0.1:0" if metrics else None)
    with tempfile.TemporaryDirectory(prefix="gater-bench-") as data:
        config = NodeConfig(listen="127.0.0.1:0", data_dir=Path(data), observability=observability)
        async with NodeServer(config) as node, grpc.aio.insecure_channel(node.address) as channel:
            stub = streams_pb2_grpc.StreamsStub(channel)
            requests = [streams_pb2.AppendEventsRequest(stream_id=f"s-{i % 50}", events=batch(100)) for i in range(300)]
            for request in requests[:20]:  # warm up
                await stub.AppendEvents(request)
            appending = cProfile.Profile()
            appending.enable()
            for request in requests[20:]:  # one at a time: group commits of one append each
                await stub.AppendEvents(request)
            appending.disable()
            await preload(stub, 100_000)
            await catch_up(channel)
            reading = cProfile.Profile()
            reading.enable()
            events = sum([(await catch_up(channel))[0] for _ in range(3)])
            reading.disable()
    (own_appending, all_appending), (own_reading, all_reading) = _calls(appending), _calls(reading)
    return own_appending / 280, all_appending / 280, own_reading / events, all_reading / events


async def main(args: argparse.Namespace) -> None:
    runs: dict[bool, list[tuple[float, float, float, float]]] = {False: [], True: []}
    for r in range(args.rounds):
        for metrics in (False, True) if r % 2 == 0 else (True, False):
            runs[metrics].append(await one_run(metrics, args))
    for i, figure in enumerate(("100-event appends, 4 concurrent", "catch-up of $all to one subscriber")):
        off = statistics.median(run[i] for run in runs[False])
        on = statistics.median(run[i] for run in runs[True])
        report(f"{figure}, metrics off: events/s", off, "events/s")
        report(f"{figure}, metrics on: events/s", on, "events/s")
        cpu_off = statistics.median(run[i + 2] for run in runs[False])
        cpu_on = statistics.median(run[i + 2] for run in runs[True])
        overhead = (off - on) / off * 100
        cpu_overhead = (cpu_on - cpu_off) / cpu_off * 100
        verdict = "met" if overhead <= 5 else "MISSED"
        print(
            f"{figure}: metrics cost {overhead:+.1f}% of events/s (target <= 5%: {verdict}); "
            f"node CPU per event {cpu_off:.1f} -> {cpu_on:.1f} µs ({cpu_overhead:+.1f}%)",
            flush=True,
        )
    off, on = await call_counts(False), await call_counts(True)
    for what, i in (("100-event append", 0), ("caught-up event", 2)):
        print(
            f"gater and prometheus_client function calls per {what}: {off[i]:,.2f} off, {on[i]:,.2f} on "
            f"({on[i] - off[i]:+,.2f}, {(on[i] - off[i]) / off[i] * 100:+.1f}%); all Python calls: "
            f"{off[i + 1]:,.2f} off, {on[i + 1]:,.2f} on",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="node pairs (off, on) to measure; medians are reported")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--preload", type=int, default=100_000, help="events in the store before the catch-up")
    parser.add_argument("--catch-ups", type=int, default=3, help="catch-ups per node (their median counts)")
    parser.add_argument("--scrape-s", type=float, default=1.0, help="seconds between scrapes while metrics are on")
    asyncio.run(main(parser.parse_args()))
