"""Every benchmark, one after the other (what `make bench` runs).

    python -m bench.run_all [options every benchmark accepts: --postgres-dsn DSN, --seconds S]

Each benchmark runs in its own interpreter (`python -m bench.<name>`), so one's node process,
threads and memory cannot slow the next; their lines are printed as they come. Exits non-zero
when a benchmark failed to run (a missed target is a printed verdict, not a failure).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = ("bench.streams", "bench.subscriptions")


def main(extra: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", name, *extra], cwd=root)
        print(f"== {name}: {'ok' if code == 0 else f'exit {code}'} in {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
