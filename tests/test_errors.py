"""The one status codec: every error class survives encode → decode, chosen from the code and
the typed details alone (the message's text plays no part)."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2, status_pb2

from gater import errors as e

EXAMPLES: list[e.GaterError] = [
    e.InternalError("boom"),
    e.InvalidArgumentError("events[2].event_id", "must be a UUID"),
    e.LimitExceededError("events", "at most 10 events per append", "max_events_per_append"),
    e.StorageFullError("the disk of the data directory is full"),
    e.WrongExpectedVersionError("orders-1", "no_stream", 4),
    e.NotFoundError("nothing here"),
    e.StoreNotFoundError("billing"),
    e.SnapshotNotFoundError("gh-1", "greenhouse-1", 3),
    e.SnapshotNotFoundError("gh-1", "greenhouse-1"),
    e.SubscriptionNotFoundError("billing"),
    e.AlreadyExistsError("it exists"),
    e.StoreAlreadyExistsError("billing"),
    e.DuplicateEventIdError("events[0].event_id", "3f0c8a4e-8a52-4c6e-9d55-3b1f4a1b2c01"),
    e.UnavailableError("no healthy node"),
    e.StorageUnavailableError("PostgreSQL unavailable"),
    e.LeaseLostError("another node dispatches it"),
    e.DeadlineExceededError("too late"),
    e.CallCancelledError("cancelled"),
    e.UnauthenticatedError("who are you"),
    e.PermissionDeniedError("no", "append", "store default"),
    e.RemoteError("UNIMPLEMENTED", "not here"),
]


BY_CODE_ONLY = {
    "INTERNAL": e.InternalError,
    "INVALID_ARGUMENT": e.InvalidArgumentError,
    "RESOURCE_EXHAUSTED": e.LimitExceededError,
    "NOT_FOUND": e.NotFoundError,
    "ALREADY_EXISTS": e.AlreadyExistsError,
    "UNAVAILABLE": e.UnavailableError,
    "DEADLINE_EXCEEDED": e.DeadlineExceededError,
    "CANCELLED": e.CallCancelledError,
    "UNAUTHENTICATED": e.UnauthenticatedError,
    "PERMISSION_DENIED": e.PermissionDeniedError,
}


def _fields(error: e.GaterError) -> dict[str, object]:
    return {k: v for k, v in vars(error).items() if k != "message"}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip(error: e.GaterError) -> None:
    code, message, details = e.encode_status(error)
    assert code == error.code and message == error.message
    back = e.decode_status(code, message, details)
    assert type(back) is type(error) and back.code == error.code
    assert _fields(back) == _fields(error) and back.message == error.message


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda x: type(x).__name__)
def test_the_message_text_never_picks_the_class(error: e.GaterError) -> None:
    code, _, details = e.encode_status(error)
    # Any text at all (even one that reads like another error) decodes to the same class.
    for text in ("", "store 'x' not found", "events[0]: whatever", "subscription 'y' not found"):
        back = e.decode_status(code, text, details)
        assert type(back) is type(error) and back.message == text
    # Without details only the code decides: text never moves it to a subclass.
    plain = e.decode_status(code, "store 'x' not found")
    assert plain.code == error.code and type(plain) is BY_CODE_ONLY.get(code, e.RemoteError)


def test_standard_details_for_other_languages() -> None:
    _, _, raw = e.encode_status(e.StoreNotFoundError("billing"))
    packed = status_pb2.Status.FromString(raw).details
    resource = error_details_pb2.ResourceInfo()
    assert any(p.Unpack(resource) for p in packed if p.Is(resource.DESCRIPTOR))
    assert (resource.resource_type, resource.resource_name) == ("store", "billing")
    _, _, raw = e.encode_status(e.InvalidArgumentError("events", "at least one event is needed"))
    bad = error_details_pb2.BadRequest()
    assert any(p.Unpack(bad) for p in status_pb2.Status.FromString(raw).details if p.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == "events"
    # A status from something that is not gater (a proxy) still maps by its standard details.
    foreign = status_pb2.Status(code=3)
    foreign.details.add().Pack(bad)
    back = e.decode_status("INVALID_ARGUMENT", "bad", foreign.SerializeToString())
    assert isinstance(back, e.InvalidArgumentError) and back.field == "events"


def test_garbled_details_keep_the_status() -> None:
    back = e.decode_status("NOT_FOUND", "gone", b"\xff\xff not a status")
    assert type(back) is e.NotFoundError and back.message == "gone"
