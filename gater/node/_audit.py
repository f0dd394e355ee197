"""The audit log: every administrative operation, with who asked, when, on what, and how it
ended — refused ones included — appended to the stream `admin` of the reserved store
`_audit` (created when authentication is on).

Owns: `Auditor` (the CallHooks `audit` callable of a node, and the record of policy reloads)
and `AUDITED`, the methods it records. The records are ordinary events: append-only (the
database refuses to change or delete them), in global order, readable through ReadEvents of
the `_audit` store by principals the policy grants the `audit` operation.
Must not import gater.gateway.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from exesdb.v1 import subscriptions_pb2

from ..errors import GaterError, StoreAlreadyExistsError
from ..security import ADMIN_METHODS, AUDIT_STORE, AUDIT_STREAM
from ..security.audit import AuditRecord, audit_record, target_of
from ..store.base import EXPECT_ANY, NewEvent, StorageBackend

__all__ = ["AUDITED", "Auditor"]

log = logging.getLogger(__name__)

AUDITED = ADMIN_METHODS | {"/exesdb.v1.Subscriptions/NackEvent"}
"""Administrative calls; a NackEvent only when it parks or skips (a retry changes nothing)."""

_NACK_RETRY = subscriptions_pb2.NACK_ACTION_RETRY


class Auditor:
    """Appends audit records to the audit store; `start()` creates it if needed."""

    def __init__(self, backend: StorageBackend, store_id: str = AUDIT_STORE) -> None:
        self.backend = backend
        self.store_id = store_id
        self.recorded = 0

    async def start(self) -> None:
        with contextlib.suppress(StoreAlreadyExistsError):
            await self.backend.create_store(self.store_id)

    async def append(self, record: AuditRecord) -> None:
        event = NewEvent(record.event_id, record.event_type, record.data)
        try:
            store = await self.backend.open_store(self.store_id)
            await store.append(AUDIT_STREAM, [event], EXPECT_ANY)
            self.recorded += 1
        except GaterError as e:
            # The operation has happened (or been refused) whatever the log says: say so loudly.
            log.error("could not write the audit record", extra={"error": e.message, "record": event.data.decode()})

    async def __call__(self, method: str, request: Any, code: str, message: str) -> None:
        if method.endswith("/NackEvent") and request.action == _NACK_RETRY:
            return
        await self.append(audit_record(method.rsplit("/", 1)[1], target_of(method, request), code, message))

    async def policy_reloaded(self, outcome: str, detail: str) -> None:
        await self.append(audit_record("PolicyReload", {}, "OK" if outcome == "ok" else "FAILED_PRECONDITION", detail))
