"""Which events a subscription wants: the selector of a subscription as a pure filter.

Owns: `SubscriptionKind` (mirrors exesdb.v1.SubscriptionType), `make_filter`, which validates a
type + selector + pattern and compiles them into a frozen `EventFilter`, and `EventView`, the
per-event cache that lets many filters look at one event while its record is decoded and its
JSON parsed at most once.
Must not import grpc, asyncio, gater.node or gater.gateway; it reads no clock and does no I/O.

Matching rules (the contract the API documents in subscriptions.proto):

- BY_STREAM: selector "$all" (every event), a stream id, or the seed's "$<stream>" spelling
  ("$orders-1" is stream "orders-1"); a selector ending in "*" is a prefix of stream ids
  ("order-*": every stream whose id starts with "order-", as `store._query.check_prefix`
  reads it; not "orders"). Never decodes the record.
- BY_EVENT_TYPE: the event type, compared exactly. Never decodes the record.
- BY_EVENT_PAYLOAD: a partial, nested match on the JSON body: every key of the pattern must be
  in the body with an equal value; nested objects match partially, lists must be equal element
  by element, the string "_" means "present, any value". Numbers compare by value (21 matches
  21.0: patterns come from google.protobuf.Struct, where every number is a double), booleans
  only match booleans. A body that is not a JSON object never matches.
- BY_EVENT_PATTERN: the same partial match over the record's fields: stream_id, event_type,
  event_id, content_type, metadata_content_type, version, position, and data / metadata (the
  parsed JSON objects, matched like a payload pattern).

Hot path: a tailer that fans one event out to many subscribers builds one `EventView` per event
and passes it to every filter's `matches`; plain `RecordedEvent`s are accepted too.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from exesdb.v1 import types_pb2
from gater.errors import InvalidArgumentError
from gater.store._query import Query, QueryItem, check_prefix, check_query, matches
from gater.store.base import ALL_STREAM, RecordedEvent

__all__ = [
    "PATTERN_FIELDS",
    "WILDCARD",
    "EventFilter",
    "EventView",
    "SubscriptionKind",
    "make_filter",
    "match_partial",
]

WILDCARD = "_"
"""As a pattern value: "this field is present, with any value" (the seed's `%{intensity: _}`)."""

_STRING_FIELDS = ("stream_id", "event_type", "event_id", "content_type", "metadata_content_type")
_INT_FIELDS = ("version", "position")
_JSON_FIELDS = ("data", "metadata")
PATTERN_FIELDS = frozenset(_STRING_FIELDS + _INT_FIELDS + _JSON_FIELDS)
"""The record fields a BY_EVENT_PATTERN pattern may name."""

# Fields a RecordedEvent carries itself: matching on them needs no decoding.
_CHEAP_FIELDS = frozenset({"stream_id", "event_type", "event_id", "version", "position"})

_MAX_ID_BYTES = 256


class SubscriptionKind(enum.IntEnum):
    """What a subscription selects on; the values are exesdb.v1.SubscriptionType's numbers, so
    `SubscriptionKind(request.type)` converts a request's enum."""

    BY_STREAM = 0
    BY_EVENT_TYPE = 1
    BY_EVENT_PATTERN = 2
    BY_EVENT_PAYLOAD = 3
    BY_QUERY = 4


_UNSET: Any = object()


class EventView:
    """One event as filters see it: the RecordedEvent's own fields, plus the decoded record and
    the parsed JSON body and metadata, each computed on first use and then cached.

    Build one per event and share it between every filter that looks at the event. Not
    thread-safe (it does not need to be: one tailer task owns it).
    """

    __slots__ = (
        "event",
        "position",
        "stream_id",
        "version",
        "event_id",
        "event_type",
        "_record",
        "_data_json",
        "_metadata_json",
    )

    def __init__(self, event: RecordedEvent) -> None:
        self.event = event
        self.position = event.position
        self.stream_id = event.stream_id
        self.version = event.version
        self.event_id = event.event_id
        self.event_type = event.event_type
        self._record: Any = _UNSET
        self._data_json: Any = _UNSET
        self._metadata_json: Any = _UNSET

    @classmethod
    def of(cls, event: RecordedEvent | EventView) -> EventView:
        """`event` itself when it is a view already, else a new view of it."""
        return event if isinstance(event, EventView) else cls(event)

    @property
    def record(self) -> types_pb2.EventRecord:
        """The decoded exesdb.v1.EventRecord (decoded once). Treat it as read-only.
        A corrupt encoding raises google.protobuf.message.DecodeError: that is a storage bug,
        not something a filter should hide."""
        if self._record is _UNSET:
            self._record = types_pb2.EventRecord.FromString(self.event.encoded)
        return self._record

    @property
    def data_json(self) -> dict[str, Any] | None:
        """The body parsed as a JSON object; None when it is not a JSON object."""
        if self._data_json is _UNSET:
            record = self.record
            self._data_json = _json_object(record.data, record, "data_json")
        return self._data_json

    @property
    def metadata_json(self) -> dict[str, Any] | None:
        """The metadata parsed as a JSON object; None when it is not a JSON object."""
        if self._metadata_json is _UNSET:
            record = self.record
            self._metadata_json = _json_object(record.metadata, record, "metadata_json")
        return self._metadata_json


def _json_object(raw: bytes, record: types_pb2.EventRecord, struct_field: str) -> dict | None:
    """Parses `raw` as a JSON object, whatever the content type says (a body that parses is
    matched; one that does not never matches). Falls back on the Struct twin of the field when
    the bytes are empty and the Struct is set."""
    if not raw:
        if record.HasField(struct_field):
            return json_format.MessageToDict(getattr(record, struct_field))
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return None
    return value if isinstance(value, dict) else None


# --- the partial match -------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, actual: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), booleans only with booleans, lists and
    objects element by element."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if _is_number(expected):
        return _is_number(actual) and expected == actual
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    if expected is None:
        return actual is None
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_equal(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_equal(v, actual[k]) for k, v in expected.items())
        )
    return False


