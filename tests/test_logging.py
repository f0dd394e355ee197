"""Logs. gater/logging.py: JSON lines carry RFC 3339 timestamps and the record's context
fields; text lines keep the themed components (colour only when asked, as on a terminal).
The access log (gater._calls, on with ObservabilityConfig.access_log): one line per call
with method, status, duration, peer and principal, from a real node."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from pathlib import Path

import pytest

from gater import logging as gater_logging
from gater.client import Client, NewEvent
from gater.config import NodeConfig, ObservabilityConfig
from gater.errors import WrongExpectedVersionError
from gater.node import NodeServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def emit(capsys):
    """Configure logging as the CLI does, log one record, return what reached stderr."""
    saved = logging.getLogger().handlers[:], logging.getLogger().level

    def emit(fmt: str, color: bool = False, name: str = "gater.node.server") -> str:
        gater_logging.configure("INFO", fmt, color=color)
        logging.getLogger(name).warning("store opened", extra={"store": "orders", "position": 7})
        return capsys.readouterr().err

    yield emit
    logging.getLogger().handlers[:], level = saved
    logging.getLogger().setLevel(level)


def test_json_lines_have_rfc3339_utc_timestamps_and_the_context(emit):
    line = json.loads(emit("json"))
    stamp = datetime.datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    assert line["ts"].endswith("Z") and stamp.tzinfo is not None
    assert abs((datetime.datetime.now(datetime.UTC) - stamp).total_seconds()) < 60
    assert line | {"ts": None} == {
        "ts": None,
        "level": "warning",
        "logger": "gater.node.server",
        "msg": "store opened",
        "store": "orders",
        "position": 7,
    }


def test_rfc3339_formats_an_epoch_in_utc_with_microseconds():
    assert gater_logging.rfc3339(0.25) == "1970-01-01T00:00:00.250000Z"


def test_text_lines_name_the_component_and_colour_it_only_when_asked(emit):
    plain = emit("text")
    assert (
        "WARNING node.server: store opened store=orders position=7" in plain
        and "\x1b[" not in plain
    )
    themed = emit("text", color=True)
    assert "\x1b[32mnode.server\x1b[0m:" in themed  # the node's green
    assert "\x1b[1;33mWARNING\x1b[0m" in themed
    assert "\x1b[2;36maccess\x1b[0m:" in emit("text", color=True, name="gater.access")


# -- the access log -------------------------------------------------------------------------------


class _Lines(logging.Handler):
    """The access log's records; `until(n)` awaits the n-th (lines are written after the call's
    response, so the client can be back first)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    async def until(self, n: int) -> list[logging.LogRecord]:
        while len(self.records) < n:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 10)
        return self.records


@pytest.fixture
def access_lines():
    lines = _Lines()
    logger = logging.getLogger("gater.access")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


async def test_the_access_log_has_one_line_per_call_with_method_status_duration_peer_principal(
    tmp_path: Path, access_lines: _Lines
) -> None:
    node = NodeServer(
        NodeConfig(
            listen="127.0.0.1:0",
            data_dir=tmp_path,
            grace_s=0.1,
            observability=ObservabilityConfig(access_log=True),
        )
    )
    async with node, await Client.connect(node.address) as client:
        await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": 21})])
        with pytest.raises(WrongExpectedVersionError):
            await client.append_events("", "gh-1", [NewEvent("reading:v1", {})], expected_version=5)
        records = await access_lines.until(2)
    ok, refused = records[:2]
    for record in (ok, refused):
        assert record.getMessage() == "call"
        assert record.method == "/exesdb.v1.Streams/AppendEvents"
        assert record.duration_ms >= 0
        assert record.peer.startswith("ipv4:127.0.0.1:")
        assert record.principal  # anonymous without authentication
    assert (ok.code, refused.code) == ("OK", "FAILED_PRECONDITION")


async def test_without_the_option_there_is_no_access_log(
    tmp_path: Path, access_lines: _Lines
) -> None:
    async with NodeServer(NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path, grace_s=0.1)) as node:
        async with await Client.connect(node.address) as client:
            await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": 21})])
    assert access_lines.records == []
