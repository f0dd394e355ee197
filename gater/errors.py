"""The one error tree of gater, and the one codec between it and gRPC statuses.

Owns: every exception the store, the servers and the client raise on purpose, and
`encode_status` / `decode_status`, which turn an error into (code, message, google.rpc.Status
details) and back. Servers (nodes and gateways) encode with it, the client and the node that
relays to another node decode with it: an error class is chosen from the status code and the
typed details, never from the text of the message.

Every error travels with:
- a `google.rpc.ErrorInfo` (domain "exesdb.v1", `reason` naming the class, `metadata` holding
  the fields that rebuild it) — what our own client reads;
- the standard typed details other languages' clients know: `BadRequest` for bad input,
  `ResourceInfo` for NOT_FOUND / ALREADY_EXISTS, `QuotaFailure` for limits, and
  exesdb.v1's `WrongExpectedVersion` and `FieldViolation`.

Must not import anything from gater (it sits at the bottom) nor grpc's runtime: codes are
passed as their names ("NOT_FOUND").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from exesdb.v1 import types_pb2

__all__ = [
    "DOMAIN",
    "STATUS_DETAILS_KEY",
    "AlreadyExistsError",
    "AppendConditionFailedError",
    "CallCancelledError",
    "DeadlineExceededError",
    "DuplicateEventIdError",
    "GaterError",
    "ImportMismatchError",
    "InternalError",
    "InvalidArgumentError",
    "LeaseLostError",
    "LimitExceededError",
    "NotFoundError",
    "PermissionDeniedError",
    "RemoteError",
    "SnapshotNotFoundError",
    "StorageFullError",
    "StorageUnavailableError",
    "StoreAlreadyExistsError",
    "StoreNotFoundError",
    "SubscriptionNotFoundError",
    "UnauthenticatedError",
    "UnavailableError",
    "WrongExpectedVersionError",
    "decode_status",
    "encode_status",
]

DOMAIN = "exesdb.v1"
"""ErrorInfo.domain of every error gater sends."""
STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailing-metadata key that carries a serialized google.rpc.Status."""

_CODE_NUMBERS = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip

_BY_REASON: dict[str, type[GaterError]] = {}


class GaterError(Exception):
    """Root of every error gater raises on purpose.

    `code` is the grpc.StatusCode name it maps to; `reason` the ErrorInfo reason that names
    the class on the wire. A subclass that adds fields returns them from `info()` and
    rebuilds itself from them in `from_info()`.
    """

    code: ClassVar[str] = "INTERNAL"
    reason: ClassVar[str] = "INTERNAL"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("reason"):
            _BY_REASON[cls.reason] = cls

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def info(self) -> dict[str, str]:
        """ErrorInfo.metadata: the fields `from_info` rebuilds the error from."""
        return {}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(message)

    def typed_details(self) -> list[Message]:
        """The standard google.rpc (and exesdb.v1) details for clients in any language."""
        return []


class InternalError(GaterError):
    """A bug on the server: the log has the details, the caller gets none."""

    reason = "INTERNAL"


class InvalidArgumentError(GaterError):
    """The caller sent a value that is not allowed; `field` names it ("events[2].event_id")."""

    code = "INVALID_ARGUMENT"
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description)
        self.field = field
        self.description = description

    def info(self) -> dict[str, str]:
        return {"field": self.field, "description": self.description}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("field", ""), info.get("description", message))

    def typed_details(self) -> list[Message]:
        return [
            types_pb2.FieldViolation(field=self.field, description=self.description),
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.description)
                ]
            ),
        ]


class LimitExceededError(InvalidArgumentError):
    """A documented limit was exceeded (batch size, message size, name length, ...); `limit`
    names the setting ("max_events_per_append")."""

    code = "RESOURCE_EXHAUSTED"
    reason = "LIMIT_EXCEEDED"

    def __init__(self, field: str, description: str, limit: str = "") -> None:
        super().__init__(field, description)
        self.limit = limit

    def info(self) -> dict[str, str]:
        return {**super().info(), "limit": self.limit}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("field", ""), info.get("description", message), info.get("limit", ""))

    def typed_details(self) -> list[Message]:
        quota = error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject=self.limit or self.field, description=self.description)]
        )
        return [*super().typed_details(), quota]


class StorageFullError(GaterError):
    """The storage has no room left (disk full, quota); nothing was written. Free space, then
    retry."""

    code = "RESOURCE_EXHAUSTED"
    reason = "STORAGE_FULL"

    def typed_details(self) -> list[Message]:
        return [
            error_details_pb2.QuotaFailure(
                violations=[error_details_pb2.QuotaFailure.Violation(subject="storage", description=self.message)]
            )
        ]


class WrongExpectedVersionError(GaterError):
    """An append's expected version did not hold; carries the stream's current version."""

    code = "FAILED_PRECONDITION"
    reason = "WRONG_EXPECTED_VERSION"

    def __init__(self, stream_id: str, expected: str, current_version: int) -> None:
        super().__init__(
            f"wrong expected version for stream {stream_id!r}: expected {expected}, "
            f"current version is {current_version}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.current_version = current_version

    def info(self) -> dict[str, str]:
        return {"stream_id": self.stream_id, "expected": self.expected, "current_version": str(self.current_version)}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("stream_id", ""), info.get("expected", ""), _int(info.get("current_version"), -1))

    def typed_details(self) -> list[Message]:
        return [
            types_pb2.WrongExpectedVersion(
                stream_id=self.stream_id, expected=self.expected, current_version=self.current_version
            )
        ]


class AppendConditionFailedError(GaterError):
    """A conditional append's query matched an event after its `after` position; carries the
    first such position and the store's head when the append was checked."""

    code = "FAILED_PRECONDITION"
    reason = "APPEND_CONDITION_FAILED"

    def __init__(self, conflicting_position: int, head: int) -> None:
        super().__init__(
            f"append condition failed: the event at position {conflicting_position} matches the "
            f"condition's query (head {head})"
        )
        self.conflicting_position = conflicting_position
        self.head = head

    def info(self) -> dict[str, str]:
        return {"conflicting_position": str(self.conflicting_position), "head": str(self.head)}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(_int(info.get("conflicting_position"), -1), _int(info.get("head"), -1))

    def typed_details(self) -> list[Message]:
        return [types_pb2.AppendConditionFailed(conflicting_position=self.conflicting_position, head=self.head)]


class ImportMismatchError(GaterError):
    """An import batch that does not fit the store: the store is not empty and not a prefix
    of what is imported (a stored event differs, or the batch does not continue the head).
    Carries the position where they part and the store's head."""

    code = "FAILED_PRECONDITION"
    reason = "IMPORT_MISMATCH"

    def __init__(self, position: int, head: int, why: str) -> None:
        super().__init__(f"import refused at position {position} (the store's head is {head}): {why}")
        self.position = position
        self.head = head

    def info(self) -> dict[str, str]:
        return {"position": str(self.position), "head": str(self.head)}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        error = cls(_int(info.get("position"), -1), _int(info.get("head"), -1), "")
        error.message = message
        return error


class NotFoundError(GaterError):
    code = "NOT_FOUND"
    reason = "NOT_FOUND"


class _Resource:
    """Mixin: the error is about one named resource (google.rpc.ResourceInfo)."""

    resource_type: ClassVar[str] = ""
    message: str

    def resource_name(self) -> str:
        raise NotImplementedError

    def typed_details(self) -> list[Message]:
        return [
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type, resource_name=self.resource_name(), description=self.message
            )
        ]


class StoreNotFoundError(_Resource, NotFoundError):
    reason = "STORE_NOT_FOUND"
    resource_type = "store"

    def __init__(self, store_id: str) -> None:
        super().__init__(f"store {store_id!r} not found (create it with Stores.CreateStore)")
        self.store_id = store_id

    def resource_name(self) -> str:
        return self.store_id

    def info(self) -> dict[str, str]:
        return {"store_id": self.store_id}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("store_id", ""))


class SnapshotNotFoundError(_Resource, NotFoundError):
    reason = "SNAPSHOT_NOT_FOUND"
    resource_type = "snapshot"

    def __init__(self, source_uuid: str, stream_uuid: str, version: int | None = None) -> None:
        at = "any version" if version is None else f"version {version}"
        super().__init__(f"no snapshot of source {source_uuid!r} and stream {stream_uuid!r} at {at}")
        self.source_uuid = source_uuid
        self.stream_uuid = stream_uuid
        self.version = version

    def resource_name(self) -> str:
        at = "" if self.version is None else f"@{self.version}"
        return f"{self.source_uuid}/{self.stream_uuid}{at}"

    def info(self) -> dict[str, str]:
        version = "" if self.version is None else str(self.version)
        return {"source_uuid": self.source_uuid, "stream_uuid": self.stream_uuid, "version": version}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        version = info.get("version", "")
        return cls(info.get("source_uuid", ""), info.get("stream_uuid", ""), _int(version, None) if version else None)


class SubscriptionNotFoundError(_Resource, NotFoundError):
    reason = "SUBSCRIPTION_NOT_FOUND"
    resource_type = "subscription"

    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} not found (create it with Subscriptions.SaveSubscription)")
        self.name = name

    def resource_name(self) -> str:
        return self.name

    def info(self) -> dict[str, str]:
        return {"name": self.name}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("name", ""))


class AlreadyExistsError(GaterError):
    code = "ALREADY_EXISTS"
    reason = "ALREADY_EXISTS"


class StoreAlreadyExistsError(_Resource, AlreadyExistsError):
    reason = "STORE_ALREADY_EXISTS"
    resource_type = "store"

    def __init__(self, store_id: str) -> None:
        super().__init__(f"store {store_id!r} already exists")
        self.store_id = store_id

    def resource_name(self) -> str:
        return self.store_id

    def info(self) -> dict[str, str]:
        return {"store_id": self.store_id}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("store_id", ""))


class DuplicateEventIdError(_Resource, AlreadyExistsError):
    """An event id is already used in the store by another event (not an idempotent repeat)."""

    reason = "DUPLICATE_EVENT_ID"
    resource_type = "event"

    def __init__(self, field: str, event_id: str) -> None:
        super().__init__(
            f"{field}: event id {event_id} already exists in this store "
            "(and the request is not an exact repeat of the append that wrote it)"
        )
        self.field = field
        self.event_id = event_id

    def resource_name(self) -> str:
        return self.event_id

    def info(self) -> dict[str, str]:
        return {"field": self.field, "event_id": self.event_id}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(info.get("field", ""), info.get("event_id", ""))


class UnavailableError(GaterError):
    """No healthy node, or the storage cannot be reached now; the call may be retried."""

    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


class StorageUnavailableError(UnavailableError):
    reason = "STORAGE_UNAVAILABLE"


class LeaseLostError(UnavailableError):
    """This node no longer owns the dispatch of a persistent subscription (another node took
    it over); the consumer should reconnect (a gateway does so by itself)."""

    reason = "LEASE_LOST"


class DeadlineExceededError(GaterError):
    code = "DEADLINE_EXCEEDED"
    reason = "DEADLINE_EXCEEDED"


class CallCancelledError(GaterError):
    """The call was cancelled (by the caller, or by a server shutting down)."""

    code = "CANCELLED"
    reason = "CANCELLED"


class UnauthenticatedError(GaterError):
    code = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"


class PermissionDeniedError(GaterError):
    """The caller is known but may not do this; `operation` and `resource` say what."""

    code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"

    def __init__(self, message: str, operation: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.operation = operation
        self.resource = resource

    def info(self) -> dict[str, str]:
        return {"operation": self.operation, "resource": self.resource}

    @classmethod
    def from_info(cls, message: str, info: Mapping[str, str]) -> GaterError:
        return cls(message, info.get("operation", ""), info.get("resource", ""))


class RemoteError(GaterError):
    """A status no class of gater names (UNIMPLEMENTED, ABORTED, DATA_LOSS, ...), as
    received; its `code` is the one the server sent."""

    reason = ""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc] - per instance here, per class elsewhere


# -- the codec --------------------------------------------------------------------------------

_BY_CODE: dict[str, type[GaterError]] = {
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "UNAVAILABLE": UnavailableError,
    "DEADLINE_EXCEEDED": DeadlineExceededError,
    "CANCELLED": CallCancelledError,
    "UNAUTHENTICATED": UnauthenticatedError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "INTERNAL": InternalError,
}
"""For statuses without our ErrorInfo (from a proxy, from grpc itself): the class of a code."""


def _int(value: str | None, default: Any) -> Any:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def encode_status(error: GaterError) -> tuple[str, str, bytes]:
    """(code name, message, serialized google.rpc.Status with the typed details) of an
    error; the bytes go in the `grpc-status-details-bin` trailer."""
    code = error.code
    details = [_packed(d) for d in error.typed_details()]
    if error.reason:
        details.append(_packed(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.info())))
    status = status_pb2.Status(code=_CODE_NUMBERS.get(code, 2), message=error.message, details=details)
    return code, error.message, status.SerializeToString()


def _unpack(details: bytes | None) -> list[Message]:
    if not details:
        return []
    try:
        status = status_pb2.Status.FromString(details)
    except DecodeError:
        return []  # a garbled detail must not hide the status itself
    out: list[Message] = []
    for packed in status.details:
        for cls in (
            error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, types_pb2.WrongExpectedVersion,
            types_pb2.AppendConditionFailed,
        ):
            if packed.Is(cls.DESCRIPTOR):
                message = cls()
                packed.Unpack(message)
                out.append(message)
    return out


def decode_status(code: str, message: str, details: bytes | None = None) -> GaterError:
    """The gater error for a status (its code's name, message and `grpc-status-details-bin`
    bytes): the class our ErrorInfo names, else the class of the standard details, else the
    class of the code. The server's message is kept as it came."""
    unpacked = _unpack(details)
    error: GaterError | None = None
    for d in unpacked:
        if isinstance(d, error_details_pb2.ErrorInfo) and d.domain == DOMAIN:
            cls = _BY_REASON.get(d.reason)
            if cls is not None and cls.code == code:
                error = cls.from_info(message, d.metadata)
                break
    if error is None:
        error = _from_standard(code, message, unpacked)
    error.message = message
    error.args = (message,)
    return error


def _from_standard(code: str, message: str, details: list[Message]) -> GaterError:
    for d in details:
        if isinstance(d, types_pb2.WrongExpectedVersion) and code == "FAILED_PRECONDITION":
            return WrongExpectedVersionError(d.stream_id, d.expected, d.current_version)
        if isinstance(d, types_pb2.AppendConditionFailed) and code == "FAILED_PRECONDITION":
            return AppendConditionFailedError(d.conflicting_position, d.head)
        if isinstance(d, error_details_pb2.BadRequest) and d.field_violations:
            v = d.field_violations[0]
            if code == "INVALID_ARGUMENT":
                return InvalidArgumentError(v.field, v.description)
            if code == "RESOURCE_EXHAUSTED":
                return LimitExceededError(v.field, v.description)
    if code == "INVALID_ARGUMENT":
        return InvalidArgumentError("", message)
    if code == "RESOURCE_EXHAUSTED":
        return LimitExceededError("", message)
    cls = _BY_CODE.get(code)
    return cls(message) if cls is not None else RemoteError(code, message)
