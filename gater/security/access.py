"""What a call asks to do: the operation, store and stream of each exesdb.v1 request.

Owns: `access_of(method, request, default_store)` — a pure function from a decoded request
to the `Access` the policy decides on — and `ADMIN_METHODS`, the administrative operations
that are audited. Nodes and gateways use the same table, so both enforce the same rules.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exesdb.v1 import subscriptions_pb2

from .policy import ALL_STREAM, Operation

__all__ = ["ADMIN_METHODS", "AUDIT_STORE", "AUDIT_STREAM", "Access", "access_of", "stream_of_selector"]

AUDIT_STORE = "_audit"
"""The reserved store of the audit log (no store id a client creates starts with "_")."""
AUDIT_STREAM = "admin"
"""Its one stream: one event per administrative operation."""

ADMIN_METHODS = frozenset(
    {
        "/exesdb.v1.Stores/CreateStore",
        "/exesdb.v1.Stores/RemoveStore",
        "/exesdb.v1.Subscriptions/SaveSubscription",
        "/exesdb.v1.Subscriptions/RemoveSubscription",
        "/exesdb.v1.Subscriptions/ReplayParkedEvents",
        "/exesdb.v1.Snapshots/DeleteSnapshot",
        "/exesdb.v1.Stores/ExportStore",
        "/exesdb.v1.Stores/ImportEvents",
    }
)
"""Calls recorded in the audit log (NackEvent is audited when it parks or skips)."""


@dataclass(frozen=True, slots=True)
class Access:
    operation: Operation
    store: str
    """The store ("" for calls about the cluster, "*" for listings across stores)."""
    stream: str | None = None
    """The stream, `$all`, `$audit`; None when the call is about the store as a whole (the
    answer is then filtered to what the principal may see)."""

    def describe(self) -> str:
        where = f"store {self.store!r}" if self.store not in ("", "*") else "the cluster"
        return f"{where}" + (f" stream {self.stream!r}" if self.stream is not None else "")


def stream_of_selector(kind: int, selector: str) -> str | None:
    """The one stream a subscription selects, `$all`, or None (by type or pattern: filtered)."""
    if kind != subscriptions_pb2.SUBSCRIPTION_TYPE_BY_STREAM:
        return None
    if selector in ("", ALL_STREAM):
        return ALL_STREAM
    return selector[1:] if selector.startswith("$") else selector


def _read_stream(stream_id: str) -> tuple[Operation, str]:
    if stream_id.startswith("$") and stream_id != ALL_STREAM:
        return Operation.READ, stream_id[1:]  # the seed's "$<stream>" spelling
    return Operation.READ, stream_id


def access_of(method: str, request: Any, default_store: str) -> Access:
    """The Access of a call; `request` is the decoded exesdb.v1 request message."""
    service, _, name = method.rpartition("/")
    if name == "AppendSession":
        # A session is checked per append, as if each were an AppendEvents call.
        request, name = request.append, "AppendEvents"
        method = f"{service}/{name}"

    def store(value: str) -> str:
        return value or default_store

    if getattr(request, "store", None) == AUDIT_STORE:
        # The audit log: gateways (peers) write their refusals there, auditors read it.
        if method.endswith("/AppendEvents"):
            return Access(Operation.PEER, AUDIT_STORE)
        return Access(Operation.AUDIT, AUDIT_STORE)

    if service == "/exesdb.v1.Cluster":
        return Access(Operation.CLUSTER_READ, "")
    if service == "/exesdb.v1.Stores":
        if name == "ListStores":
            return Access(Operation.READ, "*")
        if name == "GetStoreStatus":
            if request.store_id == AUDIT_STORE:
                return Access(Operation.AUDIT, AUDIT_STORE)
            return Access(Operation.READ, store(request.store_id))
        return Access(Operation.STORE_ADMIN, store(request.store_id))
    if service == "/exesdb.v1.Streams":
        if name == "AppendEvents":
            return Access(Operation.APPEND, store(request.store), request.stream_id)
        if name == "ListStreams":
            return Access(Operation.READ, store(request.store))
        operation, stream = _read_stream(request.stream_id)
        return Access(operation, store(request.store), stream)
    if service == "/exesdb.v1.Snapshots":
        stream = getattr(request, "stream_uuid", "") or None
        if name == "RecordSnapshot":
            stream = request.snapshot.stream_uuid
        return Access(Operation.SNAPSHOT, store(request.store), stream)
    if service == "/exesdb.v1.Subscriptions":
        if name == "Subscribe":
            if request.subscription_name not in ("", "transient"):
                return Access(Operation.SUBSCRIBE, store(request.store))  # checked against its definition
            return Access(Operation.SUBSCRIBE, store(request.store), stream_of_selector(request.type, request.selector))
        if name in ("AckEvent", "NackEvent", "ListSubscriptions"):
            return Access(Operation.SUBSCRIBE, store(request.store))
        if name == "SaveSubscription":
            stream = stream_of_selector(request.type, request.selector)
            return Access(Operation.SUBSCRIPTION_ADMIN, store(request.store), stream)
        return Access(Operation.SUBSCRIPTION_ADMIN, store(request.store))
    raise ValueError(f"no access rule for {method}")
