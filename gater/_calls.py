"""What runs around every exesdb.v1 call of a node or a gateway, besides decoding and error
mapping: admission (authentication, authorization, rate limits), metrics, tracing, the access
log and the audit log.

Owns: `CallHooks` (the server's choice of them; `CallHooks()` is none: the fast path) and the
per-call `_Call` that `_grpc.unary_handler` / `stream_handler` drive: `start` before the
request is decoded, `admit` once it is, `end` with the status the call ended with. Adding an
interceptor-like concern means adding a field here and a line in `_Call`, nothing in the
servicers.
Shared by nodes and gateways: must not import gater.store, gater.subscriptions, gater.node or
gater.gateway.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from .metrics import Metrics, RpcObserver
from .security.context import current_principal
from .tracing import Tracing, set_error

__all__ = ["Admit", "Audit", "CallHooks"]

access_log = logging.getLogger("gater.access")

Admit = Callable[[str, Any, grpc.aio.ServicerContext], Awaitable[None]]
"""`admit(method, request, context)`: raises UnauthenticatedError, PermissionDeniedError or
LimitExceededError to refuse the call; on success the call's principal is set."""
Audit = Callable[[str, Any, str, str], Awaitable[None]]
"""`audit(method, request, code, message)`: records an administrative call's outcome."""


@dataclass(frozen=True, slots=True)
class CallHooks:
    admit: Admit | None = None
    metrics: Metrics | None = None
    tracing: Tracing | None = None
    access_log: bool = False
    """One INFO line per call on the `gater.access` logger: method, status, duration, peer,
    principal."""
    audit: Audit | None = None
    audited: frozenset[str] = frozenset()
    """Methods whose outcome `audit` records (refused ones included)."""

    @property
    def enabled(self) -> bool:
        return bool(self.metrics or (self.tracing and self.tracing.enabled) or self.access_log or self.audit)

    def start(self, method: str, streaming: bool, context: grpc.aio.ServicerContext) -> _Call:
        return _Call(self, method, streaming, context)


class _Call:
    __slots__ = ("_hooks", "_method", "_context", "_observed", "_span", "_span_cm", "_started", "request")

    def __init__(self, hooks: CallHooks, method: str, streaming: bool, context: grpc.aio.ServicerContext) -> None:
        self._hooks = hooks
        self._method = method
        self._context = context
        self._started = time.perf_counter()
        self.request: Any = None
        self._observed = RpcObserver(hooks.metrics).start(method, streaming) if hooks.metrics else None
        self._span_cm: contextlib.AbstractContextManager[Any] | None = None
        self._span = None
        if hooks.tracing is not None and hooks.tracing.enabled:
            self._span_cm = hooks.tracing.server_span(method, context.invocation_metadata())
            self._span = self._span_cm.__enter__()

    async def admit(self, request: Any) -> None:
        self.request = request
        if self._hooks.admit is not None:
            await self._hooks.admit(self._method, request, self._context)

    async def end(self, code: str, message: str = "") -> None:
        hooks = self._hooks
        try:
            if self._observed is not None and hooks.metrics is not None:
                RpcObserver(hooks.metrics).end(self._observed, code)
            if self._span is not None:
                set_error(self._span, code, message)
            if hooks.access_log:
                access_log.info(
                    "call",
                    extra={
                        "method": self._method,
                        "code": code,
                        "duration_ms": round((time.perf_counter() - self._started) * 1000, 3),
                        "peer": self._context.peer(),
                        "principal": current_principal().name,
                    },
                )
            if hooks.audit is not None and self._method in hooks.audited and self.request is not None:
                await hooks.audit(self._method, self.request, code, message)
        finally:
            if self._span_cm is not None:
                self._span_cm.__exit__(None, None, None)


def code_of(context: grpc.aio.ServicerContext) -> str:
    """The status a call was aborted with (as set by context.abort)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "UNKNOWN"
