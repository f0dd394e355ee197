"""What TLS costs: appends/s straight to a node and through a gateway, plaintext beside TLS.

    python -m bench.tls [--postgres-dsn DSN] [--seconds 5] [--repeats 2]
                        [--modes plaintext,tls,mtls]

Every party is its own process (this client, `gater gateway`, `gater node`) on one machine
whose cores they share, as in bench.gateway. For each mode a fresh node and a gateway in
front of it are started from the command line with certificates `gater certs` made:

- plaintext: no TLS anywhere;
- tls: the node and the gateway serve TLS (`--tls-cert/--tls-key`), the gateway dials the
  node over TLS (`--upstream-ca`), the client trusts the CA;
- mtls: as tls, and the node requires client certificates from the CA (`--tls-client-ca`):
  the gateway and the direct client present theirs.

Then single-event appends at concurrency 32 (one channel, `--seconds` each), straight to the
node and through the gateway, alternately `--repeats` times (the best of each is reported):
appends/s each and the ratio gateway/direct, per mode. The node runs on SQLite by default
(`--postgres-dsn DSN`: a scratch database on that server instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc

from bench._common import (
    CpuMeter,
    GaterProcess,
    children,
    fresh_postgres,
    node_process,
    postgres_pids,
    report,
)
from bench.streams import appends, batch
from exesdb.v1 import streams_pb2, streams_pb2_grpc

MODES = ("plaintext", "tls", "mtls")


def make_certs(folder: Path) -> None:
    gater = Path(sys.executable).parent / "gater"
    names = [a for n in ("node", "gateway", "client") for a in ("--name", n)]
    subprocess.run([str(gater), "certs", str(folder), *names], check=True, capture_output=True)


def server_flags(pki: Path, mode: str, role: str) -> list[str]:
    if mode == "plaintext":
        return []
    flags = ["--tls-cert", str(pki / f"{role}.crt"), "--tls-key", str(pki / f"{role}.key")]
    if role == "node" and mode == "mtls":
        flags += ["--tls-client-ca", str(pki / "ca.crt")]
    if role == "gateway":
        flags += ["--upstream-ca", str(pki / "ca.crt")]  # its --tls-cert is its client certificate
    return flags


def channel(address: str, pki: Path, mode: str) -> grpc.aio.Channel:
    if mode == "plaintext":
        return grpc.aio.insecure_channel(address)
    client = mode == "mtls"
    credentials = grpc.ssl_channel_credentials(
        (pki / "ca.crt").read_bytes(),
        (pki / "client.key").read_bytes() if client else None,
        (pki / "client.crt").read_bytes() if client else None,
    )
    return grpc.aio.secure_channel(address, credentials)


async def measure(args: argparse.Namespace, pki: Path, mode: str, node_extra: tuple[str, ...]) -> tuple[float, float]:
    async with contextlib.AsyncExitStack() as stack:
        node = await stack.enter_async_context(node_process(*node_extra, *server_flags(pki, mode, "node")))
        gw = GaterProcess("gateway", "--listen", "127.0.0.1:0", "--nodes", node.address, *server_flags(pki, mode, "gateway"))
        await gw.start()
        stack.push_async_callback(gw.terminate)
        stubs = {}
        for name, address in (("direct", node.address), ("gateway", gw.address)):
            chan = await stack.enter_async_context(channel(address, pki, mode))
            stubs[name] = streams_pb2_grpc.StreamsStub(chan)
            # Connect and warm up; through the gateway, wait until it has a healthy node.
            await stubs[name].AppendEvents(streams_pb2.AppendEventsRequest(stream_id="warmup", events=batch(10)),
                                           wait_for_ready=True, timeout=30)  # fmt: skip
        best = {"direct": 0.0, "gateway": 0.0}
        cpu_lines = {}
        for _ in range(args.repeats):
            for name, stub in stubs.items():
                meter = CpuMeter(client=[os.getpid()], gateway=lambda: [gw.proc.pid, *children(gw.proc.pid)],
                                 node=[node.proc.pid], postgres=postgres_pids)  # fmt: skip
                with meter:
                    calls, _, elapsed = await appends(stub, events_per_append=1, concurrency=32, seconds=args.seconds)
                if calls / elapsed > best[name]:
                    best[name], cpu_lines[name] = calls / elapsed, meter.line()
        for name in ("direct", "gateway"):
            report(f"single-event appends, concurrency 32, {mode}, {name}: appends/s", best[name], "appends/s")
            print(f"  info: {cpu_lines[name]}", flush=True)
        report(f"single-event appends, {mode}: gateway/direct, %", 100 * best["gateway"] / best["direct"], "%")
        return best["direct"], best["gateway"]


async def main(args: argparse.Namespace) -> None:
    print(f"  info: {os.cpu_count()} cores, shared by this client, the gateway and the node", flush=True)
    with tempfile.TemporaryDirectory(prefix="gater-bench-pki-") as folder:
        pki = Path(folder)
        make_certs(pki)
        async with contextlib.AsyncExitStack() as stack:
            node_extra: tuple[str, ...] = ()
            if args.postgres_dsn:
                dsn = await stack.enter_async_context(fresh_postgres(args.postgres_dsn))
                node_extra = ("--postgres-dsn", dsn)
            results = {mode: await measure(args, pki, mode, node_extra) for mode in args.modes}
        if "plaintext" in results:
            base_direct, base_gateway = results["plaintext"]
            for mode, (direct, gateway) in results.items():
                if mode != "plaintext":
                    report(f"{mode} / plaintext, direct, %", 100 * direct / base_direct, "%")
                    report(f"{mode} / plaintext, through the gateway, %", 100 * gateway / base_gateway, "%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None,
                        help="run the node on a scratch database on this PostgreSQL server (default: SQLite), "
                             "e.g. postgresql:///gater_bench?host=/var/run/postgresql")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each append phase")
    parser.add_argument("--repeats", type=int, default=2, help="measured phases per path and mode (best reported)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"which of {', '.join(MODES)}, comma-separated")
    arguments = parser.parse_args()
    arguments.modes = [m for m in arguments.modes.split(",") if m]
    if unknown := [m for m in arguments.modes if m not in MODES]:
        parser.error(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")
    asyncio.run(main(arguments))
