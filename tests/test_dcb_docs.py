"""docs/dcb.md, run as printed against `gater dev`: the command-line walkthrough, the grpcurl
one and the Python client's decision loop (also with its subscriptions racing)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.node.test_grpcurl import GRPCURL
from tests.procs import GaterProcess

DOC_ADDRESS = "127.0.0.1:50051"
GATER = str(Path(sys.executable).parent / "gater")


def block(name: str, language: str) -> str:
    text = (REPO / "docs" / "dcb.md").read_text()
    found = re.search(rf"<!-- {name}:start -->\n```{language}\n(.*?)```\n<!-- {name}:end -->", text, re.S)
    assert found, f"docs/dcb.md has a {name} block"
    return found.group(1)


async def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_walkthroughs_work_as_printed(tmp_path: Path) -> None:
    async with GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as dev:
        env = {**os.environ, "GATER_ADDR": dev.address}
        cli = []
        for line in block("dcb-cli", "sh").splitlines():
            argv = shlex.split(line)
            assert argv[0] == "gater"
            cli.append(await run([GATER, *argv[1:]], env))
        assert [rc for rc, _, _ in cli] == [0, 0, 0, 0, 3, 0], cli
        assert cli[2][1].splitlines()[-1] == '{"head": 1}'
        assert json.loads(cli[3][1])["position"] == 2
        refused = json.loads(cli[4][2].splitlines()[-1])
        assert (refused["conflicting_position"], refused["head"]) == (2, 2)
        *events, head = [json.loads(x) for x in cli[5][1].splitlines()]
        assert [e["position"] for e in events] == [0, 2] and head == {"head": 2}

        grpc_outputs = []
        for line in block("dcb-grpcurl", "sh").splitlines():
            argv = shlex.split(line.replace(DOC_ADDRESS, dev.address))
            argv[0] = GRPCURL
            grpc_outputs.append(await run(argv))
        assert [rc for rc, _, _ in grpc_outputs] == [0, 0], grpc_outputs
        read = json.loads(grpc_outputs[0][1])
        assert [e["position"] if "position" in e else "0" for e in read["events"]] == ["1", "2"]
        assert read["head"] == "2" and read["events"][0]["dataJson"] == {"capacity": 10}
        assert json.loads(grpc_outputs[1][1])["position"] == "3"

        example: dict[str, Any] = {}
        exec(compile(block("dcb-python", "python"), "docs/dcb.md", "exec"), example)  # noqa: S102 - our own doc
        assert await example["main"](dev.address) == ["subscribed", "subscribed", "course full"]
        # Racing: whatever order the appends reach the store in, two win and one finds it full.
        from gater.client import Client, NewEvent

        async with await Client.connect(dev.address) as client:
            await client.append_events("", "course-c4", [NewEvent("course_defined", {"capacity": 2}, tags=("course:c4",))])
            answers = await asyncio.gather(*(example["subscribe"](client, "c4", f"r{i}") for i in range(3)))
        assert sorted(answers) == ["course full", "subscribed", "subscribed"]
