"""What `gater dev`, `gater node` and `gater gateway` set in the interpreter before serving."""

from __future__ import annotations

import gc
import sys

from gater.cli._servers import GC_THRESHOLDS, SWITCH_INTERVAL_S, _run


def test_servers_run_with_their_switch_interval_and_collector_thresholds() -> None:
    seen: dict[str, object] = {}

    async def serve() -> None:
        seen["thresholds"] = gc.get_threshold()
        seen["interval"] = sys.getswitchinterval()
        seen["frozen"] = gc.get_freeze_count()

    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        _run(serve())
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
    assert seen["thresholds"] == GC_THRESHOLDS
    assert seen["interval"] == SWITCH_INTERVAL_S
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 0
