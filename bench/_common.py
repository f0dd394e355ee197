"""Shared pieces of the benchmarks: a node subprocess and a tiny report format."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.procs import GaterProcess  # noqa: E402  - the same launcher the tests use


@contextlib.asynccontextmanager
async def node_process(*extra: str) -> AsyncIterator[GaterProcess]:
    with tempfile.TemporaryDirectory(prefix="gater-bench-") as data:
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", data, "--log-level", "WARNING", *extra)
        # WARNING hides the "serving" line the launcher waits for: keep INFO for that line only.
        node.args = ("node", "--listen", "127.0.0.1:0", "--data-dir", data, *extra)
        await node.start()
        try:
            yield node
        finally:
            await node.terminate()


def report(name: str, value: float, unit: str, target: float | None = None, higher_is_better: bool = True) -> str:
    verdict = ""
    if target is not None:
        met = value >= target if higher_is_better else value <= target
        verdict = f"  (target {'>=' if higher_is_better else '<='} {target:,.0f}: {'met' if met else 'MISSED'})"
    line = f"{name:<58} {value:>12,.0f} {unit}{verdict}"
    print(line, flush=True)
    return line


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
