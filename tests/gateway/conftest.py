"""Fixtures shared by the gateway and discovery tests: the Consul agent double, and a small
real gRPC server that answers like a node where a test says how (`FakeNode`): health for
Consul's GRPC checks and the gateway's probes, Cluster.GetStatus for its cluster guard, and
Streams.AppendEvents for its retry rules.

The server is a thread-pool grpc server so that sync tests (the double's checks run in its own
threads) and async tests (a gateway in front of it) can both use it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from exesdb.v1 import cluster_pb2, cluster_pb2_grpc, streams_pb2, streams_pb2_grpc
from tests.gateway.consul_double import ConsulDouble

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _Health(health.HealthServicer):
    def __init__(self, owner: FakeNode) -> None:
        super().__init__()
        self._owner = owner

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext) -> health_pb2.HealthCheckResponse:
        owner = self._owner
        owner._count("checks")
        if owner.hanging:
            owner._release.wait()  # a node whose event loop is stuck: no answer, ever
        return super().Check(request, context)


class _Cluster(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, owner: FakeNode) -> None:
        self._owner = owner

    def GetStatus(self, request: cluster_pb2.GetStatusRequest, context: grpc.ServicerContext) -> cluster_pb2.GetStatusResponse:
        o = self._owner
        return cluster_pb2.GetStatusResponse(
            role=cluster_pb2.ROLE_NODE, node_id=o.node_id, cluster_id=o.cluster_id, address=o.address
        )


class _Streams(streams_pb2_grpc.StreamsServicer):
    def __init__(self, owner: FakeNode) -> None:
        self._owner = owner

    def AppendEvents(self, request: streams_pb2.AppendEventsRequest, context: grpc.ServicerContext) -> streams_pb2.AppendEventsResponse:
        o = self._owner
        o._count("appends")
        if o.append_error is not None:
            code, details, trailers = o.append_error
            context.set_trailing_metadata(trailers)
            context.abort(code, details)
        return streams_pb2.AppendEventsResponse(version=len(request.events) - 1)


class FakeNode:
    """grpc.health.v1 (SERVING at start; `set()` changes it; `hang()` makes Check never
    answer), Cluster.GetStatus (this node id and cluster id) and Streams.AppendEvents (OK, or
    `append_error`: (code, details, trailing metadata)) on a loopback port. `checks` and
    `appends` count the calls received."""

    def __init__(self, cluster_id: str = "test-cluster", node_id: str = "fake-node") -> None:
        self.cluster_id = cluster_id
        self.node_id = node_id
        self.checks = 0
        self.appends = 0
        self.hanging = False
        self.append_error: tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]] | None = None
        self._changed = threading.Condition()
        self._release = threading.Event()
        self._health = _Health(self)
        # Like gater's servers, let a gateway's keepalive pings through.
        options = [("grpc.http2.min_ping_interval_without_data_ms", 1000), ("grpc.http2.max_ping_strikes", 0)]
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        cluster_pb2_grpc.add_ClusterServicer_to_server(_Cluster(self), self._server)
        streams_pb2_grpc.add_StreamsServicer_to_server(_Streams(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()
        self.set(SERVING)

    def stop(self) -> None:
        self._release.set()
        self._server.stop(None)

    def set(self, status: int, service: str = "") -> None:
        self._health.set(service, status)

    def hang(self) -> None:
        self.hanging = True

    def _count(self, what: str) -> None:
        with self._changed:
            setattr(self, what, getattr(self, what) + 1)
            self._changed.notify_all()

    def wait_for_checks(self, n: int, timeout_s: float = 20) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.checks >= n, timeout_s)

    async def checks_reach(self, n: int, timeout_s: float = 20) -> None:
        """Returns once `n` Check calls were received in all (fails after `timeout_s`)."""
        assert await asyncio.to_thread(self.wait_for_checks, n, timeout_s), f"{self.checks} checks, not {n}"


@pytest.fixture
def fake_node() -> Iterator[Callable[[], FakeNode]]:
    """`fake_node()` starts one more FakeNode (all of one cluster); all stop after the test."""
    started: list[FakeNode] = []

    def start() -> FakeNode:
        node = FakeNode(node_id=f"fake-{len(started)}")
        node.start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def health_server(fake_node: Callable[[], FakeNode]) -> FakeNode:
    """One FakeNode, SERVING: the gRPC server a Consul GRPC check or a gateway probe asks."""
    return fake_node()


@pytest.fixture
def double() -> Iterator[ConsulDouble]:
    with ConsulDouble(min_check_interval_s=0.05) as d:
        yield d
