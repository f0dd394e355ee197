"""The README's grpcurl walkthrough, run as printed against a real node."""

from __future__ import annotations

import asyncio
import json
import re
import shlex

from tests.conftest import REPO
from tests.node.test_grpcurl import GRPCURL

README_ADDRESS = "127.0.0.1:50051"


def walkthrough() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\n```sh\n(.*?)```", text, re.S)
    assert block, "README has a walkthrough block"
    return [line for line in block.group(1).splitlines() if line.startswith("grpcurl ")]


async def test_readme_walkthrough_works_as_printed(node):
    commands = walkthrough()
    assert len(commands) >= 10
    outputs = []
    for command in commands:
        argv = shlex.split(command.replace(README_ADDRESS, node.address))
        argv[0] = GRPCURL
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        outputs.append((command, proc.returncode, out.decode(), err.decode()))

    failed = [(c, code, err) for c, code, _, err in outputs if code != 0 and '"expected_version": 5' not in c]
    assert failed == []
    (wrong,) = [o for o in outputs if '"expected_version": 5' in o[0]]
    assert wrong[1] != 0 and "FailedPrecondition" in wrong[3] and "current version is 0" in wrong[3]
    appended = next(json.loads(out) for c, _, out, _ in outputs if "Streams/AppendEvents" in c and "NO_STREAM" in c)
    assert appended["version"] == "0" and appended["position"] == "0"
    read_back = next(json.loads(out) for c, _, out, _ in outputs if '"greenhouse-1", "json": true' in c)
    assert read_back["events"][0]["dataJson"] == {"celsius": 21.5, "operator": "John"}
    latest = next(json.loads(out) for c, _, out, _ in outputs if "ReadSnapshot" in c)
    assert latest["snapshot"]["sourceVersion"] == "1"
