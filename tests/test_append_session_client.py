"""The Python client's appends: one at a time they are unary calls; many at once share one
AppendSession (seen in the node's access log), with the same results and errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gater.client import Client, NewEvent
from gater.config import NodeConfig, ObservabilityConfig
from gater.errors import InvalidArgumentError, WrongExpectedVersionError
from gater.node import NodeServer


@pytest.fixture
async def logged_node(tmp_path: Path) -> AsyncIterator[NodeServer]:
    config = NodeConfig(
        listen="127.0.0.1:0", data_dir=tmp_path / "data", grace_s=0.5, observability=ObservabilityConfig(access_log=True)
    )
    async with NodeServer(config) as node:
        yield node


def calls(caplog: pytest.LogCaptureFixture, method: str) -> int:
    return sum(1 for r in caplog.records if r.name == "gater.access" and getattr(r, "method", "").endswith(method))


async def test_concurrent_appends_share_one_session(logged_node, caplog) -> None:
    caplog.set_level(logging.INFO, logger="gater.access")
    async with await Client.connect(logged_node.address) as client:
        first = await client.append_events("", "alone", [NewEvent("e", {"n": 0})])
        assert first.version == 0
        results = await asyncio.gather(
            *(client.append_events("", f"many-{i % 8}", [NewEvent("e", {"n": i})]) for i in range(200))
        )
        assert sorted(r.position for r in results) == list(range(1, 201))
        # Errors come back as the same exceptions as from unary calls.
        outcomes = await asyncio.gather(
            client.append_events("", "many-0", [NewEvent("e", {})], expected_version=0),
            client.append_events("", "many-1", [NewEvent("e", {})], expected_version=0),
            client.append_events("", "$reserved", [NewEvent("e", {})]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], WrongExpectedVersionError) and outcomes[0].current_version == 24
        assert isinstance(outcomes[1], WrongExpectedVersionError)
        assert isinstance(outcomes[2], InvalidArgumentError) and outcomes[2].field == "stream_id"
    # The session ends when the client closes; its access line is written then.
    await logged_node.stop()
    assert calls(caplog, "/AppendSession") == 1
    assert calls(caplog, "/AppendEvents") < 20  # only appends that found none in flight


async def test_appends_waiting_on_a_dead_servers_session_go_to_the_next_target(tmp_path: Path) -> None:
    from tests.procs import GaterProcess

    first = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "a"))
    second = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "b"))
    async with first, second:
        async with await Client.connect([first.address, second.address]) as client:
            answered = 0
            some_answered = asyncio.Event()

            async def one(i: int):  # noqa: ANN202
                nonlocal answered
                result = await client.append_events("", f"s-{i % 10}", [NewEvent("e", {"i": i})])
                answered += 1
                if answered == 50:
                    some_answered.set()
                return result

            appends = [asyncio.create_task(one(i)) for i in range(2_000)]
            await some_answered.wait()
            await first.kill()
            results = await asyncio.gather(*appends)  # every one answered, none failed
            assert len(results) == 2_000
            assert client.target == second.address
