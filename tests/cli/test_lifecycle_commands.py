"""docs/lifecycle.md's shell session, run as printed against a new node on each backend (ids and
times aside), and the lifecycle commands' usage errors and exit codes."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from gater.node import NodeServer
from tests.cli.test_client_commands import gater
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)

_VARYING = {"event_id", "created", "started_at"}
"""Fields whose printed values are examples: ids and times differ on every run."""


def session() -> list[tuple[list[str], dict]]:
    """(argv after `gater`, the JSON line printed after it) of docs/lifecycle.md's session."""
    text = (REPO / "docs" / "lifecycle.md").read_text()
    block = re.search(r"<!-- lifecycle:start -->\n```sh\n(.*?)```", text, re.S)
    assert block, "docs/lifecycle.md has its shell session"
    lines = block.group(1).splitlines()
    out = []
    for command, printed in zip(lines[::2], lines[1::2], strict=True):
        assert command.startswith("$ gater "), command
        out.append((shlex.split(command)[2:], json.loads(printed)))
    return out


def _stable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in _VARYING}


async def test_the_lifecycle_session_runs_as_printed(node: NodeServer) -> None:
    steps = session()
    assert len(steps) >= 10
    for argv, printed in steps:
        r = await gater(*argv, addr=node.address)
        got = r.error if "error" in printed else r.lines[-1]
        assert _stable(got) == _stable(printed), (argv, r)
        if "error" in printed:
            assert r.rc == printed["exit_code"], r


async def test_usage_errors_and_exit_codes(node: NodeServer) -> None:
    addr = node.address
    assert (await gater("delete-stream", "nope", addr=addr)).rc == 2
    assert (await gater("delete-stream", "s", "--expected-version", "maybe", addr=addr)).rc == 1
    assert (await gater("delete-stream", "s", "--tombstone", addr=addr)).rc == 1  # no --yes, no terminal
    assert (await gater("redact", "s", "0", addr=addr)).rc == 1  # no --yes, no terminal
    assert (await gater("redact", "s", "0", "--yes", addr=addr)).rc == 2
    assert (await gater("stream-meta", "set", "s", "--max-count", "0", addr=addr)).rc == 1
    assert (await gater("stream-meta", "set", "s", "--custom", "[1]", addr=addr)).rc == 1
    r = await gater("stream-meta", "set", "s", "--max-age", "60", "--expected-meta-version", "no_stream", addr=addr)
    assert r.lines == [{"stream_id": "s", "meta_version": 0}], r
    r = await gater("stream-meta", "set", "s", "--expected-meta-version", "no_stream", addr=addr)
    assert r.rc == 3 and r.error["current_version"] == 0, r
    r = await gater("scavenge", "--status", addr=addr)
    assert r.rc == 0 and r.lines[0]["running"] is False, r
