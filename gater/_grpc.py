"""What every gater gRPC server shares: handler tables from service descriptors, health,
reflection (v1alpha and v1, with the .proto comments), server options.

Owns: `handlers_for` (a servicer object → a generic handler whose responses may be bytes
already serialized), `Reflection`, `SERVICE_NAMES`, `server_options`.
Shared by nodes and gateways: must not import gater.store, gater.subscriptions, gater.node
or gater.gateway.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from exesdb.v1 import cluster_pb2, snapshots_pb2, stores_pb2, streams_pb2, subscriptions_pb2

from . import _wire

__all__ = [
    "EXESDB_SERVICES",
    "SERVICE_NAMES",
    "add_reflection",
    "handlers_for",
    "server_options",
]

EXESDB_SERVICES = {
    "exesdb.v1.Streams": streams_pb2.DESCRIPTOR.services_by_name["Streams"],
    "exesdb.v1.Subscriptions": subscriptions_pb2.DESCRIPTOR.services_by_name["Subscriptions"],
    "exesdb.v1.Snapshots": snapshots_pb2.DESCRIPTOR.services_by_name["Snapshots"],
    "exesdb.v1.Stores": stores_pb2.DESCRIPTOR.services_by_name["Stores"],
    "exesdb.v1.Cluster": cluster_pb2.DESCRIPTOR.services_by_name["Cluster"],
}
_REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (
    *EXESDB_SERVICES,
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name,
    _REFLECTION_V1,
)


def server_options(max_message_bytes: int, *, reuse_port: bool = False) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Two servers must not silently share a port unless asked to (gateway --workers).
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        # Let gateways ping idle connections every few seconds to find hung peers.
        ("grpc.http2.min_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def handlers_for(service_name: str, servicer: object) -> grpc.GenericRpcHandler:
    """A generic handler for the RPCs `servicer` implements (methods named as in the .proto).
    RPCs it lacks answer UNIMPLEMENTED. Responses may be messages or serialized bytes."""
    service = EXESDB_SERVICES[service_name]
    table = {}
    for method in service.methods:
        fn = getattr(servicer, method.name, None)
        if fn is None:
            continue
        request_class = GetMessageClass(method.input_type)
        make = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        table[method.name] = make(fn, request_deserializer=request_class.FromString, response_serializer=_wire.serialize)
    return grpc.method_handlers_generic_handler(service_name, table)


def _with_source_info() -> dict[str, bytes]:
    """Our FileDescriptorProtos as generated with --include_source_info (comments kept)."""
    blob = (resources.files("exesdb.v1") / "exesdb_v1.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(blob).file
    return {f.name: f.SerializeToString() for f in files if f.name.startswith("exesdb/")}


class _Reflection(ReflectionServicer):
    """grpcio's reflection, answering with our descriptors' comments so `grpcurl describe`
    shows what each field means (grpcio's own copy of a descriptor drops source info)."""

    def __init__(self, service_names: tuple[str, ...]) -> None:
        super().__init__(service_names)
        self._rich = _with_source_info()

    def _enrich(self, response: reflection_pb2.ServerReflectionResponse) -> reflection_pb2.ServerReflectionResponse:
        if response.HasField("file_descriptor_response"):
            protos = response.file_descriptor_response.file_descriptor_proto
            for i, raw in enumerate(protos):
                name = descriptor_pb2.FileDescriptorProto.FromString(raw).name
                if name in self._rich:
                    protos[i] = self._rich[name]
        return response

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        return self._enrich(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        return self._enrich(super()._file_containing_symbol(request, fully_qualified_name))


def add_reflection(server: grpc.aio.Server) -> None:
    """Serves reflection as grpc.reflection.v1alpha and v1 (the same messages on the wire)."""
    servicer = _Reflection(SERVICE_NAMES)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_REFLECTION_V1, {"ServerReflectionInfo": v1}),)
    )
