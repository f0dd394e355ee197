"""What every gater gRPC server shares: the handler wrappers, handler tables from service
descriptors, health, reflection (v1alpha and v1, with the .proto comments), server options.

Owns: `unary_handler` / `stream_handler` — every exesdb.v1 handler of nodes and gateways runs
inside one of them: the request is decoded there (undecodable bytes are INVALID_ARGUMENT,
never UNKNOWN), gater errors become statuses through the one codec (`errors.encode_status`),
and anything unexpected becomes INTERNAL with a generic message and one log line, never a
leaked `str(e)`. Also `handlers_for` (a servicer object → a generic handler whose responses
may be bytes already serialized), reflection, `SERVICE_NAMES`, `server_options`.
Shared by nodes and gateways: must not import gater.store, gater.subscriptions, gater.node
or gater.gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from exesdb.v1 import cluster_pb2, snapshots_pb2, stores_pb2, streams_pb2, subscriptions_pb2

from . import _wire
from ._calls import CallHooks, code_of
from .errors import STATUS_DETAILS_KEY, GaterError, InvalidArgumentError, encode_status

__all__ = [
    "EXESDB_SERVICES",
    "SERVICE_NAMES",
    "abort",
    "add_reflection",
    "handlers_for",
    "server_options",
    "session_handler",
    "stream_handler",
    "unary_handler",
]

log = logging.getLogger(__name__)

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


def server_options(
    max_message_bytes: int, *, reuse_port: bool = False, max_concurrent_streams: int | None = None
) -> list[tuple[str, Any]]:
    streams = [("grpc.max_concurrent_streams", max_concurrent_streams)] if max_concurrent_streams else []
    return [
        *streams,
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # Two servers must not silently share a port unless asked to (gateway --workers).
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        # Let gateways ping idle connections every few seconds to find hung peers.
        ("grpc.http2.min_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        # grpc core queues calls the asyncio server has not taken yet and cancels, silently and
        # at random, those beyond max_pending_requests (1000 by default): a burst of streams
        # (2,000 Subscribes) would lose some before any handler could answer or log. Queue far
        # more; what the application refuses it refuses with RESOURCE_EXHAUSTED and a reason.
        ("grpc.server.max_pending_requests", 20_000),
        ("grpc.server.max_pending_requests_hard_limit", 40_000),
    ]


# -- handlers ---------------------------------------------------------------------------------


async def abort(context: grpc.aio.ServicerContext, error: GaterError) -> None:
    """Ends the call with `error`'s status and typed details (raises AbortError)."""
    code, message, details = encode_status(error)
    await context.abort(getattr(grpc.StatusCode, code), message, trailing_metadata=((STATUS_DETAILS_KEY, details),))


def _decode(request_class: type[Message] | None, raw: bytes) -> Any:
    if request_class is None:
        return raw
    try:
        return request_class.FromString(raw)
    except (DecodeError, RecursionError):
        raise InvalidArgumentError(
            "request", f"is not a valid {request_class.DESCRIPTOR.full_name} (protobuf decoding failed)"
        ) from None


async def _fail(context: grpc.aio.ServicerContext, name: str, error: Exception) -> None:
    if isinstance(error, GaterError):
        await abort(context, error)
    log.error("handler failed", exc_info=error, extra={"method": name})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has the details")


async def _end_then_fail(call: Any, context: grpc.aio.ServicerContext, name: str, error: Exception) -> None:
    """Ends the call's hooks with the failure, then aborts. In that order: abort sends the
    status at once, and a caller told of a refusal must already find it in the audit log
    (and the next call's record after it)."""
    try:
        if call is not None:
            code, message = _code_and_message(error)
            await call.end(code, message)
    finally:
        await _fail(context, name, error)


_CLOSE_WAIT_S = 10.0
"""After a failed write, how long a stream handler waits for grpc to cancel it."""

_NO_HOOKS = CallHooks()

Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Stream = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
Session = Callable[[AsyncIterator[tuple[Any, GaterError | None]], grpc.aio.ServicerContext], AsyncIterator[Any]]
"""A bidirectional handler: `fn(requests, context)` takes `(request, refusal)` pairs —
`refusal` is admission's answer to that one request, None when it may go on — and yields
responses."""


