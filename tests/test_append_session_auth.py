"""AppendSession under authorization, on a node and through a gateway: each append of a
session is admitted on its own (an `append` on its store and stream), a refusal answers that
append only, and an anonymous caller's appends are each UNAUTHENTICATED."""

from __future__ import annotations

from pathlib import Path

import pytest

from gater.config import GatewayConfig
from gater.gateway.discovery import StaticDiscovery
from gater.gateway.server import GatewayServer
from tests.helpers import new_event
from tests.security.test_auth import as_key, channel_to, secured_node, setup  # noqa: F401 - the fixture
from tests.test_append_session import error_of, session_request

pytestmark = pytest.mark.timeout(90)


async def check(api, keys) -> None:  # noqa: ANN001
    requests = [session_request(1, "billing-1", [new_event()]), session_request(2, "orders-1", [new_event()])]
    answers = {a.correlation_id: a async for a in api.streams.AppendSession(iter(requests), metadata=keys)}
    assert answers[1].appended.version == 0
    assert error_of(answers[2]).code == "PERMISSION_DENIED"
    anonymous = {a.correlation_id: a async for a in api.streams.AppendSession(iter(requests))}
    assert {error_of(a).code for a in anonymous.values()} == {"UNAUTHENTICATED"}


async def test_each_append_of_a_session_is_authorized_on_a_node(tmp_path: Path, setup) -> None:  # noqa: F811
    async with secured_node(tmp_path, setup) as node, channel_to(node.address) as api:
        await check(api, as_key(setup, "billing"))


async def test_each_append_of_a_session_is_authorized_through_a_gateway(tmp_path: Path, setup) -> None:  # noqa: F811
    async with secured_node(tmp_path, setup) as node:
        config = GatewayConfig(listen="127.0.0.1:0", grace_s=0.1, auth=setup.auth, cluster_secret="peer-secret")
        async with GatewayServer(config, StaticDiscovery([node.address])) as gateway, channel_to(gateway.address) as api:
            await check(api, as_key(setup, "billing"))
