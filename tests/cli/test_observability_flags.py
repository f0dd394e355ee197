"""The observability flags of the server commands, as processes: what they reach.

Covers: `gater dev --metrics-listen --access-log` serves one /metrics for its gateway and
node (calls counted once, appends counted by the node) with /readyz and /livez, and writes
one access line per call; without the flag `gater dev` serves no metrics; JSON logs of a
`gater node` carry RFC 3339 timestamps; a bad --metrics-listen is a usage error naming the
flag; `gater gateway --workers N` gives worker i the port + i.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gater.cli import main as gater_cli
from gater.cli._observability import for_worker
from gater.client import Client, NewEvent
from gater.config import ObservabilityConfig
from tests.obs_helpers import http_get, scrape, value
from tests.procs import GaterProcess

pytestmark = pytest.mark.timeout(90)

_METRICS_AT = re.compile(r"metrics and HTTP health serving .*?address=\S+:(\d+)")


def metrics_port(log: list[str]) -> int | None:
    ports = [int(m.group(1)) for line in log if (m := _METRICS_AT.search(line))]
    return ports[0] if ports else None


async def test_dev_serves_metrics_health_and_an_access_log_when_asked(tmp_path: Path) -> None:
    dev = GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                       "--metrics-listen", "127.0.0.1:0", "--access-log")  # fmt: skip
    async with dev:
        port = metrics_port(dev.log)
        assert port is not None, "".join(dev.log)
        async with await Client.connect(dev.address) as client:
            await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": c}) for c in (20, 21, 22)])
        series = await scrape(port)
        assert value(series, "gater_appended_events_total", store="default") == 3
        # One call, counted once: by the gateway, not again by the embedded node behind it.
        assert value(series, "grpc_server_handled_total", grpc_method="AppendEvents", grpc_code="OK") == 1
        assert value(series, "gater_build_info", role="dev") == 1
        assert await http_get(port, "/readyz") == (200, "ready\n")
        assert (await http_get(port, "/livez"))[0] == 200
        await dev.terminate()  # every line written
    access = [line for line in dev.log if "access: call" in line and "AppendEvents" in line]
    assert len(access) == 1, "".join(dev.log)
    assert "code=OK" in access[0] and "peer=ipv4:127.0.0.1:" in access[0] and "principal=" in access[0]


async def test_dev_serves_no_metrics_by_default(tmp_path: Path) -> None:
    async with GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as dev:
        async with await Client.connect(dev.address) as client:
            await client.append_events("", "gh-1", [NewEvent("reading:v1", {"celsius": 20})])
        await dev.terminate()
    assert metrics_port(dev.log) is None
    assert not any("access: call" in line for line in dev.log)


async def test_json_logs_of_a_node_have_rfc3339_timestamps(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gater"), "node", "--listen", "127.0.0.1:0",
        "--data-dir", str(tmp_path / "data"), "--log-format", "json",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines = []
    try:
        async with asyncio.timeout(30):
            while not lines or lines[-1]["msg"] != "node serving":
                raw = await proc.stderr.readline()
                assert raw, f"gater node ended before serving: {lines}"
                lines.append(json.loads(raw))
    finally:
        proc.terminate()
        await proc.wait()
    for line in lines:
        stamp = datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert abs(datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - stamp) < datetime.timedelta(minutes=5)
    assert lines[-1]["logger"].startswith("gater") and "address" in lines[-1]


def test_a_bad_metrics_listen_is_a_usage_error_naming_the_flag() -> None:
    result = CliRunner().invoke(gater_cli, ["node", "--metrics-listen", "9100"])
    assert result.exit_code == 1
    assert "--metrics-listen" in result.output and "HOST:PORT" in result.output


def test_gateway_workers_get_consecutive_metrics_ports() -> None:
    base = ObservabilityConfig(metrics_listen="0.0.0.0:9100")
    assert [for_worker(base, i).metrics_listen for i in range(3)] == ["0.0.0.0:9100", "0.0.0.0:9101", "0.0.0.0:9102"]
    assert for_worker(ObservabilityConfig(metrics_listen="127.0.0.1:0"), 2).metrics_listen == "127.0.0.1:0"
    assert for_worker(ObservabilityConfig(), 1).metrics_listen is None
