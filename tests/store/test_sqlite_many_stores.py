"""Many stores on one SQLite node (issue 9, item 10): a real `gater node` process under a soft
limit of 1,024 open files serves 1,000 stores — each created, appended to and read — and once
they are idle it holds fewer than 50 threads and none of their files. GetStoreStatus says what
a store holds. `make soak` runs it at that size (~60 s); `make test` runs 300 stores under 256
open files, which caps the open stores at 16 as 1,024 caps them at 64."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from exesdb.v1 import stores_pb2, streams_pb2, types_pb2
from tests.conftest import stubs_for
from tests.helpers import soak
from tests.procs import GaterProcess

__all__: list[str] = []

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/<pid>"),
]

STORES, FILE_LIMIT = soak((1000, 1024), (300, 256))


@contextlib.contextmanager
def soft_file_limit_for_children(limit: int) -> Iterator[None]:
    """Children started in the block inherit a soft limit of `limit` open files (ours is put
    back after; only the soft limit, which any process may raise again up to its hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def files_of(pid: int, under: Path) -> list[str]:
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(str(under)):
                found.append(target)
    return found


def soft_file_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no Max open files line")


def one_event() -> list[types_pb2.NewEvent]:
    return [types_pb2.NewEvent(event_id=str(uuid.uuid4()), event_type="tick", data=b'{"n": 1}')]


@pytest.mark.timeout(400)
async def test_a_thousand_stores_under_a_thousand_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with soft_file_limit_for_children(FILE_LIMIT):
        node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir))
        await node.start()
    try:
        assert node.proc is not None
        pid = node.proc.pid
        # Should the node raise its soft limit at start, hold it to FILE_LIMIT again (soft and hard).
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))
        assert soft_file_limit(pid) == FILE_LIMIT
        async with grpc.aio.insecure_channel(node.address) as channel:
            api = stubs_for(node.address, channel)
            gate = asyncio.Semaphore(32)

            async def use(store_id: str) -> None:
                async with gate:
                    await api.stores.CreateStore(stores_pb2.CreateStoreRequest(store_id=store_id), timeout=60)
                    await api.streams.AppendEvents(
                        streams_pb2.AppendEventsRequest(store=store_id, stream_id="s", events=one_event()), timeout=60
                    )
                    read = [
                        e.event_id
                        async for batch in api.streams.ReadEvents(
                            streams_pb2.ReadEventsRequest(store=store_id, stream_id="$all"), timeout=60
                        )
                        for e in batch.events
                    ]
                    assert len(read) == 1

            ids = [f"store-{i:04}" for i in range(STORES)]
            await asyncio.wait_for(asyncio.gather(*(use(store_id) for store_id in ids)), 300)
            listed = await api.stores.ListStores(stores_pb2.ListStoresRequest(), timeout=60)
            assert {s.store_id for s in listed.stores} >= set(ids)

            # Idle stores close on their own: poll what the process holds until they have.
            stores_dir = data_dir / "stores"
            async with asyncio.timeout(120):
                while threads_of(pid) >= 50 or files_of(pid, stores_dir):  # noqa: ASYNC110 - another process
                    await asyncio.sleep(0.5)
            assert threads_of(pid) < 50

            idle = await api.stores.GetStoreStatus(stores_pb2.GetStoreStatusRequest(store_id=ids[0]), timeout=60)
            assert (idle.open, idle.threads, idle.open_files) == (False, 0, 0)
            assert (idle.event_count, idle.last_position) == (1, 0)
            # A store comes back at its next call, where it left off.
            again = await api.streams.AppendEvents(
                streams_pb2.AppendEventsRequest(store=ids[STORES // 2], stream_id="s", events=one_event()), timeout=60
            )
            assert (again.version, again.position) == (1, 1)
            busy = await api.stores.GetStoreStatus(stores_pb2.GetStoreStatusRequest(store_id=ids[STORES // 2]), timeout=60)
            assert (busy.open, busy.threads) == (True, 1)
            assert busy.open_files >= 1
    finally:
        await node.kill()
