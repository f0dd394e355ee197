"""Admission: what a node or a gateway does with every call before serving it — who the caller
is, whether they may do what the request asks, and (gateways) whether they are within their
request rate.

Owns: `Guard` (built from AuthConfig: the authenticator, the policy source, the rate
limiter), its `admit` callable for `CallHooks`, the headers a gateway uses to name the
principal it forwards for (`PRINCIPAL_HEADER`, `ROLES_HEADER`), and `PolicySource`, which
re-reads the policy and credential files when they change or on SIGHUP.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.

Who may name another principal: a gateway forwards calls for its clients and names them in
`x-gater-principal` / `x-gater-roles`; a node takes those headers only from a caller the
policy grants the `peer` operation to (or the cluster secret's holder), and otherwise ignores
them. A gateway strips them from whatever a client sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from ..config import AuthConfig
from ..errors import LimitExceededError, PermissionDeniedError, UnauthenticatedError
from .access import access_of
from .context import Caller, mark_admitted, set_caller
from .credentials import PEER_SECRET_PRINCIPAL, ApiKeys, Authenticator, JwtConfig, JwtVerifier
from .policy import Operation, Policy, Principal, Rule, allow_all, load_policy
from .ratelimit import RateLimiter
from .tls import file_stamp

__all__ = ["FORWARDING_HEADERS", "PRINCIPAL_HEADER", "ROLES_HEADER", "Guard", "HealthGuard", "PolicySource"]

log = logging.getLogger(__name__)

PRINCIPAL_HEADER = "x-gater-principal"
ROLES_HEADER = "x-gater-roles"
FORWARDING_HEADERS = frozenset({PRINCIPAL_HEADER, ROLES_HEADER})

_AUTHENTICATED_ONLY = Policy({"*": frozenset({"authenticated"})}, {"authenticated": (Rule(frozenset({"*"})),)})
"""Credentials but no policy file: any authenticated caller may do everything, anonymous
callers nothing."""


class PolicySource:
    """The policy and credential files of one server, re-read when they change (checked every
    `poll_s`) or when `reload()` is called (SIGHUP). A file that no longer parses keeps the
    last good version and logs why; `on_reload(what, outcome)` hears of every attempt (the
    node audits it)."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        poll_s: float = 2.0,
        on_reload: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.poll_s = poll_s
        self.on_reload = on_reload
        self.api_keys = ApiKeys(config.api_keys_file) if config.api_keys_file else None
        self.jwt = (
            JwtVerifier(
                JwtConfig(
                    issuer=config.jwt_issuer,
                    audience=config.jwt_audience,
                    algorithms=config.jwt_algorithms,
                    key_file=config.jwt_key_file,
                    jwks_file=config.jwt_jwks_file,
                    roles_claim=config.jwt_roles_claim,
                )
            )
            if config.jwt
            else None
        )
        self.policy = self._load_policy()
        self._stamps = self._now()
        self._task: asyncio.Task[None] | None = None

    def _files(self) -> tuple[Path | None, ...]:
        c = self.config
        return (c.policy_file, c.api_keys_file, c.jwt_key_file, c.jwt_jwks_file)

    def _now(self) -> tuple[float, ...]:
        return tuple(file_stamp(p) for p in self._files())

    def _load_policy(self) -> Policy:
        if self.config.policy_file is not None:
            return load_policy(self.config.policy_file)
        return _AUTHENTICATED_ONLY if self.config.enabled else allow_all()

    async def reload(self) -> bool:
        """Reads every file again; True when all of them loaded."""
        self._stamps = self._now()
        try:
            policy = self._load_policy()
            if self.api_keys is not None:
                self.api_keys.reload()
            if self.jwt is not None:
                self.jwt.reload()
        except ValueError as e:  # PolicyError, CredentialsError
            log.error("policy or credentials reload failed; keeping the previous ones", extra={"error": str(e)})
            await self._told("failed", str(e))
            return False
        self.policy = policy
        log.info("policy and credentials reloaded", extra={"policy": str(self.config.policy_file or "")})
        await self._told("ok", "")
        return True

    async def _told(self, outcome: str, detail: str) -> None:
        if self.on_reload is not None:
            with contextlib.suppress(Exception):
                await self.on_reload(outcome, detail)

    async def start(self) -> None:
        if self.config.enabled and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="policy-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if self._now() != self._stamps:
                await self.reload()


