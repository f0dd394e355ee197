"""A subscriber that stops reading while 200,000 events are appended: the node's memory stays
bounded (it is moved back to catch-up, not buffered), and afterwards it gets every event in
order. The node runs as its own process so its memory can be measured."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import (
    streams_pb2,
    streams_pb2_grpc,
    subscriptions_pb2,
    subscriptions_pb2_grpc,
    types_pb2,
)
from tests.procs import GaterProcess

pytestmark = pytest.mark.slow

EVENTS = 200_000
BATCH = 1000


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(600)
async def test_a_stalled_subscriber_costs_bounded_memory_and_misses_nothing(tmp_path):
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as node:
        assert node.proc is not None
        async with grpc.aio.insecure_channel(node.address) as channel:
            streams = streams_pb2_grpc.StreamsStub(channel)
            subs = subscriptions_pb2_grpc.SubscriptionsStub(channel)
            call = subs.Subscribe(subscriptions_pb2.SubscribeRequest(selector="$all", max_batch=1000))
            first = await call.read()
            assert first.WhichOneof("message") == "confirmation"
            assert (await call.read()).WhichOneof("message") == "caught_up"
            # Warm up, then measure from here: the subscriber now stops reading.
            body = b'{"temperature": 21.5, "operator": "John", "greenhouse": "gh-1"}'
            before = rss_bytes(node.proc.pid)
            for i in range(EVENTS // BATCH):
                events = [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="t", data=body) for _ in range(BATCH)]
                await streams.AppendEvents(streams_pb2.AppendEventsRequest(stream_id=f"s-{i % 10}", events=events))
            grown = rss_bytes(node.proc.pid) - before
            print(f"node memory growth while the subscriber stalled: {grown / 2**20:.1f} MiB")
            assert grown < 100 * 1024 * 1024, f"node memory grew by {grown / 2**20:.0f} MiB"

            expected = 0
            while expected < EVENTS:
                message = await call.read()
                kind = message.WhichOneof("message")
                if kind == "events":
                    for record in message.events.events:
                        assert record.position == expected
                        expected += 1
            assert expected == EVENTS
            call.cancel()