def match_partial(pattern: Any, value: Any) -> bool:
    """True when `value` matches `pattern`: "_" matches anything; an object pattern matches an
    object holding every key of the pattern with a matching value (extra keys are fine, and
    nested objects match the same way); anything else must be equal (see module docstring)."""
    if isinstance(pattern, str) and pattern == WILDCARD:
        return True
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if key not in value or not match_partial(sub, value[key]):
                return False
        return True
    return _equal(pattern, value)


# --- the filter ----------------------------------------------------------------------------


Matcher = Callable[["RecordedEvent | EventView"], bool]


def _match_all(event: RecordedEvent | EventView) -> bool:
    return True


@dataclass(frozen=True, slots=True, eq=False)
class EventFilter:
    """A validated, compiled subscription selector. Build it with `make_filter`.

    Two filters are equal when they select the same events by the same rule (kind, canonical
    selector and pattern), which is how a Subscribe request is checked against a saved
    persistent subscription.
    """

    kind: SubscriptionKind
    selector: str
    """Canonical: for BY_STREAM "$all", the plain stream id ("$orders-1" becomes
    "orders-1") or the prefix with its "*" ("order-*"); for BY_EVENT_TYPE the type; "" for the
    pattern kinds."""
    pattern: Mapping[str, Any] | None
    """A private deep copy of the pattern (pattern kinds), None otherwise. Do not mutate."""
    stream: str | None
    """The one stream a BY_STREAM subscription reads (start positions are then stream
    versions); None when the subscription spans the store (start positions are global)."""
    needs_record: bool
    """True when `matches` may decode the record / parse JSON: pass an EventView then."""
    _match: Matcher = field(repr=False)
    query: Query | None = None
    """BY_QUERY: the DCB query, which lets catch-up read from the store's indexes."""
    stream_prefix: str = ""
    """BY_STREAM with a "prefix*" selector: the prefix ("order-"), which lets catch-up read
    from the store's (category, position) index."""

    @property
    def indexed(self) -> tuple[Query, str] | None:
        """(query, stream prefix) for `EventStore.read_query` when the store's indexes answer
        this filter's catch-up (BY_QUERY, BY_STREAM "prefix*"); None when it scans `$all`."""
        if self.query is not None or self.stream_prefix:
            return (self.query or Query(), self.stream_prefix)
        return None

    def matches(self, event: RecordedEvent | EventView) -> bool:
        """Whether the subscription wants `event`. Accepts a RecordedEvent or, better when
        several filters look at the same event, a shared EventView (see module docstring).
        Never raises on a body that is not JSON."""
        return self._match(event)

    def _key(self) -> tuple[Any, ...]:
        return (self.kind, self.selector, _canonical_json(self.pattern))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventFilter):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _coerce_kind(kind: SubscriptionKind | int | str) -> SubscriptionKind:
    if isinstance(kind, SubscriptionKind):
        return kind
    if isinstance(kind, str):
        name = kind.strip().upper().removeprefix("SUBSCRIPTION_TYPE_")
        try:
            return SubscriptionKind[name]
        except KeyError:
            pass
    elif isinstance(kind, int) and not isinstance(kind, bool):
        try:
            return SubscriptionKind(kind)
        except ValueError:
            pass
    names = ", ".join(k.name for k in SubscriptionKind)
    raise InvalidArgumentError("type", f"unknown subscription type {kind!r} (one of {names})")


