"""Translation of asyncpg and socket errors into gater.errors — the one place it happens.

Owns: `translate` and the `translating` context manager every database call runs in.
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.

Outage errors (cannot connect, connection lost, pool closed, server shutting down, command
timeout) all become StorageUnavailableError("PostgreSQL unavailable: ..."), which servers map
to UNAVAILABLE: a caller during an outage gets a retryable answer within the command
timeout instead of hanging. A full disk (SQLSTATE 53100) is not an outage: it becomes
StorageFullError (RESOURCE_EXHAUSTED), which clients do not retry blindly.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import asyncpg

from gater.errors import (
    DuplicateEventIdError,
    GaterError,
    StorageFullError,
    StorageUnavailableError,
    StoreAlreadyExistsError,
    StoreNotFoundError,
)

__all__ = ["translate", "translating", "unavailable"]

_OUTAGE = (
    asyncpg.PostgresConnectionError,  # class 08, and asyncpg's ConnectionDoesNotExistError
    asyncpg.OperatorInterventionError,  # 57: admin/crash shutdown, cannot connect now, cancel
    asyncpg.InsufficientResourcesError,  # 53: too many connections, out of memory (disk full: above)
    asyncpg.ReadOnlySQLTransactionError,  # a standby after a failover
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock: retryable
    asyncpg.InterfaceError,  # connection closed under us, pool closed
    asyncpg.InternalClientError,  # protocol state broken by a connection terminated mid-use
    OSError,  # refused, reset, no such socket
    TimeoutError,  # connect timeout, command timeout
)

_KEY_VALUE = re.compile(r"\)=\((?:[^,]*, )?([^)]*)\)")


def unavailable(reason: str) -> StorageUnavailableError:
    return StorageUnavailableError(f"PostgreSQL unavailable: {reason}")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError) else f"{type(exc).__name__}: {text}"


def translate(exc: Exception, *, store_id: str | None = None) -> Exception:
    """The gater error for a driver error; `exc` itself when there is none (a bug: INTERNAL)."""
    if isinstance(exc, GaterError):
        return exc
    if isinstance(exc, asyncpg.UniqueViolationError):
        if exc.constraint_name == "stores_pkey" and store_id is not None:
            return StoreAlreadyExistsError(store_id)
        if exc.constraint_name == "events_event_id_key":
            match = _KEY_VALUE.search(exc.detail or "")
            return DuplicateEventIdError("events", match[1] if match else "?")
        return exc
    if isinstance(exc, asyncpg.ForeignKeyViolationError) and store_id is not None:
        return StoreNotFoundError(store_id)
    if isinstance(exc, asyncpg.DiskFullError):  # 53100: not an outage, retrying cannot help
        return StorageFullError(
            f"PostgreSQL has no disk space left ({_describe(exc)}); free space on the database "
            "server, then retry"
        )
    if isinstance(exc, TimeoutError):
        return unavailable("timed out waiting for the database")
    if isinstance(exc, _OUTAGE):
        return unavailable(_describe(exc))
    return exc


@contextlib.contextmanager
def translating(store_id: str | None = None) -> Iterator[None]:
    """Runs a block of database calls, raising gater errors for driver errors."""
    try:
        yield
    except GaterError:
        raise
    except Exception as exc:
        translated = translate(exc, store_id=store_id)
        if translated is exc:
            raise
        raise translated from exc
