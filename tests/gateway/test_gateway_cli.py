"""`gater gateway` as a command: several worker processes on one port, Consul discovery of a
node that registered itself with `gater node --consul` (against the Consul agent double),
and clear errors for a bad discovery setting."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import cluster_pb2, streams_pb2
from tests.conftest import stubs_for
from tests.gateway.consul_double import ConsulDouble
from tests.helpers import new_event
from tests.procs import GaterProcess

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers(pid: int) -> list[int]:
    """The gateway worker processes a `gater gateway --workers N` process started."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline:  # not multiprocessing's resource tracker
            found.append(int(child))
    return found


async def test_workers_share_one_port(tmp_path: Path) -> None:
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        port = free_port()
        gateway = GaterProcess("gateway", "--listen", f"127.0.0.1:{port}", "--nodes", node.address, "--workers", "2")
        async with gateway:
            assert gateway.proc is not None
            assert len(workers(gateway.proc.pid)) == 2
            for i in range(10):  # a new connection each time: the kernel spreads them
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    api = stubs_for(gateway.address, channel)
                    await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"w-{i}", events=[new_event()]))
                    status = await api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
                    assert status.role == cluster_pb2.ROLE_GATEWAY
            assert await gateway.terminate() == 0


async def test_a_node_registered_in_consul_is_found_by_a_gateway(tmp_path: Path) -> None:
    with ConsulDouble() as consul:
        env = dict(os.environ, CONSUL_HTTP_ADDR=consul.address)
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--consul", env=env)
        gateway = GaterProcess("gateway", "--listen", "127.0.0.1:0", "--consul", env=env)
        async with node:
            # The double runs the node's GRPC health check; the gateway's blocking query then
            # sees a passing instance.
            passing = await asyncio.to_thread(
                consul.wait_for, lambda d: any(c.status == "passing" for c in d.checks().values()), 20
            )
            assert passing
            async with gateway, grpc.aio.insecure_channel(gateway.address) as channel:
                api = stubs_for(gateway.address, channel)
                await api.streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id="consul", events=[new_event()]))
                status = await api.cluster.GetStatus(cluster_pb2.GetStatusRequest())
                assert status.discovery == "consul" and status.discovery_ok
                assert [m.address for m in status.members] == [node.address]
            # A node that stops (SIGTERM) deregisters itself.
            assert await node.terminate() == 0
            assert await asyncio.to_thread(consul.wait_for, lambda d: not d.services(), 20)


async def test_discovery_must_be_chosen_once() -> None:
    gater = str(Path(sys.executable).parent / "gater")
    proc = await asyncio.create_subprocess_exec(
        gater, "gateway", "--listen", "127.0.0.1:0", stderr=asyncio.subprocess.PIPE, env={**os.environ, "EX_ESDB_GATER_CONNECT_TO": ""}
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1  # usage error, as for every gater command
    assert "exactly one of: --nodes" in err.decode()