def _header(metadata: Sequence[tuple[str, Any]] | None, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


def _auth_context(context: grpc.aio.ServicerContext) -> Mapping[str, Any]:
    try:
        return context.auth_context() or {}
    except Exception:  # noqa: BLE001 - a plaintext call has none
        return {}


class Guard:
    """Admission for one server. Nodes: `Guard(config, source, default_store)`; gateways add
    `rate=` (requests per second per principal). `admit` is the CallHooks callable."""

    def __init__(
        self,
        source: PolicySource,
        default_store: str,
        *,
        cluster_secret: str | None = None,
        certificates: bool = False,
        rate_per_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.default_store = default_store
        self.cluster_secret = cluster_secret
        self.certificates = certificates
        self.limiter = RateLimiter(rate_per_s) if rate_per_s else None
        self.clock = clock

    def authenticator(self) -> Authenticator:
        return Authenticator(
            api_keys=self.source.api_keys,
            jwt=self.source.jwt,
            certificates=self.certificates,
            cluster_secret=self.cluster_secret,
        )

    def _is_peer(self, principal: Principal, policy: Policy) -> bool:
        return principal.name == PEER_SECRET_PRINCIPAL or policy.allows(principal, Operation.PEER, "")

    def caller(self, metadata: Sequence[tuple[str, Any]] | None, auth_context: Mapping[str, Any]) -> Caller:
        """The call's Caller (raises UnauthenticatedError for wrong credentials)."""
        policy = self.source.policy
        principal = self.authenticator().authenticate(metadata or (), auth_context)
        if self._is_peer(principal, policy):
            named = _header(metadata, PRINCIPAL_HEADER)
            if named:
                roles = _header(metadata, ROLES_HEADER) or ""
                principal = Principal(named, frozenset(r for r in roles.split(",") if r))
            elif principal.name == PEER_SECRET_PRINCIPAL:
                return Caller(principal, allow_all())  # a peer acting for itself (relay, probes)
        return Caller(principal, policy)

    async def admit(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        caller = self.caller(context.invocation_metadata(), _auth_context(context))
        if caller.principal.anonymous and self.cluster_secret and not self.source.config.enabled:
            # No authentication configured, only the cluster secret: nothing without it.
            raise UnauthenticatedError(
                "this node requires the cluster secret in the x-gater-secret metadata "
                "(set EX_ESDB_CLUSTER_SECRET on the gateway too)"
            )
        set_caller(caller)
        if self.limiter is not None and not self.limiter.take(caller.principal.name, self.clock()):
            raise LimitExceededError(
                "",
                f"{caller.principal.name} sends more than {self.limiter.rate_per_s:g} requests/s; slow down",
                "max_requests_per_s",
            )
        access = access_of(method, request, self.default_store)
        if access.store == "*" or caller.allows(access.operation, access.store, access.stream):
            mark_admitted()
            return  # store "*": listings across stores, filtered to what the caller may see
        what = access.operation.value
        if caller.principal.anonymous:
            raise UnauthenticatedError(
                f"{method} needs credentials here: an API key (x-api-key), a bearer token or a client certificate"
            )
        raise PermissionDeniedError(
            f"{caller.principal.name} may not {what} on {access.describe()}", what, access.describe()
        )

    def forwarding_metadata(self, caller: Caller) -> tuple[tuple[str, str], ...]:
        """What a gateway adds to a forwarded call so its node authorizes the same principal."""
        principal = caller.principal
        roles = ",".join(sorted(caller.policy.roles_of(principal)))
        return ((PRINCIPAL_HEADER, principal.name), (ROLES_HEADER, roles))


class HealthGuard(grpc.aio.ServerInterceptor):
    """With `open_health` off: grpc.health.v1 and reflection answer only callers with valid
    credentials (exesdb.v1 calls are admitted by `Guard.admit` in their handlers)."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith("/exesdb.v1."):
            return handler
        metadata = tuple(details.invocation_metadata or ())
        try:
            caller = self.guard.caller(metadata, {})
            refused = "credentials needed" if caller.principal.anonymous else None
        except UnauthenticatedError as e:
            refused = e.message
        if refused is None:
            return handler

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"{details.method}: {refused}")

        async def deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await deny(request, context)
            yield  # pragma: no cover - abort raised

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                deny_stream, handler.request_deserializer, handler.response_serializer
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny_stream, handler.request_deserializer, handler.response_serializer)
        return grpc.unary_unary_rpc_method_handler(deny, handler.request_deserializer, handler.response_serializer)
