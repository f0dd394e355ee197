"""Audit records: what one administrative operation was, as the event the audit log keeps.

Owns: `audit_record` (the `admin_operation:v1` event: principal, time, operation, target,
outcome) and `target_of` (what a call was about, from its request), shared by nodes (which
append them) and gateways (which send the ones they refused to a node).
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from exesdb.v1 import subscriptions_pb2

from ..ids import uuid7
from .context import current_principal

__all__ = ["EVENT_TYPE", "AuditRecord", "audit_record", "target_of"]

EVENT_TYPE = "admin_operation:v1"


def target_of(method: str, request: Any) -> dict[str, Any]:
    """What an administrative call was about, from its request."""
    out: dict[str, Any] = {}
    for field in (
        "store", "store_id", "name", "subscription_name", "stream_id", "source_uuid", "stream_uuid", "version",
        "tombstone", "restart",
    ):
        if hasattr(request, field) and getattr(request, field):
            out[field] = getattr(request, field)
    if method.endswith("/NackEvent"):
        out["action"] = subscriptions_pb2.NackAction.Name(request.action)
        out["positions"] = list(request.positions)[:100]
    return out


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit event (its id is time-ordered, its body JSON)."""

    event_id: str
    data: bytes
    event_type: str = EVENT_TYPE


def audit_record(operation: str, target: dict[str, Any], code: str, message: str, via: str = "") -> AuditRecord:
    """The record of one administrative operation by the current principal: principal, time
    (RFC 3339, UTC), operation, target, outcome (the status code) and, for a failure, why."""
    body: dict[str, Any] = {
        "principal": current_principal().name,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "operation": operation,
        "target": target,
        "outcome": code,
    }
    if message and code != "OK":
        body["message"] = message[:500]
    if via:
        body["via"] = via
    return AuditRecord(str(uuid7()), json.dumps(body, separators=(",", ":")).encode())
