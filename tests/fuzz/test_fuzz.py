"""The fuzz suite: random well-typed requests for every exesdb.v1 RPC, and random bytes through
a raw channel, against a node and against a gateway in front of one, on SQLite and PostgreSQL.

Every answer must be a status the API documents for bad input or a refused operation — never
UNKNOWN or INTERNAL, never a hang, never a response over gRPC's default receive limit — and
the servers must log no ERROR. After the run the servers are SERVING and still append and
read, and every store holds exactly what the appends answered OK wrote (tests/fuzz/ledger.py).

Bounded by default (8 examples per pass, derandomized: the same draws for the same code) so
that `make test` runs it in seconds. The long mode (`make fuzz`, docs/security.md "Fuzzing")
draws fresh examples, as many per pass as GATER_FUZZ_EXAMPLES says, from a seed it prints
(GATER_FUZZ_SEED=N draws the same again):

    GATER_FUZZ_EXAMPLES=300 .venv/bin/python -m pytest -q -s -p no:cacheprovider tests/fuzz

Each pass is a hypothesis test run in a worker thread while the servers run on the test's
event loop; a failure prints the request and the status it got. Without shrinking: the
servers keep what earlier examples wrote, so an example replayed alone may pass; the seed
replays the whole run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from exesdb.v1 import stores_pb2, streams_pb2
from gater.node import NodeServer
from tests.conftest import StartGateway, stubs_for
from tests.helpers import new_event, read

from .caller import CLIENT_RECEIVE_LIMIT, Caller
from .ledger import Ledger, Outcome, check_stores
from .requests import METHODS, Method, raw_bytes, request_bytes

EXAMPLES_VARIABLE = "GATER_FUZZ_EXAMPLES"
SEED_VARIABLE = "GATER_FUZZ_SEED"
_LONG_EXAMPLES = int(os.environ.get(EXAMPLES_VARIABLE) or 0)
_SEED = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32)) if _LONG_EXAMPLES else None
"""The long mode's seed: every pass draws from it, so one number replays a whole run."""

settings.register_profile(
    "gater-fuzz",
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: the servers keep the state earlier examples made, so a replay differs.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "gater-fuzz-long",
    parent=settings.get_profile("gater-fuzz"),
    max_examples=max(_LONG_EXAMPLES, 1),
    derandomize=False,
)
PROFILE = settings.get_profile("gater-fuzz-long" if _LONG_EXAMPLES else "gater-fuzz")

_TIMEOUT_S = 120 if not _LONG_EXAMPLES else 600 + _LONG_EXAMPLES * 60
pytestmark = pytest.mark.timeout(_TIMEOUT_S)

ANSWERS = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
"""What an answer to any request may be: bad input, a missing or existing thing, a wrong
expected version, a limit. Not UNKNOWN or INTERNAL (a handler crashed), DEADLINE_EXCEEDED (a
hang), UNAVAILABLE (nothing is down), CANCELLED or anything else."""

_FIRST = ["CreateStore", "AppendEvents", "RecordSnapshot", "SaveSubscription"]
_LAST = ["DeleteSnapshot", "RemoveSubscription", "RemoveStore"]
"""Passes that write go first, so that reads find something; removals last."""
_FINALLY = [
    "CreateStore",
    "AppendEvents",
    "RecordSnapshot",
    "SaveSubscription",
    "Subscribe",
    "ReadEvents",
]


def _pass_order(method: Method) -> int:
    if method.name in _FIRST:
        return _FIRST.index(method.name)
    if method.name in _LAST:
        return 100 + _LAST.index(method.name)
    return 50


def _calls() -> st.SearchStrategy[list[tuple[Method, bytes]]]:
    """Short sequences of calls to any RPC (removals and creations among reads and writes)."""
    one = st.sampled_from(METHODS).flatmap(lambda m: request_bytes(m).map(lambda raw: (m, raw)))
    return st.lists(one, min_size=1, max_size=8)


