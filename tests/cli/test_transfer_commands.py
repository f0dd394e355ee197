"""`gater export` / `gater import` as a person or a script runs them: JSON summaries, --resume,
a refused import's exit code and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from gater.node import NodeServer
from tests.cli.test_client_commands import gater

pytestmark = pytest.mark.timeout(120)


async def test_export_resume_and_import(node: NodeServer, tmp_path: Path) -> None:
    addr = node.address
    assert (await gater("stores", "create", "src", addr=addr)).rc == 0
    for _ in range(3):  # small_limits: 100 events per append
        assert (await gater("append", "greenhouse1", "--generate", "100", "--store", "src", addr=addr)).rc == 0
    file = tmp_path / "src.gtx"
    r = await gater("export", "--store", "src", "--file", str(file), addr=addr)
    assert r.rc == 0, r
    (line,) = r.lines
    assert (line["head"], line["events"], line["complete"]) == (299, 300, True)
    whole = file.read_bytes()
    file.write_bytes(whole[: len(whole) // 3])
    r = await gater("export", "--store", "src", "--file", str(file), "--resume", addr=addr)
    assert r.rc == 0, r
    assert 0 < r.lines[0]["events"] < 300 and file.read_bytes() == whole

    r = await gater("import", "--store", "copy", "--file", str(file), addr=addr)
    assert r.rc == 0, r
    assert (r.lines[0]["events"], r.lines[0]["complete"]) == (300, True)
    assert (await gater("version", "$all", "--store", "copy", addr=addr)).lines == [{"stream_id": "$all", "version": 299}]

    # Into a store that is no prefix of the file: refused, nothing written.
    r = await gater("import", "--store", "src", "--file", str(file), addr=addr)
    assert r.rc == 0, r  # the same store: a prefix (all of it) — nothing to write
    assert r.lines[0]["events"] == 0
    assert (await gater("append", "other", "--generate", "5", "--store", "mine", addr=addr)).rc != 0  # no such store
    assert (await gater("stores", "create", "mine", addr=addr)).rc == 0
    assert (await gater("append", "other", "--generate", "5", "--store", "mine", addr=addr)).rc == 0
    r = await gater("import", "--store", "mine", "--file", str(file), addr=addr)
    assert r.rc == 5 and r.error["error"] == "FAILED_PRECONDITION" and "not a prefix" in r.error["message"], r
    r = await gater("export", "--file", str(file), addr=addr)
    assert r.rc == 1 and "--store" in r.stderr
