"""`gater dev`'s banner: a newcomer's next shell finds `gater` and `grpcurl` by doing what it says."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

BIN = Path(sys.executable).parent


async def test_the_banner_says_how_a_new_shell_finds_gater_and_grpcurl(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "gater"), "dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    banner = ""
    try:
        async with asyncio.timeout(30):
            while "Ctrl-C stops it" not in banner:
                line = (await proc.stdout.readline()).decode()
                assert line, f"gater dev ended before its banner:\n{banner}"
                banner += line
    finally:
        proc.terminate()
        await proc.wait()
    (command,) = re.findall(r"^\s*(export PATH=.*)$", banner, re.M)
    # A new shell: a bare PATH, then the banner's line.
    check = await asyncio.create_subprocess_exec(
        "bash", "-c", f"{command} && command -v gater grpcurl",
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await check.communicate()
    assert check.returncode == 0 and out.decode().split() == [str(BIN / "gater"), str(BIN / "grpcurl")], banner
