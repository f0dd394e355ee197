"""A filtered read (stream prefix, from a time) through a gateway whose connection to the node
serving it breaks mid-read goes on on the other node, after the last event the client got and
cut at the head it began with: two nodes on one PostgreSQL database, each behind a TCP relay;
the test cuts the relay that carried the read's first message."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2

from exesdb.v1 import streams_pb2, types_pb2
from gater.config import NodeConfig
from gater.node import NodeServer
from tests.conftest import StartGateway

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


class Relay:
    """127.0.0.1:<port> → `upstream`; `cut()` drops the connections open now (new ones are
    still relayed); `bytes_down` counts what came back from upstream."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.address = ""
        self.bytes_down = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def cut(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self._open.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if src is up_reader:
                        self.bytes_down += len(data)
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._open.difference_update((writer, up_writer))


@pytest.fixture
async def relays(migrated_database: str, tmp_path: Path) -> AsyncIterator[list[Relay]]:
    async with contextlib.AsyncExitStack() as stack:
        relays = []
        for n in range(2):
            config = NodeConfig(listen="127.0.0.1:0", data_dir=tmp_path / f"data{n}", postgres_dsn=migrated_database, grace_s=0.2)
            node = NodeServer(config)
            await node.start()
            stack.push_async_callback(node.stop)
            relay = Relay(node.address)
            await relay.start()
            stack.push_async_callback(relay.close)
            relays.append(relay)
        yield relays


def event(n: int) -> types_pb2.NewEvent:
    return types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="placed", data=b'{"pad": "%s"}' % (b"x" * 1000))


async def test_a_prefix_read_from_a_time_resumes_when_its_node_connection_breaks(
    relays: list[Relay], gateway_for: StartGateway
) -> None:
    gateway = await gateway_for([r.address for r in relays])
    for batch in range(30):
        stream = f"order-{batch % 7}" if batch % 3 else f"other-{batch}"
        await gateway.api.streams.AppendEvents(
            streams_pb2.AppendEventsRequest(stream_id=stream, events=[event(n) for n in range(100)])
        )
    request = streams_pb2.ReadEventsRequest(stream_prefix="order-*", from_time=timestamp_pb2.Timestamp(seconds=1))
    want = []
    async for message in gateway.api.streams.ReadEvents(request):
        want.extend(e.position for e in message.events)
    assert len(want) == 2000

    got, heads = [], set()
    before = [r.bytes_down for r in relays]
    call = gateway.api.streams.ReadEvents(request)
    first = await call.read()  # 16 KiB: a few events of 2 MB
    got.extend(e.position for e in first.events)
    heads.add(first.head)
    assert 0 < len(got) < 100
    # The relay that carried the first message (health checks move a few bytes, it 16 KiB).
    serving = max(range(2), key=lambda n: relays[n].bytes_down - before[n])
    await relays[serving].cut()
    await gateway.api.streams.AppendEvents(  # after the head: the resumed read must not see it
        streams_pb2.AppendEventsRequest(stream_id="order-late", events=[event(0)])
    )
    while (message := await call.read()) is not grpc.aio.EOF:
        got.extend(e.position for e in message.events)
        heads.add(message.head)
    assert got == want  # no gap, no repeat, in order
    assert heads == {2999}