def unary_handler(
    fn: Unary, request_class: type[Message] | None = None, name: str = "", hooks: CallHooks = _NO_HOOKS
) -> grpc.RpcMethodHandler:
    """A unary handler around `fn(request, context)`; `request_class` None passes bytes.
    `hooks` (admission, metrics, tracing, access and audit logs) run around the call."""
    name = name or getattr(fn, "__qualname__", "handler")
    if not (hooks.enabled or hooks.admit):

        async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await fn(_decode(request_class, raw), context)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as e:  # noqa: BLE001 - the one place that catches everything
                await _fail(context, name, e)

        return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_wire.serialize)

    async def handle_with_hooks(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
        call = hooks.start(name, False, context)
        try:
            request = _decode(request_class, raw)
            await call.admit(request)
            response = await fn(request, context)
        except grpc.aio.AbortError:
            await call.end(code_of(context))
            raise
        except asyncio.CancelledError:
            await call.end("CANCELLED")
            raise
        except Exception as e:  # noqa: BLE001 - the one place that catches everything
            await _end_then_fail(call, context, name, e)
            raise  # pragma: no cover - _fail aborts
        await call.end("OK")
        return response

    return grpc.unary_unary_rpc_method_handler(handle_with_hooks, response_serializer=_wire.serialize)


def _code_and_message(error: Exception) -> tuple[str, str]:
    if isinstance(error, GaterError):
        return error.code, error.message
    return "INTERNAL", "internal error"


async def _write_all(items: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> bool:
    """Writes each item, asking for the next one only once the transport has taken the one
    before (flow control reaches the servicer this way). False when a write failed: the call
    ended under us."""
    async with contextlib.aclosing(items):  # type: ignore[type-var] - async generators
        async for item in items:
            try:
                await context.write(item)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:  # noqa: BLE001 - grpc's ExecuteBatchError: the call is over
                return False
    return True


async def _write_stream(
    name: str, call: Any, items: Callable[[], Awaitable[AsyncIterator[Any]]], context: grpc.aio.ServicerContext
) -> None:
    """Writes what `items()` gives (its failures, decoding and admission included, mapped to
    a status), ends the call's hooks with the outcome, and waits for grpc's cancellation when
    a write failed because the client went away."""
    code = "OK"
    try:
        if await _write_all(await items(), context):
            return
        code = "CANCELLED"
    except grpc.aio.AbortError:
        code = code_of(context)
        raise
    except asyncio.CancelledError:
        code = "CANCELLED"
        raise
    except Exception as e:  # noqa: BLE001 - the one place that catches everything
        code = ""  # ended below, before the status goes out
        await _end_then_fail(call, context, name, e)
        return
    finally:
        if call is not None and code:
            await call.end(code)
    log.debug("stream ended by the client", extra={"method": name})
    # grpc cancels this task when it processes the close (at once, in practice). Returning
    # instead would run one more batch on the dead call, which fails the same way.
    await asyncio.sleep(_CLOSE_WAIT_S)
    log.warning("a stream write failed but the call was not cancelled", extra={"method": name})


def stream_handler(
    fn: Stream, request_class: type[Message] | None = None, name: str = "", hooks: CallHooks = _NO_HOOKS
) -> grpc.RpcMethodHandler:
    """A server-streaming handler around the async generator `fn(request, context)`.

    The items are written here (grpc's reader/writer API), not yielded to grpc: a client that
    cancels while a write waits on flow control makes that write fail before grpc has noted
    the cancellation, and grpc would log the failure as an ERROR with a traceback. Here the
    failed write ends the generator at once (its `finally` blocks run) and the handler waits
    for grpc's cancellation, which follows: a client's cancel stays a DEBUG line."""
    name = name or getattr(fn, "__qualname__", "handler")
    active = hooks.enabled or hooks.admit is not None

    async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> None:
        call = hooks.start(name, True, context) if active else None

        async def items() -> AsyncIterator[Any]:
            request = _decode(request_class, raw)
            if call is not None:
                await call.admit(request)
            return fn(request, context)

        await _write_stream(name, call, items, context)

    return grpc.unary_stream_rpc_method_handler(handle, response_serializer=_wire.serialize)


async def _admitted(
    raw_requests: AsyncIterator[bytes], request_class: type[Message] | None, call: Any
) -> AsyncIterator[tuple[Any, GaterError | None]]:
    """Each request of a client stream, decoded (an undecodable one ends the call with
    INVALID_ARGUMENT: it has no id to be answered by) and admitted on its own."""
    async for raw in raw_requests:
        request = _decode(request_class, raw)
        refusal = None
        if call is not None:
            try:
                await call.admit(request)
            except GaterError as e:
                refusal = e
        yield request, refusal


def session_handler(
    fn: Session, request_class: type[Message] | None = None, name: str = "", hooks: CallHooks = _NO_HOOKS
) -> grpc.RpcMethodHandler:
    """A bidirectional handler around the async generator `fn(requests, context)`, with
    `stream_handler`'s writing, error mapping and hooks. Admission runs per request (each
    may name another store or stream); a refusal is handed to `fn` to answer, not raised."""
    name = name or getattr(fn, "__qualname__", "handler")
    active = hooks.enabled or hooks.admit is not None

    async def handle(raw_requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        call = hooks.start(name, True, context) if active else None
        admitting = call if hooks.admit is not None else None

        async def items() -> AsyncIterator[Any]:
            return fn(_admitted(raw_requests, request_class, admitting), context)

        await _write_stream(name, call, items, context)

    return grpc.stream_stream_rpc_method_handler(handle, response_serializer=_wire.serialize)


def handlers_for(service_name: str, servicer: object, hooks: CallHooks = _NO_HOOKS) -> grpc.GenericRpcHandler:
    """A generic handler for the RPCs `servicer` implements (methods named as in the .proto,
    `async def Method(self, request, context)`), each inside `unary_handler`,
    `stream_handler` or (client streams) `session_handler` with `hooks`. RPCs it lacks answer UNIMPLEMENTED. Responses may be
    messages or serialized bytes."""
    service = EXESDB_SERVICES[service_name]
    table = {}
    for method in service.methods:
        fn = getattr(servicer, method.name, None)
        if fn is None:
            continue
        if method.client_streaming:
            make: Callable[..., grpc.RpcMethodHandler] = session_handler
        else:
            make = stream_handler if method.server_streaming else unary_handler
        table[method.name] = make(fn, GetMessageClass(method.input_type), f"/{service_name}/{method.name}", hooks)
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
