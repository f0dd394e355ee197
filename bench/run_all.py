"""Every benchmark, one after the other (what `make bench` runs).

    python -m bench.run_all [--postgres-dsn DSN] [--seconds S]

Each benchmark runs in its own interpreter (`python -m bench.<name>`), so one's node process,
threads and memory cannot slow the next; their lines are printed as they come. Exits non-zero
when a benchmark failed to run (a missed target is a printed verdict, not a failure).

Without --postgres-dsn: bench.streams and bench.subscriptions on SQLite, then bench.gateway
with --sqlite (one SQLite node behind the gateway, no failover figure), bench.tls (the same
appends plaintext, over TLS and over mTLS) and bench.session (issue 13's ceilings, sessions and
ratios). With --postgres-dsn (each benchmark creates and drops its own scratch database on that
server): the same two on SQLite, bench.session with its PostgreSQL figures, then on PostgreSQL bench.streams with one node and with two nodes appending at once,
bench.subscriptions, bench.gateway (with the failover figure), and bench.tls on SQLite. `--seconds` goes to every run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


def plan(postgres_dsn: str | None, seconds: list[str]) -> list[tuple[str, list[str]]]:
    """(module, arguments) of each run, in order."""
    runs = [("bench.streams", seconds), ("bench.subscriptions", seconds)]
    if postgres_dsn is None:
        return [*runs, ("bench.gateway", ["--sqlite", *seconds]), ("bench.tls", seconds), ("bench.session", seconds)]
    pg = ["--postgres-dsn", postgres_dsn]
    return [
        *runs,
        ("bench.session", [*pg, *seconds]),
        ("bench.streams", [*pg, *seconds]),
        ("bench.streams", [*pg, "--nodes", "2", *seconds]),
        ("bench.subscriptions", [*pg, *seconds]),
        ("bench.gateway", [*pg, *seconds]),
        ("bench.tls", seconds),
    ]


def main(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent
    failed = []
    seconds = ["--seconds", str(args.seconds)] if args.seconds is not None else []
    for name, extra in plan(args.postgres_dsn, seconds):
        shown = " ".join([name, *extra])
        print(f"== {shown}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", name, *extra], cwd=root)
        print(f"== {shown}: {'ok' if code == 0 else f'exit {code}'} in {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(shown)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-dsn", default=None, help="also run the PostgreSQL figures, on scratch databases of this server")
    parser.add_argument("--seconds", type=float, default=None, help="duration of each append phase (each benchmark's default if unset)")
    sys.exit(main(parser.parse_args()))