class FuzzRun:
    """Sends what hypothesis draws to one address, checks each answer, notes it in a ledger."""

    def __init__(self, address: str, ledger: Ledger) -> None:
        self.caller = Caller(address)
        self.ledger = ledger

    def send(self, method: Method, raw: bytes) -> Outcome:
        outcome = self.caller.call(method, raw)
        self.ledger.note(outcome)
        assert outcome.code in ANSWERS, outcome.describe()
        assert f"vs. {CLIENT_RECEIVE_LIMIT})" not in outcome.details, (
            f"a response over 4 MiB: {outcome.describe()}"
        )
        if outcome.request is None:  # protobuf refuses these bytes: so must the server
            assert outcome.code in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ), outcome.describe()
        return outcome

    def run(self) -> None:
        try:
            for method in sorted(METHODS, key=_pass_order):
                _fuzz(
                    f"typed_{method.name}",
                    request_bytes(method),
                    lambda raw, m=method: self.send(m, raw),
                )
            for method in METHODS:
                _fuzz(
                    f"raw_{method.name}", raw_bytes(method), lambda raw, m=method: self.send(m, raw)
                )
            _fuzz("mixed", _calls(), lambda calls: [self.send(m, raw) for m, raw in calls])
            # Last, valid writes and reads, so that the stores checked afterwards hold events
            # and snapshots, and subscriptions catch up over them.
            for name in _FINALLY:
                method = next(m for m in METHODS if m.name == name)
                valid = request_bytes(method, modes=("valid",))
                _fuzz(f"valid_{name}", valid, lambda raw, m=method: self.send(m, raw))
        finally:
            self.caller.close()


def _fuzz(name: str, strategy: st.SearchStrategy[Any], each: Callable[[Any], object]) -> None:
    """One pass: hypothesis draws PROFILE.max_examples values and `each` sends them."""

    def fuzz(value: Any) -> None:
        each(value)

    fuzz.__name__ = fuzz.__qualname__ = f"fuzz_{name}"  # derandomized runs seed from the name
    test = settings(PROFILE)(given(strategy)(fuzz))
    if _SEED is not None:
        test = seed(_SEED)(test)
    test()


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of gater's loggers (a handler that failed logs one), grpc's and asyncio's."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    loggers = [logging.getLogger(name) for name in ("gater", "grpc", "asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    yield records
    for logger in loggers:
        logger.removeHandler(handler)


async def _serving(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "exesdb.v1.Streams"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, (address, service)


async def _still_appends_and_reads(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        api = stubs_for(address, channel)
        await api.stores.CreateStore(
            stores_pb2.CreateStoreRequest(store_id="after-fuzz"), timeout=30
        )
        events = [new_event(data={"n": n}) for n in range(3)]
        request = streams_pb2.AppendEventsRequest(store="after-fuzz", stream_id="s", events=events)
        result = await api.streams.AppendEvents(request, timeout=30)
        assert (result.first_position, result.position) == (0, 2)
        async with asyncio.timeout(30):
            got = await read(api.streams, "s", store="after-fuzz")
        assert [e.event_id for e in got] == [e.event_id for e in events]


@pytest.mark.parametrize("via", ["node", "gateway"])
async def test_random_requests_get_documented_answers_and_leave_the_stores_whole(
    node: NodeServer, gateway_for: StartGateway, via: str, server_errors: list[logging.LogRecord]
) -> None:
    # A generous probe deadline: a node busy with 4 MiB messages on a loaded machine may answer
    # its health late, and this test is about answers to bad input, not about ejection.
    gateway_address = (await gateway_for([node.address], probe_timeout_s=30.0)).address if via == "gateway" else ""
    address = node.address if via == "node" else gateway_address
    ledger = Ledger()
    drawn = (
        "derandomized"
        if _SEED is None
        else f"seed {_SEED} ({SEED_VARIABLE}={_SEED} draws the same)"
    )
    print(
        f"\nfuzz via {via} ({node.backend.name}): {PROFILE.max_examples} examples per pass, {drawn}"
    )
    started = time.monotonic()
    await asyncio.to_thread(FuzzRun(address, ledger).run)
    print(f"{ledger.summary()}\n  took {time.monotonic() - started:.1f} s")

    for served in {address, node.address}:
        await _serving(served)
    async with grpc.aio.insecure_channel(node.address) as channel:
        await check_stores(stubs_for(node.address, channel), ledger)
    await _still_appends_and_reads(address)
    assert not server_errors, [f"{r.name}: {r.getMessage()}" for r in server_errors]
