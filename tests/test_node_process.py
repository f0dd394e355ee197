"""A node as a real process, where the process itself is what is measured: its memory under
streams nobody reads, its log when clients cancel, its open-files limit."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import uuid
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import streams_pb2, streams_pb2_grpc, types_pb2
from tests.procs import GaterProcess

BODY = b'{"x":"' + b"y" * 1000 + b'"}'  # 1 KB events


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files")


async def fill(stub: streams_pb2_grpc.StreamsStub, events: int) -> None:
    for i in range(events // 1000):
        batch = [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="t", data=BODY) for _ in range(1000)]
        await stub.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"s-{i % 10}", events=batch))


def no_bdp_channel(address: str) -> grpc.aio.Channel:
    # Each channel its own connection (a local subchannel pool): a node takes at most
    # `max_concurrent_streams` (1,000) streams per connection and clients queue the rest.
    return grpc.aio.insecure_channel(
        address, options=[("grpc.http2.bdp_probe", 0), ("grpc.use_local_subchannel_pool", 1)]
    )


def errors_in(log: list[str]) -> list[str]:
    return [line for line in log if line[13:18] == "ERROR" or line.startswith("Traceback")]


async def test_the_node_raises_its_open_files_limit_to_the_hard_limit(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(512, soft)
    if hard == resource.RLIM_INFINITY or hard <= lowered:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"))
        await node.start()  # inherits the lowered soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert node.proc is not None
        assert open_files_limit(node.proc.pid) == (hard, hard)
        said = [line for line in node.log if "open files limit" in line]
        assert len(said) == 1 and f"soft={hard}" in said[0] and f"was={lowered}" in said[0], node.log
    finally:
        await node.terminate()


@pytest.mark.slow
async def test_clients_cancelling_reads_leave_no_error_in_the_log(tmp_path):
    # Each read sends a message, the client takes it and stops reading: the node then waits on
    # flow control to send the next one when the client cancels. That is a normal end. Which
    # of two completions the node sees first varies from run to run: three rounds, each on a
    # channel without BDP probing (its window growth makes the race rarer).
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        async with grpc.aio.insecure_channel(node.address) as channel:
            await fill(streams_pb2_grpc.StreamsStub(channel), 5_000)
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(3):
                channel = await stack.enter_async_context(no_bdp_channel(node.address))
                stub = streams_pb2_grpc.StreamsStub(channel)
                calls = [stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")) for _ in range(100)]
                await asyncio.gather(*(call.read() for call in calls))
                for call in calls:
                    call.cancel()
                await stub.GetVersion(streams_pb2.GetVersionRequest(stream_id="$all"))
            # Stopped with the connections still open (closing them first would end the calls
            # another way): once the node has stopped cleanly, every call has ended.
            assert await node.terminate() == 0
    assert errors_in(node.log) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_unread_reads_cost_bounded_memory_returned_when_they_close(tmp_path):
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        assert node.proc is not None
        async with grpc.aio.insecure_channel(node.address) as channel:
            stub = streams_pb2_grpc.StreamsStub(channel)
            await fill(stub, 10_000)
            async for _ in stub.ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")):
                pass  # warm up: the readers, the page cache, the allocator
        before = rss_bytes(node.proc.pid)
        async with contextlib.AsyncExitStack() as stack:
            # Without BDP probing the clients' windows stay at 64 KiB per call. With it they grow
            # to megabytes that the node keeps filling; its memory stays as bounded (about the
            # same), but that costs it CPU, and on a busy machine calls then wait in gRPC's
            # queue past its 30 s limit (a bare CANCELLED).
            channels = [
                await stack.enter_async_context(no_bdp_channel(node.address)) for _ in range(10)
            ]
            stubs = [streams_pb2_grpc.StreamsStub(c) for c in channels]
            calls = [stubs[i % 10].ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")) for i in range(1000)]
            # The node has started answering each call (headers and first message sent); the
            # clients never read.
            await asyncio.gather(*(call.wait_for_connection() for call in calls))
            grown = rss_bytes(node.proc.pid) - before
            print(f"node memory with 1,000 unread reads: +{grown / 2**20:.0f} MiB")
            assert grown < 500 * 2**20, f"1,000 unread reads took {grown / 2**20:.0f} MiB"
            for call in calls:
                call.cancel()
        # The clients are gone: the memory goes back (polled: nothing announces it).
        for _ in range(300):
            left = rss_bytes(node.proc.pid) - before
            if left < 64 * 2**20:
                break
            await asyncio.sleep(0.2)
        print(f"after the clients closed: +{left / 2**20:.0f} MiB")
        assert left < 64 * 2**20, f"{left / 2**20:.0f} MiB still held 60 s after the clients closed"
        assert errors_in(node.log) == []


@pytest.mark.slow
async def test_a_burst_of_calls_is_answered_not_cancelled(tmp_path):
    # 2,500 calls at once wait in gRPC's queue until the node's event loop takes them: none may
    # be cancelled for having waited among more than 1,000 others.
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        async with contextlib.AsyncExitStack() as stack:
            channels = [await stack.enter_async_context(no_bdp_channel(node.address)) for _ in range(10)]
            stubs = [streams_pb2_grpc.StreamsStub(c) for c in channels]
            await fill(stubs[0], 2_000)
            calls = [stubs[i % 10].ReadEvents(streams_pb2.ReadEventsRequest(stream_id="$all")) for i in range(2500)]
            outcomes = await asyncio.gather(*(call.wait_for_connection() for call in calls), return_exceptions=True)
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            assert failed == [], f"{len(failed)} of 2,500 calls failed, first: {failed[0]!r}"
            for call in calls:
                call.cancel()
