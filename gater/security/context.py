"""Who the current call runs as, for the code that serves it.

Owns: the `Caller` of the call being served (its principal and the policy that applies),
kept in a context variable: admission sets it once per call (each gRPC call runs in its own
task, so callers never mix), servicers ask it what to filter (`scope`) or check (`allows`).
Without admission — security off — every call runs as an unrestricted caller.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from ..errors import PermissionDeniedError
from .access import AUDIT_STORE
from .policy import ANONYMOUS, Operation, Policy, Principal, Scope, allow_all

__all__ = ["UNRESTRICTED", "Caller", "admitted", "allows", "mark_admitted", "current_caller", "current_principal", "require", "scope", "sees_store", "set_caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    policy: Policy

    def allows(self, operation: str, store: str, stream: str | None = None) -> bool:
        return self.policy.allows(self.principal, operation, store, stream)

    def scope(self, operation: str, store: str) -> Scope:
        return self.policy.scope(self.principal, operation, store)

    @property
    def restricted(self) -> bool:
        """False when the caller may do everything (security off, or a peer acting for itself):
        nothing needs checking or filtering."""
        return self.policy is not allow_all()


UNRESTRICTED = Caller(ANONYMOUS, allow_all())
_CALLER: ContextVar[Caller] = ContextVar("gater_caller", default=UNRESTRICTED)
_ADMITTED: ContextVar[bool] = ContextVar("gater_admitted", default=False)


def set_caller(caller: Caller) -> None:
    _CALLER.set(caller)


def mark_admitted() -> None:
    """Admission let the current call through (a gateway audits only what it refused itself)."""
    _ADMITTED.set(True)


def admitted() -> bool:
    return _ADMITTED.get()


def current_caller() -> Caller:
    return _CALLER.get()


def current_principal() -> Principal:
    return _CALLER.get().principal


def scope(operation: str, store: str) -> Scope:
    """The streams of `store` the current caller may use for `operation`."""
    return _CALLER.get().scope(operation, store)


def sees_store(store: str) -> bool:
    """Whether the current caller may know `store` exists (ListStores): some operation of
    theirs is allowed on it; the audit store only to auditors."""
    caller = _CALLER.get()
    if not caller.restricted:
        return True
    if store == AUDIT_STORE:
        return caller.allows(Operation.AUDIT, store)
    return any(caller.allows(op, store) for op in Operation if op not in (Operation.PEER, Operation.AUDIT))


def allows(operation: str, store: str, stream: str | None = None) -> bool:
    return _CALLER.get().allows(operation, store, stream)


def require(operation: str, store: str, stream: str | None = None) -> None:
    """Raises PermissionDeniedError naming the operation and resource when not allowed."""
    caller = _CALLER.get()
    if caller.allows(operation, store, stream):
        return
    where = f"store {store!r}" + (f" stream {stream!r}" if stream is not None else "")
    raise PermissionDeniedError(
        f"{caller.principal.name} may not {operation} on {where}", operation, where
    )
