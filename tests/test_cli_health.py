"""`gater health`: exit 0 only when the server is SERVING, 1 when it says NOT_SERVING, 4 when
nothing answers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayConfig, GatewayServer

GATER = str(Path(sys.executable).parent / "gater")


async def health(addr: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        GATER, "health", "--addr", addr, "--timeout", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_serving_not_serving_and_no_answer(node) -> None:
    assert await health(node.address) == (0, f"{node.address}: SERVING\n")
    gateway = GatewayServer(GatewayConfig(listen="127.0.0.1:0", grace_s=0.1), StaticDiscovery(["127.0.0.1:1"]))
    async with gateway:
        code, out = await health(gateway.address)
        assert (code, out) == (1, f"{gateway.address}: NOT_SERVING\n")
    code, out = await health("127.0.0.1:1")
    assert code == 4 and "UNAVAILABLE" in out
