"""`gater node` as a process: what its flags reach."""

from __future__ import annotations

import pytest

from gater.client import Client
from gater.store.postgres import PostgresBackend
from tests.procs import GaterProcess

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]


async def test_advertise_is_the_address_leases_record(migrated_database: str) -> None:
    advertised = "node-a.internal:7777"
    async with GaterProcess("node", "--listen", "127.0.0.1:0", "--postgres-dsn", migrated_database,
                            "--advertise", advertised) as node:  # fmt: skip
        async with await Client.connect(node.address) as client:
            await client.save_subscription("", "billing", stream="$all")
            async with client.subscribe("", name="billing"):  # this node now dispatches it
                async with PostgresBackend(migrated_database, node_id="probe") as backend:
                    store = await backend.open_store("default")
                    lease = await store.acquire_lease("billing", "probe", "probe:1", ttl_s=30)
    assert not lease.held and lease.owner_address == advertised