def make_filter(
    kind: SubscriptionKind | int | str,
    selector: str = "",
    pattern: Mapping[str, Any] | None = None,
) -> EventFilter:
    """Validates a subscription's type, selector and pattern and compiles them into a filter.

    `kind`: a SubscriptionKind, the proto enum's number, or its name ("BY_STREAM" or
    "SUBSCRIPTION_TYPE_BY_STREAM", any case). `selector`: for BY_STREAM and BY_EVENT_TYPE; must
    be "" for the pattern kinds. `pattern`: a JSON-like dict (e.g.
    `json_format.MessageToDict(request.pattern)`) for BY_EVENT_PATTERN and BY_EVENT_PAYLOAD;
    must be None or empty for the other kinds. The pattern is copied.

    Raises InvalidArgumentError naming the field: "type", "selector", "pattern" or
    "pattern.<path>" (e.g. "pattern.data.sensor", "pattern.tags[1]").
    """
    kind = _coerce_kind(kind)
    if not isinstance(selector, str):
        raise InvalidArgumentError("selector", "must be a string")
    if kind in (SubscriptionKind.BY_STREAM, SubscriptionKind.BY_EVENT_TYPE):
        if pattern:
            raise InvalidArgumentError("pattern", f"must be empty for {kind.name} (use selector)")
        if kind is SubscriptionKind.BY_STREAM:
            return _stream_filter(selector)
        return _type_filter(selector)
    if selector:
        raise InvalidArgumentError("selector", f"must be empty for {kind.name} (use pattern)")
    if not pattern:
        raise InvalidArgumentError(
            "pattern", f'must not be empty for {kind.name} (BY_STREAM "$all" selects every event)'
        )
    if not isinstance(pattern, Mapping):
        raise InvalidArgumentError("pattern", "must be an object")
    copied = _validated_copy(pattern, "pattern")
    if kind is SubscriptionKind.BY_QUERY:
        return _query_filter(copied)
    if kind is SubscriptionKind.BY_EVENT_PAYLOAD:
        return _payload_filter(copied)
    return _pattern_filter(copied)


def _query_filter(pattern: dict[str, Any]) -> EventFilter:
    """BY_QUERY: `pattern` is {"items": [{"types": [...], "tags": [...]}, ...]}."""
    items = pattern.get("items")
    if set(pattern) != {"items"} or not isinstance(items, list):
        raise InvalidArgumentError("pattern", 'a query is {"items": [{"types": [...], "tags": [...]}, ...]}')
    parsed = []
    for i, item in enumerate(items):
        where = f"pattern.items[{i}]"
        if not isinstance(item, dict) or not set(item) <= {"types", "tags"}:
            raise InvalidArgumentError(where, 'an item is {"types": [...], "tags": [...]}')
        types, tags = item.get("types", []), item.get("tags", [])
        for name, values in (("types", types), ("tags", tags)):
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidArgumentError(f"{where}.{name}", "must be a list of strings")
        parsed.append(QueryItem(tuple(types), tuple(tags)))
    query = check_query(Query(tuple(parsed)), "pattern")

    def match_query(event: RecordedEvent | EventView) -> bool:
        view = EventView.of(event)
        return matches(query, view.event_type, view.record.tags)

    return EventFilter(SubscriptionKind.BY_QUERY, "", pattern, None, True, match_query, query)


