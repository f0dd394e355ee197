"""gater/logging.py: JSON lines carry RFC 3339 timestamps and the record's context fields;
text lines keep the themed components (colour only when asked, as on a terminal)."""

from __future__ import annotations

import datetime
import json
import logging

import pytest

from gater import logging as gater_logging

pytestmark = pytest.mark.timeout(10)


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
