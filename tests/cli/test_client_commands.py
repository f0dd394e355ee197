"""The installed `gater` client commands, run as subprocesses against a real node: output
(JSON lines when piped) and exit codes (0 ok, 1 bad input, 2 not found, 3 wrong expected
version, 4 unavailable, 5 other server errors)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from gater.client import Client
from gater.node import NodeServer
from tests.cli.terminal import seen_on_terminal

pytestmark = pytest.mark.timeout(90)

GATER = str(Path(sys.executable).parent / "gater")


class Result:
    def __init__(self, rc: int, stdout: str, stderr: str) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def error(self) -> dict:
        return json.loads(self.stderr.strip().splitlines()[-1])

    def __repr__(self) -> str:
        return f"rc={self.rc}\nstdout={self.stdout}\nstderr={self.stderr}"


async def gater(*args: str, addr: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    proc = await asyncio.create_subprocess_exec(
        GATER, *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**(env or {}), "GATER_ADDR": addr, "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def addr(node: NodeServer) -> str:
    return node.address


async def test_append_read_version_streams(addr: str) -> None:
    r = await gater("append", "greenhouse1", "--type", "temperature_measured:v1", "--data", '{"temperature": 21.5}',
                    "--expected-version", "no_stream", addr=addr)  # fmt: skip
    assert r.rc == 0, r
    assert r.lines == [{"stream_id": "greenhouse1", "events": 1, "first_version": 0, "version": 0,
                        "first_position": 0, "position": 0, "duplicate": False}]  # fmt: skip
    r = await gater("read", "greenhouse1", addr=addr)
    assert r.rc == 0, r
    (event,) = r.lines
    assert (event["event_type"], event["data"], event["version"]) == ("temperature_measured:v1", {"temperature": 21.5}, 0)
    assert (await gater("version", "greenhouse1", addr=addr)).lines == [{"stream_id": "greenhouse1", "version": 0}]
    assert (await gater("version", "nothing", addr=addr)).lines == [{"stream_id": "nothing", "version": -1}]
    assert (await gater("streams", addr=addr)).lines == [{"stream_id": "greenhouse1", "version": 0}]


async def test_append_json_lines_from_stdin_in_batches_then_read_ranges(addr: str) -> None:
    lines = "\n".join(json.dumps({"event_type": "humidity_measured:v1", "data": {"humidity": h}}) for h in range(5))
    r = await gater("append", "gh", "--batch-size", "2", addr=addr, stdin=lines + "\n\n")
    assert r.rc == 0, r
    assert [(b["events"], b["first_version"], b["version"]) for b in r.lines] == [(2, 0, 1), (2, 2, 3), (1, 4, 4)]
    r = await gater("read", "gh", "--from", "1", "--count", "2", addr=addr)
    assert [e["data"]["humidity"] for e in r.lines] == [1, 2]
    r = await gater("read", "gh", "--backward", "--count", "1", addr=addr)
    assert [e["version"] for e in r.lines] == [4]
    r = await gater("read", "$all", addr=addr)
    assert [e["position"] for e in r.lines] == [0, 1, 2, 3, 4]


async def test_generated_greenhouse_events(addr: str) -> None:
    r = await gater("append", "greenhouse7", "--generate", "250", "--batch-size", "100", addr=addr)
    assert r.rc == 0, r
    assert sorted(b["events"] for b in r.lines) == [50, 100, 100]  # pipelined after the first
    events = (await gater("read", "greenhouse7", addr=addr)).lines
    assert len(events) == 250 and events[0]["event_type"] == "initialized:v1"
    assert all(set(e["metadata"]) == {"causation_id", "correlation_id"} for e in events)


async def test_wrong_expected_version_exits_3_with_the_current_version(addr: str) -> None:
    args = ("append", "gh", "--type", "x:v1", "--data", "{}", "--expected-version")
    assert (await gater(*args, "no_stream", addr=addr)).rc == 0
    r = await gater(*args, "no_stream", addr=addr)
    assert r.rc == 3 and r.stdout == "", r
    assert r.error == {"error": "FAILED_PRECONDITION", "exit_code": 3, "current_version": 0,
                       "message": "wrong expected version for stream 'gh': expected no_stream, current version is 0"}  # fmt: skip
    assert (await gater(*args, "5", addr=addr)).rc == 3
    assert (await gater(*args, "0", addr=addr)).rc == 0


async def test_unknown_store_exits_2(addr: str) -> None:
    for args in (("read", "gh"), ("append", "gh", "--type", "x:v1"), ("stores", "status"), ("streams",)):
        r = await gater(*args, "--store", "nope", addr=addr)
        assert r.rc == 2, r
        assert r.error["error"] == "NOT_FOUND" and "nope" in r.error["message"]


async def test_bad_address_exits_4_quickly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = await gater("version", "gh", "--connect-timeout", "20", addr=dead)
    assert r.rc == 4, r
    assert r.error["error"] == "UNAVAILABLE" and dead in r.error["message"]
    assert loop.time() - started < 15  # refused: no waiting out the connect timeout


async def test_addr_takes_a_connection_string(addr: str) -> None:
    r = await gater("version", "gh", addr=f"gater://127.0.0.1:1,{addr}?tls=false")
    assert r.rc == 0 and r.lines == [{"stream_id": "gh", "version": -1}], r
    r = await gater("version", "gh", "--addr", f"gater://{addr}", addr="")
    assert r.rc == 0, r
    r = await gater("version", "gh", addr="esdb://127.0.0.1:2113?tls=false")
    assert r.rc == 1 and r.error["error"] == "INVALID_ARGUMENT" and "gater://" in r.error["message"], r


async def test_usage_and_bad_input_exit_1(addr: str) -> None:
    r = await gater("read", addr=addr)
    assert r.rc == 1 and "Missing argument 'STREAM'" in r.stderr
    r = await gater("append", "gh", "--type", "x:v1", "--expected-version", "sometimes", addr=addr)
    assert r.rc == 1 and "--expected-version" in r.stderr
    r = await gater("append", "gh", "--type", "x:v1", "--data", "{not json", addr=addr)
    assert r.rc == 1 and "not JSON" in r.stderr
    r = await gater("append", "$reserved", "--type", "x:v1", addr=addr)
    assert r.rc == 1 and r.error["error"] == "INVALID_ARGUMENT" and r.error["message"].startswith("stream_id")
    r = await gater("append", "gh", addr=addr, stdin="")
    assert r.rc == 1 and "no events" in r.error["message"]
    r = await gater("subscribe", "--payload", "%{operator: John}", addr=addr)
    assert r.rc == 1 and "strings need quotes" in r.stderr
    r = await gater("frobnicate", addr=addr)
    assert r.rc == 1 and "No such command" in r.stderr  # a usage error, like any other


async def test_help_documents_the_exit_codes(addr: str) -> None:
    r = await gater("read", "--help", addr=addr)
    assert r.rc == 0
    for line in ("0   ok", "2   not found", "3   wrong expected version", "4   unavailable", "130 interrupted"):
        assert line in r.stdout


async def test_subscribe_with_a_payload_pattern_sees_only_johns_events(addr: str) -> None:
    async with await Client.connect(addr) as client:
        await client.append_events("", "gh", [
            {"event_type": "desired_light_set:v1", "data": {"light": 2000, "operator": operator}}
            for operator in ("Paul", "John", "Ringo", "John", "Laura")
        ])  # fmt: skip
    r = await gater("subscribe", "--payload", '%{operator: "John"}', "--limit", "2", addr=addr)
    assert r.rc == 0, r
    assert [(e["data"]["operator"], e["version"]) for e in r.lines] == [("John", 1), ("John", 3)]
    r = await gater("subscribe", "--type", "desired_light_set:v1", "--limit", "5", addr=addr)
    assert len(r.lines) == 5


async def test_subscribe_persistent_saves_consumes_and_acks(addr: str) -> None:
    async with await Client.connect(addr) as client:
        await client.append_events("", "gh", [{"event_type": "fan_activated:v1", "data": {"intensity": i}} for i in range(3)])
        r = await gater("subscribe", "gh", "--name", "workers", "--limit", "3", addr=addr)
        assert r.rc == 0, r
        assert [e["data"]["intensity"] for e in r.lines] == [0, 1, 2]
        (info,) = await client.get_subscriptions("")
        assert (info.name, info.checkpoint) == ("workers", 2)  # acked: acks are applied before AckEvent answers
        r = await gater("subscribe", "--name", "ghost", addr=addr)
        assert r.rc == 2 and "ghost" in r.error["message"]


async def test_snapshots(addr: str) -> None:
    r = await gater("snapshot", "record", "gh-1", "greenhouse1", "3", '{"temperature": 21}', "--type", "Greenhouse", addr=addr)
    assert r.rc == 0 and r.lines[0]["source_version"] == 3, r
    r = await gater("snapshot", "read", "gh-1", "greenhouse1", addr=addr)
    assert r.lines[0]["data"] == {"temperature": 21} and r.lines[0]["source_type"] == "Greenhouse"
    assert [s["source_uuid"] for s in (await gater("snapshot", "list", addr=addr)).lines] == ["gh-1"]
    assert (await gater("snapshot", "delete", "gh-1", "greenhouse1", addr=addr)).lines == [{"deleted": 1}]
    r = await gater("snapshot", "read", "gh-1", "greenhouse1", addr=addr)
    assert r.rc == 2 and r.error["error"] == "NOT_FOUND"


async def test_stores_and_status(addr: str, node: NodeServer) -> None:
    r = await gater("stores", "create", "reg_gh", addr=addr)
    assert r.rc == 0 and r.lines[0]["store_id"] == "reg_gh", r
    r = await gater("stores", "create", "reg_gh", addr=addr)
    assert r.rc == 5 and r.error["error"] == "ALREADY_EXISTS"
    assert {s["store_id"] for s in (await gater("stores", addr=addr)).lines} == {"default", "reg_gh"}
    await gater("append", "gh", "--store", "reg_gh", "--type", "x:v1", addr=addr)
    status = (await gater("stores", "status", "reg_gh", addr=addr)).lines[0]
    assert (status["stream_count"], status["event_count"]) == (1, 1)
    config = (await gater("stores", "config", "reg_gh", addr=addr)).lines[0]
    assert config["backend"] == node.backend.name
    assert config["durability"] == {"sqlite": "FULL", "postgres": "synchronous_commit=on"}[node.backend.name]
    r = await gater("stores", "remove", "reg_gh", addr=addr)
    assert r.rc == 1 and "--yes" in r.stderr  # no confirmation without a terminal
    assert (await gater("stores", "remove", "reg_gh", "--yes", addr=addr)).rc == 0
    assert (await gater("stores", "remove", "reg_gh", "--yes", addr=addr)).rc == 2
    (cluster,) = (await gater("status", addr=addr)).lines
    assert cluster["role"] == "node" and cluster["members"][0]["address"] == addr


async def test_on_a_terminal_results_never_share_a_line_with_the_progress_bar(addr: str) -> None:
    env = {**os.environ, "GATER_ADDR": addr}
    code, lines = await seen_on_terminal([GATER, "append", "gh", "--type", "x:v1", "--data", "{}"], env)
    assert code == 0 and lines == ["appended 1 event(s) to gh: versions 0..0, positions 0..0"], lines
    code, lines = await seen_on_terminal([GATER, "append", "gh", "--generate", "120", "--batch-size", "50"], env)
    # The first batch goes first (it checks the version); the others are pipelined and
    # commit in any order, so their lines come in any order too.
    heads = [line.split(":")[0] for line in lines]
    assert code == 0 and heads[0] == "appended 50 event(s) to gh", lines
    assert sorted(heads[1:]) == sorted(f"appended {n} event(s) to gh" for n in (50, 20)), lines
    code, lines = await seen_on_terminal([GATER, "append", "gh", "--generate", "3", "--json"], env)
    assert code == 0 and [json.loads(line)["events"] for line in lines] == [3], lines
