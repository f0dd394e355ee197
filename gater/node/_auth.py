"""The cluster secret: when a node has one, exesdb.v1 calls must carry it.

Owns: `SecretInterceptor`. Health and reflection stay open (probes and grpcurl `list` need
no secret). Must not import gater.gateway.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from .._grpc import abort
from ..errors import UnauthenticatedError

__all__ = ["SECRET_HEADER", "SecretInterceptor"]

SECRET_HEADER = "x-gater-secret"


class SecretInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.startswith("/exesdb.v1."):
            return await continuation(details)
        given = dict(details.invocation_metadata or ()).get(SECRET_HEADER, "")
        if hmac.compare_digest(str(given).encode(), self._secret):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await abort(
                context,
                UnauthenticatedError(
                    f"this node requires the cluster secret in the {SECRET_HEADER} metadata "
                    "(set EX_ESDB_CLUSTER_SECRET on the gateway too)"
                ),
            )

        if handler.response_streaming:
            async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await deny(request, context)
                yield  # pragma: no cover - abort raised

            return grpc.unary_stream_rpc_method_handler(
                deny_stream, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            deny, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )
