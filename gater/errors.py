"""The one error tree of gater.

Owns: every exception the store, the servers and the client raise on purpose. Each class
names the gRPC status it maps to (`code`), so the status table lives here and nowhere else.
Must not import anything from gater (it sits at the bottom) nor grpc's runtime.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "DeadlineExceededError",
    "DuplicateEventIdError",
    "GaterError",
    "InvalidArgumentError",
    "LeaseLostError",
    "LimitExceededError",
    "NotFoundError",
    "PermissionDeniedError",
    "SnapshotNotFoundError",
    "StorageUnavailableError",
    "StoreAlreadyExistsError",
    "StoreNotFoundError",
    "SubscriptionNotFoundError",
    "UnauthenticatedError",
    "UnavailableError",
    "WrongExpectedVersionError",
]


class GaterError(Exception):
    """Root of every error gater raises on purpose. `code` is a grpc.StatusCode name."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(GaterError):
    """The caller sent a value that is not allowed; `field` names it ("events[2].event_id")."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class LimitExceededError(InvalidArgumentError):
    """A documented size limit was exceeded (batch size, message size)."""

    code = "RESOURCE_EXHAUSTED"


class WrongExpectedVersionError(GaterError):
    """An append's expected version did not hold; carries the stream's current version."""

    code = "FAILED_PRECONDITION"

    def __init__(self, stream_id: str, expected: str, current_version: int) -> None:
        super().__init__(
            f"wrong expected version for stream {stream_id!r}: expected {expected}, "
            f"current version is {current_version}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.current_version = current_version


class NotFoundError(GaterError):
    code = "NOT_FOUND"


class StoreNotFoundError(NotFoundError):
    def __init__(self, store_id: str) -> None:
        super().__init__(f"store {store_id!r} not found (create it with Stores.CreateStore)")
        self.store_id = store_id


class SnapshotNotFoundError(NotFoundError):
    pass


class SubscriptionNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"subscription {name!r} not found (create it with Subscriptions.SaveSubscription)"
        )
        self.name = name


class AlreadyExistsError(GaterError):
    code = "ALREADY_EXISTS"


class StoreAlreadyExistsError(AlreadyExistsError):
    def __init__(self, store_id: str) -> None:
        super().__init__(f"store {store_id!r} already exists")
        self.store_id = store_id


class DuplicateEventIdError(AlreadyExistsError):
    """An event id is already used in the store by another event (not an idempotent repeat)."""

    def __init__(self, field: str, event_id: str) -> None:
        super().__init__(
            f"{field}: event id {event_id} already exists in this store "
            "(and the request is not an exact repeat of the append that wrote it)"
        )
        self.field = field
        self.event_id = event_id


class LeaseLostError(GaterError):
    """This node no longer owns the dispatch of a persistent subscription (another node took
    it over); the consumer should reconnect (a gateway does so by itself)."""

    code = "UNAVAILABLE"


class UnavailableError(GaterError):
    """No healthy node, or the storage cannot be reached now; the call may be retried."""

    code = "UNAVAILABLE"


class StorageUnavailableError(UnavailableError):
    pass


class DeadlineExceededError(GaterError):
    code = "DEADLINE_EXCEEDED"


class UnauthenticatedError(GaterError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(GaterError):
    code = "PERMISSION_DENIED"
