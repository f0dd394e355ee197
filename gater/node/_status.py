"""Error → gRPC status mapping, in one place, for unary and server-streaming handlers.

Owns: `unary` and `stream` decorators that turn gater.errors into statuses (with typed
google.rpc details), and anything unexpected into INTERNAL with a generic message and one
log line: never a leaked `str(e)`, never UNKNOWN.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from exesdb.v1 import types_pb2

from ..errors import GaterError, InvalidArgumentError, WrongExpectedVersionError

__all__ = ["abort", "status_of", "stream", "unary"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def status_of(error: GaterError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """The status code, message and trailing metadata (typed details) for a gater error."""
    code = getattr(grpc.StatusCode, error.code)
    details: list[Any] = []
    if isinstance(error, WrongExpectedVersionError):
        details.append(
            types_pb2.WrongExpectedVersion(
                stream_id=error.stream_id, expected=error.expected, current_version=error.current_version
            )
        )
    elif isinstance(error, InvalidArgumentError):
        details.append(types_pb2.FieldViolation(field=error.field, description=error.description))
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.description)
                ]
            )
        )
    if not details:
        return code, error.message, ()
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    status = status_pb2.Status(code=code.value[0], message=error.message, details=packed)
    return code, error.message, (("grpc-status-details-bin", status.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, error: GaterError) -> None:
    code, message, trailers = status_of(error)
    await context.abort(code, message, trailing_metadata=trailers)


async def _internal(context: grpc.aio.ServicerContext, method: str, exc: BaseException) -> None:
    log.error("handler failed", exc_info=exc, extra={"method": method})
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; the server log has the details")


def unary(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Maps errors of a unary handler `async def fn(self, request, context)`."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await fn(self, request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except GaterError as e:
            await abort(context, e)
        except Exception as e:  # noqa: BLE001 - the one place that catches everything
            await _internal(context, fn.__qualname__, e)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    return wrapper


def stream(fn: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """Maps errors of a server-streaming handler `async def fn(self, request, context)` that
    yields responses."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[T]:
        try:
            async for item in fn(self, request, context):
                yield item
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except GaterError as e:
            await abort(context, e)
        except Exception as e:  # noqa: BLE001 - the one place that catches everything
            await _internal(context, fn.__qualname__, e)

    return wrapper