def _stream_filter(selector: str) -> EventFilter:
    kind = SubscriptionKind.BY_STREAM
    if selector == ALL_STREAM:
        return EventFilter(kind, ALL_STREAM, None, None, False, _match_all)
    if selector.endswith("*"):
        prefix = check_prefix(selector, "selector")
        _check_id("selector", prefix)

        def match_prefix(event: RecordedEvent | EventView) -> bool:
            return event.stream_id.startswith(prefix)

        return EventFilter(kind, prefix + "*", None, None, False, match_prefix, stream_prefix=prefix)
    stream = selector[1:] if selector.startswith("$") else selector
    if not stream:
        raise InvalidArgumentError("selector", 'must be "$all", a stream id or a prefix of stream ids ("order-*")')
    if stream.startswith("$"):
        raise InvalidArgumentError(
            "selector", f'{selector!r}: stream ids must not start with "$" (only "$all" may)'
        )
    _check_id("selector", stream)

    def match_stream(event: RecordedEvent | EventView) -> bool:
        return event.stream_id == stream

    return EventFilter(kind, stream, None, stream, False, match_stream)


def _type_filter(selector: str) -> EventFilter:
    if not selector:
        raise InvalidArgumentError("selector", "must be an event type, not empty")
    _check_id("selector", selector)

    def match_type(event: RecordedEvent | EventView) -> bool:
        return event.event_type == selector

    return EventFilter(SubscriptionKind.BY_EVENT_TYPE, selector, None, None, False, match_type)


def _check_id(field_name: str, value: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > _MAX_ID_BYTES:
        raise InvalidArgumentError(field_name, f"longer than {_MAX_ID_BYTES} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidArgumentError(field_name, "must not contain control characters")


def _payload_filter(pattern: dict[str, Any]) -> EventFilter:
    def match_payload(event: RecordedEvent | EventView) -> bool:
        body = EventView.of(event).data_json
        return body is not None and match_partial(pattern, body)

    return EventFilter(SubscriptionKind.BY_EVENT_PAYLOAD, "", pattern, None, True, match_payload)


def _pattern_filter(pattern: dict[str, Any]) -> EventFilter:
    checks: list[tuple[str, Any]] = []
    for key, value in pattern.items():
        where = f"pattern.{key}"
        if key not in PATTERN_FIELDS:
            known = ", ".join(sorted(PATTERN_FIELDS))
            raise InvalidArgumentError(where, f"unknown record field (one of {known})")
        if value == WILDCARD:
            continue  # every record has every field
        if key in _STRING_FIELDS:
            if not isinstance(value, str):
                raise InvalidArgumentError(where, "must be a string")
            if key == "event_id":
                value = value.lower()  # stored ids are lower-case
        elif key in _INT_FIELDS:
            if not _is_number(value) or value != int(value):
                raise InvalidArgumentError(where, "must be a whole number")
            value = int(value)
        elif not isinstance(value, dict):
            raise InvalidArgumentError(where, 'must be an object (or "_")')
        checks.append((key, value))
    # Fields the RecordedEvent carries are checked first: a mismatch there avoids decoding.
    cheap = tuple(kv for kv in checks if kv[0] in _CHEAP_FIELDS)
    costly = tuple(kv for kv in checks if kv[0] not in _CHEAP_FIELDS)

    def match_pattern(event: RecordedEvent | EventView) -> bool:
        for key, expected in cheap:
            if getattr(event, key) != expected:
                return False
        if not costly:
            return True
        view = EventView.of(event)
        for key, expected in costly:
            if key == "data":
                actual: Any = view.data_json
            elif key == "metadata":
                actual = view.metadata_json
            else:
                actual = getattr(view.record, key)
            if actual is None or not match_partial(expected, actual):
                return False
        return True

    return EventFilter(
        SubscriptionKind.BY_EVENT_PATTERN, "", pattern, None, bool(costly), match_pattern
    )


def _validated_copy(value: Any, where: str) -> Any:
    """A deep copy of a JSON-like value, checking that it is one (str keys; str, finite number,
    bool, None, list, dict values)."""
    if isinstance(value, Mapping):
        out = {}
        for key, sub in value.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgumentError(where, f"keys must be non-empty strings, not {key!r}")
            out[key] = _validated_copy(sub, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_validated_copy(sub, f"{where}[{i}]") for i, sub in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(where, "numbers must be finite")
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise InvalidArgumentError(where, f"not a JSON value: {type(value).__name__}")
