"""The README's grpcurl walkthrough, run as printed against `gater dev` (a gateway in front of
an embedded node, as `make run` starts it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path

from gater.client import Client
from tests.conftest import REPO
from tests.node.test_grpcurl import GRPCURL
from tests.procs import GaterProcess

README_ADDRESS = "127.0.0.1:50051"


def walkthrough() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\n```sh\n(.*?)```", text, re.S)
    assert block, "README has a walkthrough block"
    return [line for line in block.group(1).splitlines() if line.startswith("grpcurl ")]


async def test_readme_walkthrough_works_as_printed(tmp_path):
    commands = walkthrough()
    assert len(commands) >= 10
    outputs = []
    async with GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as dev:
        for command in commands:
            argv = shlex.split(command.replace(README_ADDRESS, dev.address))
            argv[0] = GRPCURL
            proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
            outputs.append((command, proc.returncode, out.decode(), err.decode()))

    def expected_failure(command: str, code: int, err: str) -> bool:
        if "-max-time" in command:  # a subscription that grpcurl ends after a while
            return "DeadlineExceeded" in err
        return '"expected_version": 5' in command

    failed = [(c, code, err) for c, code, _, err in outputs if code != 0 and not expected_failure(c, code, err)]
    assert failed == []
    (wrong,) = [o for o in outputs if '"expected_version": 5' in o[0]]
    assert wrong[1] != 0 and "FailedPrecondition" in wrong[3] and "current version is 0" in wrong[3]
    appended = next(json.loads(out) for c, _, out, _ in outputs if "Streams/AppendEvents" in c and "NO_STREAM" in c)
    assert appended["version"] == "0" and appended["position"] == "0"
    read_back = next(json.loads(out) for c, _, out, _ in outputs if '"greenhouse-1", "json": true' in c)
    assert read_back["events"][0]["dataJson"] == {"celsius": 21.5, "operator": "John"}
    latest = next(json.loads(out) for c, _, out, _ in outputs if "ReadSnapshot" in c)
    assert latest["snapshot"]["sourceVersion"] == "1"
    subscribed = next(out for c, _, out, _ in outputs if '"selector": "greenhouse-1", "json": true' in c)
    assert '"confirmation"' in subscribed and '"caughtUp"' in subscribed and '"celsius": 21.5' in subscribed
    johns = next(out for c, _, out, _ in outputs if "BY_EVENT_PAYLOAD" in c)
    assert johns.count('"eventType"') == 1 and "John" in base64_bodies(johns)
    listed = next(json.loads(out) for c, _, out, _ in outputs if "ListSubscriptions" in c)
    assert listed["subscriptions"][0]["name"] == "billing" and listed["subscriptions"][0]["checkpoint"] == "0"
    session = next(out for c, _, out, _ in outputs if "Streams/AppendSession" in c)
    assert '"appended"' in session and '"error"' in session and "wrong expected version" in session
    status = next(json.loads(out) for c, _, out, _ in outputs if "Cluster/GetStatus" in c)
    assert status["role"] == "ROLE_GATEWAY" and status["members"][0]["healthy"] is True


async def test_walkthrough_subscriptions_stay_short_after_the_first_ten_minutes(tmp_path):
    """A reader comes here after `gater append greenhouse2 --generate 1000`: the walkthrough's
    subscriptions must not pour a thousand events (18 lines each) onto the screen."""
    subscribes = [c for c in walkthrough() if "Subscriptions/Subscribe" in c]
    assert len(subscribes) >= 2
    async with GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as dev:
        async with await Client.connect(dev.address) as client:
            await client.append_events("", "greenhouse2", [{"event_type": "fan_activated:v1", "data": {"intensity": i % 100}}
                                                           for i in range(1000)])  # fmt: skip
        for command in walkthrough():  # in order: the persistent one is saved before it is consumed
            argv = shlex.split(command.replace(README_ADDRESS, dev.address))
            argv[0] = GRPCURL
            proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            if command in subscribes:
                assert len(out.decode().splitlines()) < 200, command


def base64_bodies(output: str) -> str:
    """The decoded `data` of every event grpcurl printed (it shows bytes as base64)."""
    import base64

    return " ".join(base64.b64decode(m).decode() for m in re.findall(r'"data": "([^"]+)"', output))


def security_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- security:start -->\n```sh\n(.*?)```", text, re.S)
    assert block, "README has a security block"
    return [re.sub(r"\s+#\s.*$", "", line) for line in block.group(1).splitlines() if line.strip()]


async def test_readme_security_example_works_as_printed(tmp_path):
    """README "Security", line by line in a fresh directory: certificates, a key, `gater dev`
    serving TLS that wants the key, then gater and grpcurl over TLS with and without it."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("GATER_API_KEY", None)
    printed_key = ""
    dev: GaterProcess | None = None
    results = []
    try:
        for line in security_block():
            if line.startswith("gater dev "):
                args = [*shlex.split(line)[1:], "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")]
                dev = GaterProcess(*args, env=env, cwd=tmp_path)
                await dev.start()
                continue
            if line.startswith("export GATER_API_KEY="):
                env["GATER_API_KEY"] = printed_key
                continue
            command = line.replace(README_ADDRESS, dev.address) if dev else line
            if dev and command.startswith("gater ") and " --addr " not in command:
                command += f" --addr {dev.address}"
            proc = await asyncio.create_subprocess_exec(
                "bash", "-c", command, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            results.append((line, proc.returncode, out.decode(), err.decode()))
            if line.startswith("gater keys add"):
                printed_key = out.decode().strip()
    finally:
        if dev is not None:
            await dev.kill()
    *succeeded, (last, code, _, err) = results
    assert [(c, code, err) for c, code, _, err in succeeded if code != 0] == []
    assert printed_key.startswith("gtr.app.") and printed_key not in (tmp_path / "keys.toml").read_text()
    (version,) = [out for c, _, out, _ in succeeded if c.startswith("gater version")]
    assert json.loads(version) == {"stream_id": "orders", "version": 0}
    (listed,) = [out for c, _, out, _ in succeeded if c.endswith(" list")]
    assert "exesdb.v1.Streams" in listed  # reflection stays open
    assert "-H" not in last and code != 0 and "Unauthenticated" in err
