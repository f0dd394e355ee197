"""Tests of gater.subscriptions.matching: selector validation and the four kinds of filter."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from exesdb.v1 import subscriptions_pb2, types_pb2
from gater.errors import InvalidArgumentError
from gater.store.base import RecordedEvent
from gater.subscriptions import matching
from gater.subscriptions.matching import (
    PATTERN_FIELDS,
    EventView,
    SubscriptionKind,
    make_filter,
    match_partial,
)

pytestmark = pytest.mark.timeout(60)

EVENT_ID = "5f0c3a7e-8f2b-4d6e-9a41-0c2b7e3d9f10"
GARBAGE = b"\xff\xff\xff not an EventRecord"


def make_event(
    stream_id: str = "orders-1",
    event_type: str = "order_placed:v1",
    data: Any = b"",
    metadata: Any = b"",
    *,
    position: int = 7,
    version: int = 3,
    event_id: str = EVENT_ID,
    content_type: str = "application/json",
    metadata_content_type: str = "application/json",
    encoded: bytes | None = None,
) -> RecordedEvent:
    """A RecordedEvent as the store makes it; dict/list bodies are JSON-encoded."""
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    if not isinstance(metadata, bytes):
        metadata = json.dumps(metadata).encode()
    record = types_pb2.EventRecord(
        stream_id=stream_id,
        version=version,
        position=position,
        event_id=event_id,
        event_type=event_type,
        data=data,
        metadata=metadata,
        content_type=content_type,
        metadata_content_type=metadata_content_type,
    )
    if encoded is None:
        encoded = record.SerializeToString()
    return RecordedEvent(position, stream_id, version, event_id, event_type, encoded)


def payload(pattern: dict) -> matching.EventFilter:
    return make_filter(SubscriptionKind.BY_EVENT_PAYLOAD, "", pattern)


def field_of(excinfo: pytest.ExceptionInfo[InvalidArgumentError]) -> str:
    return excinfo.value.field


# --- kinds ------------------------------------------------------------------------------


def test_kind_values_mirror_the_proto_enum() -> None:
    for kind in SubscriptionKind:
        assert subscriptions_pb2.SubscriptionType.Value(f"SUBSCRIPTION_TYPE_{kind.name}") == kind


@pytest.mark.parametrize(
    "spelling",
    [
        SubscriptionKind.BY_EVENT_TYPE,
        1,
        "BY_EVENT_TYPE",
        "by_event_type",
        "SUBSCRIPTION_TYPE_BY_EVENT_TYPE",
    ],
)
def test_kind_spellings(spelling: Any) -> None:
    assert make_filter(spelling, "t").kind is SubscriptionKind.BY_EVENT_TYPE


@pytest.mark.parametrize("bad", [5, -1, "BY_NOTHING", "", True, None])
def test_unknown_kind_names_type(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter(bad, "x")
    assert field_of(excinfo) == "type"


# --- BY_STREAM --------------------------------------------------------------------------


def test_all_matches_every_stream_and_is_global() -> None:
    f = make_filter("BY_STREAM", "$all")
    assert f.stream is None
    assert f.selector == "$all"
    assert f.matches(make_event("a"))
    assert f.matches(make_event("b"))


@pytest.mark.parametrize("selector", ["orders-1", "$orders-1"])
def test_one_stream_in_both_spellings(selector: str) -> None:
    f = make_filter("BY_STREAM", selector)
    assert f.stream == "orders-1"
    assert f.selector == "orders-1"
    assert f.matches(make_event("orders-1"))
    assert not f.matches(make_event("orders-10"))
    assert not f.matches(make_event("$orders-1"))


def test_seed_spelling_equals_plain_stream_id() -> None:
    assert make_filter("BY_STREAM", "$orders-1") == make_filter("BY_STREAM", "orders-1")
    assert hash(make_filter("BY_STREAM", "$x")) == hash(make_filter("BY_STREAM", "x"))
    assert make_filter("BY_STREAM", "x") != make_filter("BY_STREAM", "$all")
    assert make_filter("BY_STREAM", "x") != make_filter("BY_EVENT_TYPE", "x")


@pytest.mark.parametrize("selector", ["", "$", "$$all", "$$x", "a\nb", "x" * 257])
def test_bad_stream_selectors_name_selector(selector: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_STREAM", selector)
    assert field_of(excinfo) == "selector"


def test_stream_selector_of_256_bytes_is_fine() -> None:
    assert make_filter("BY_STREAM", "é" * 128).stream == "é" * 128


def test_stream_filter_with_a_pattern_names_pattern() -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_STREAM", "x", {"a": 1})
    assert field_of(excinfo) == "pattern"


@pytest.mark.parametrize("selector", ["$all", "orders-1"])
def test_stream_filter_never_decodes(selector: str) -> None:
    f = make_filter("BY_STREAM", selector)
    assert not f.needs_record
    # The encoding is garbage: any attempt to decode it would raise.
    assert f.matches(make_event("orders-1", encoded=GARBAGE))
    assert f.matches(EventView(make_event("orders-1", encoded=GARBAGE)))


@pytest.mark.parametrize("selector", ["order-*", "$order-*"])
def test_a_selector_ending_in_a_star_is_a_stream_prefix(selector: str) -> None:
    f = make_filter("BY_STREAM", selector)
    assert (f.stream, f.selector, f.stream_prefix, f.needs_record) == (None, "order-*", "order-", False)
    assert f.indexed is not None and f.indexed[1] == "order-"  # catch-up from the category index
    assert f.matches(make_event("order-1", encoded=GARBAGE))
    assert f.matches(make_event("order-1/x"))
    assert not f.matches(make_event("orders"))
    assert not f.matches(make_event("order"))
    assert make_filter("BY_STREAM", "order-*") == make_filter("BY_STREAM", "$order-*")
    assert make_filter("BY_STREAM", "order-*") != make_filter("BY_STREAM", "order-")
    assert make_filter("BY_STREAM", "$all").indexed is None
    assert make_filter("BY_STREAM", "order-1").indexed is None


@pytest.mark.parametrize("selector", ["*", "$*", "a*b*", "a\nb*", "x" * 257 + "*"])
def test_bad_prefix_selectors_name_selector(selector: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_STREAM", selector)
    assert field_of(excinfo) == "selector"


# --- BY_EVENT_TYPE ----------------------------------------------------------------------


def test_event_type_is_exact() -> None:
    f = make_filter("BY_EVENT_TYPE", "order_placed:v1")
    assert f.stream is None
    assert f.matches(make_event(event_type="order_placed:v1"))
    assert not f.matches(make_event(event_type="order_placed:v2"))
    assert not f.matches(make_event(event_type="Order_placed:v1"))
    assert not f.matches(make_event(event_type="order_placed"))


def test_event_type_filter_never_decodes() -> None:
    f = make_filter("BY_EVENT_TYPE", "t")
    assert not f.needs_record
    assert f.matches(make_event(event_type="t", encoded=GARBAGE))
    assert not f.matches(EventView(make_event(event_type="u", encoded=GARBAGE)))


@pytest.mark.parametrize("selector", ["", "t\x00"])
def test_bad_event_type_names_selector(selector: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_EVENT_TYPE", selector)
    assert field_of(excinfo) == "selector"
    assert excinfo.value.code == "INVALID_ARGUMENT"


# --- BY_EVENT_PAYLOAD -------------------------------------------------------------------


READING = {
    "sensor": "t-1",
    "celsius": 21,
    "where": {"house": "g1", "bed": {"row": 2}},
    "tags": ["a", "b"],
    "ok": True,
    "note": None,
}


@pytest.mark.parametrize(
    "pattern",
    [
        {"sensor": "t-1"},
        {"celsius": 21},
        {"celsius": 21.0},
        {"where": {"house": "g1"}},
        {"where": {"bed": {"row": 2.0}}},
        {"where": {}},
        {"tags": ["a", "b"]},
        {"ok": True},
        {"note": None},
        {"celsius": "_"},
        {"note": "_"},
        {"where": {"bed": "_"}},
        {"sensor": "t-1", "celsius": "_", "where": {"bed": {"row": 2}}},
    ],
)
def test_payload_matches(pattern: dict) -> None:
    assert payload(pattern).matches(make_event(data=READING))


@pytest.mark.parametrize(
    "pattern",
    [
        {"sensor": "t-2"},
        {"celsius": 21.5},
        {"celsius": "21"},
        {"intensity": "_"},
        {"where": {"house": "g2"}},
        {"where": {"bed": {"col": "_"}}},
        {"where": "g1"},
        {"sensor": {"id": "t-1"}},
        {"tags": ["a"]},
        {"tags": ["b", "a"]},
        {"tags": ["a", "b", "c"]},
        {"ok": 1},
        {"ok": False},
        {"celsius": True},
        {"note": 0},
        {"sensor": None},
    ],
)
def test_payload_mismatches(pattern: dict) -> None:
    assert not payload(pattern).matches(make_event(data=READING))


def test_payload_booleans_and_numbers_are_distinct() -> None:
    assert not payload({"v": True}).matches(make_event(data={"v": 1}))
    assert not payload({"v": 1}).matches(make_event(data={"v": True}))
    assert not payload({"v": 0}).matches(make_event(data={"v": False}))
    assert payload({"v": [1, True]}).matches(make_event(data={"v": [1.0, True]}))
    assert not payload({"v": [1, True]}).matches(make_event(data={"v": [True, 1]}))


def test_payload_lists_of_objects_must_be_equal_not_partial() -> None:
    data = {"v": [{"a": 1, "b": 2}]}
    assert payload({"v": [{"a": 1, "b": 2.0}]}).matches(make_event(data=data))
    assert not payload({"v": [{"a": 1}]}).matches(make_event(data=data))


def test_wildcard_is_only_a_value() -> None:
    # "_" as a key is an ordinary key; "_" inside a list is an ordinary string.
    assert not payload({"_": 1}).matches(make_event(data={"a": 1}))
    assert payload({"_": 1}).matches(make_event(data={"_": 1}))
    assert not payload({"v": ["_"]}).matches(make_event(data={"v": [5]}))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"21",
        b"null",
        b"\xff\xfe\x00",
        b'{"sensor": ',
        b"[" * 100_000,
    ],
)
def test_payload_never_matches_a_body_that_is_not_a_json_object(body: bytes) -> None:
    f = payload({"sensor": "_"})
    assert not f.matches(make_event(data=body))
    assert EventView(make_event(data=body)).data_json is None


def test_payload_ignores_content_type_when_the_body_is_json() -> None:
    event = make_event(data={"a": 1}, content_type="application/octet-stream")
    assert payload({"a": 1}).matches(event)


def test_payload_from_struct_twin_when_data_is_empty() -> None:
    record = types_pb2.EventRecord(stream_id="s", event_type="t", position=1)
    record.data_json.update({"a": 21})
    event = RecordedEvent(1, "s", 0, EVENT_ID, "t", record.SerializeToString())
    assert payload({"a": 21}).matches(event)


def test_payload_pattern_from_a_struct_matches_integer_bodies() -> None:
    struct = struct_pb2.Struct()
    struct.update({"intensity": "_", "celsius": 21, "where": {"row": 2}})
    pattern = json_format.MessageToDict(struct)
    assert isinstance(pattern["celsius"], float)
    f = make_filter("BY_EVENT_PAYLOAD", "", pattern)
    assert f.matches(make_event(data={"intensity": 3, "celsius": 21, "where": {"row": 2, "c": 1}}))
    assert not f.matches(make_event(data={"celsius": 21, "where": {"row": 2}}))


def test_payload_pattern_is_copied() -> None:
    pattern = {"a": {"b": 1}}
    f = payload(pattern)
    pattern["a"]["b"] = 2
    pattern["c"] = 3
    assert f.matches(make_event(data={"a": {"b": 1}}))
    assert f.pattern == {"a": {"b": 1}}


def test_payload_filter_equality_follows_the_pattern() -> None:
    assert payload({"a": 1, "b": {"c": 2}}) == payload({"b": {"c": 2}, "a": 1})
    assert payload({"a": 1}) != payload({"a": 2})
    assert len({payload({"a": 1}), payload({"a": 1})}) == 1


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        (None, "pattern"),
        ({}, "pattern"),
        ({"a": math.nan}, "pattern.a"),
        ({"a": {"b": math.inf}}, "pattern.a.b"),
        ({"a": [1, object()]}, "pattern.a[1]"),
        ({"a": {1: "x"}}, "pattern.a"),
        ({"": 1}, "pattern"),
    ],
)
def test_bad_payload_patterns_name_the_field(pattern: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_EVENT_PAYLOAD", "", pattern)
    assert field_of(excinfo) == field


def test_pattern_kinds_reject_a_selector() -> None:
    for kind in ("BY_EVENT_PAYLOAD", "BY_EVENT_PATTERN"):
        with pytest.raises(InvalidArgumentError) as excinfo:
            make_filter(kind, "orders-1", {"stream_id": "orders-1"})
        assert field_of(excinfo) == "selector"


def test_pattern_must_be_an_object() -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        make_filter("BY_EVENT_PAYLOAD", "", ["a"])  # type: ignore[arg-type]
    assert field_of(excinfo) == "pattern"


# --- BY_EVENT_PATTERN -------------------------------------------------------------------


def pattern_filter(pattern: dict) -> matching.EventFilter:
    return make_filter(SubscriptionKind.BY_EVENT_PATTERN, "", pattern)


FULL = dict(
    stream_id="orders-1",
    event_type="order_placed:v1",
    data={"order": {"id": 9, "lines": 2}},
    metadata={"correlation_id": "c-1"},
    position=7,
    version=3,
    content_type="application/json",
    metadata_content_type="application/vnd.meta+json",
)


@pytest.mark.parametrize(
    "pattern",
    [
        {"stream_id": "orders-1"},
        {"event_type": "order_placed:v1"},
        {"event_id": EVENT_ID},
        {"event_id": EVENT_ID.upper()},
        {"version": 3},
        {"version": 3.0},
        {"position": 7.0},
        {"content_type": "application/json"},
        {"metadata_content_type": "application/vnd.meta+json"},
        {"data": {"order": {"id": 9.0}}},
        {"data": {"order": "_"}},
        {"data": "_"},
        {"metadata": {"correlation_id": "c-1"}},
        {"stream_id": "orders-1", "version": 3, "data": {"order": {"lines": 2}}},
    ],
)
def test_record_pattern_matches(pattern: dict) -> None:
    assert pattern_filter(pattern).matches(make_event(**FULL))


@pytest.mark.parametrize(
    "pattern",
    [
        {"stream_id": "orders-2"},
        {"event_type": "order_placed"},
        {"event_id": "00000000-0000-0000-0000-000000000000"},
        {"version": 4},
        {"position": 6},
        {"content_type": "text/plain"},
        {"metadata_content_type": "application/json"},
        {"data": {"order": {"id": 10}}},
        {"data": {"customer": "_"}},
        {"metadata": {"causation_id": "_"}},
        {"stream_id": "orders-1", "version": 4},
    ],
)
def test_record_pattern_mismatches(pattern: dict) -> None:
    assert not pattern_filter(pattern).matches(make_event(**FULL))


def test_record_pattern_on_json_field_never_matches_a_non_json_body() -> None:
    f = pattern_filter({"data": {}})
    assert f.matches(make_event(data={"x": 1}))
    assert not f.matches(make_event(data=b"\x00\x01"))
    assert not f.matches(make_event(data=b"[]"))


def test_record_pattern_on_cheap_fields_never_decodes() -> None:
    f = pattern_filter({"stream_id": "orders-1", "position": 7})
    assert not f.needs_record
    assert f.matches(make_event(encoded=GARBAGE))
    # A cheap mismatch short-circuits before the costly data check would decode.
    g = pattern_filter({"stream_id": "other", "data": {"a": 1}})
    assert g.needs_record
    assert not g.matches(make_event(encoded=GARBAGE))


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        ({"foo": 1}, "pattern.foo"),
        ({"stream_id": "s", "created": 1}, "pattern.created"),
        ({"retry_count": 0}, "pattern.retry_count"),
        ({"stream_id": 5}, "pattern.stream_id"),
        ({"event_type": None}, "pattern.event_type"),
        ({"version": 3.5}, "pattern.version"),
        ({"position": "7"}, "pattern.position"),
        ({"version": True}, "pattern.version"),
        ({"data": "x"}, "pattern.data"),
        ({"metadata": [1]}, "pattern.metadata"),
        ({"data": {"a": math.nan}}, "pattern.data.a"),
    ],
)
def test_bad_record_patterns_name_the_field(pattern: dict, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as excinfo:
        pattern_filter(pattern)
    assert field_of(excinfo) == field
    assert field in str(excinfo.value)


def test_pattern_fields_are_the_documented_ones() -> None:
    assert PATTERN_FIELDS == {
        "stream_id",
        "event_type",
        "event_id",
        "content_type",
        "metadata_content_type",
        "version",
        "position",
        "data",
        "metadata",
    }
    record_fields = set(types_pb2.EventRecord.DESCRIPTOR.fields_by_name)
    assert PATTERN_FIELDS <= record_fields


# --- EventView: decode and parse once ---------------------------------------------------


def test_event_view_decodes_and_parses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real_loads = json.loads

    def counting_loads(raw: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(raw)
        return real_loads(raw, *args, **kwargs)

    event = make_event(**FULL)
    filters = [payload({"order": {"id": i}}) for i in range(50)]
    filters += [pattern_filter({"metadata": {"correlation_id": "c-1"}, "data": "_"})] * 50
    monkeypatch.setattr(matching.json, "loads", counting_loads)
    view = EventView(event)
    hits = [f.matches(view) for f in filters]
    assert hits.count(True) == 51  # order id 9, plus the 50 metadata filters
    assert len(calls) == 2  # data once, metadata once
    assert view.record is view.record
    assert view.data_json is view.data_json


def test_event_view_mirrors_the_recorded_fields() -> None:
    event = make_event(**FULL)
    view = EventView(event)
    assert (view.position, view.stream_id, view.version, view.event_id, view.event_type) == (
        7,
        "orders-1",
        3,
        EVENT_ID,
        "order_placed:v1",
    )
    assert view.event is event
    assert EventView.of(view) is view
    assert EventView.of(event).event is event
    assert view.record.metadata_content_type == "application/vnd.meta+json"
    assert view.metadata_json == {"correlation_id": "c-1"}


# --- properties ---------------------------------------------------------------------------

_SAFE_INT = st.integers(-(2**53), 2**53)
json_scalars = (
    st.none()
    | st.booleans()
    | _SAFE_INT
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(min_size=1), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(min_size=1), json_values, min_size=1, max_size=6)


@given(json_values)
def test_every_value_matches_itself(value: Any) -> None:
    assert match_partial(value, value)


@given(json_objects, st.data())
def test_any_subset_of_keys_matches_and_an_extra_key_does_not(
    body: dict, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(sorted(body)), unique=True, min_size=1))
    sub = {k: body[k] for k in keys}
    event = make_event(data=body)
    assert payload(sub).matches(event)
    missing = data.draw(st.text(min_size=1).filter(lambda k: k not in body))
    assert not payload({**sub, missing: "_"}).matches(event)


@given(json_objects)
def test_a_pattern_sent_as_a_struct_still_matches(body: dict) -> None:
    # Struct turns every number into a double; integers within 2**53 survive exactly.
    struct = struct_pb2.Struct()
    struct.update(body)
    pattern = json_format.MessageToDict(struct)
    assert payload(pattern).matches(make_event(data=body))


@given(json_objects, json_objects)
def test_matching_agrees_with_a_reference(pattern: dict, body: dict) -> None:
    def reference(p: Any, v: Any) -> bool:
        if p == "_":
            return True
        if isinstance(p, dict):
            return isinstance(v, dict) and all(k in v and reference(s, v[k]) for k, s in p.items())
        return _norm(p) == _norm(v)

    assert payload(pattern).matches(make_event(data=body)) == reference(pattern, body)


@given(json_objects)
def test_a_pattern_drawn_from_the_body_matches_the_reference_too(body: dict) -> None:
    # Every key of the body, every other value replaced by the wildcard.
    pattern = {k: ("_" if i % 2 else v) for i, (k, v) in enumerate(body.items())}
    assert payload(pattern).matches(make_event(data=body))


def _norm(v: Any) -> Any:
    """A JSON value with numbers as floats (exact within 2**53) and booleans kept apart."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int | float):
        return ("num", float(v))
    if isinstance(v, list):
        return ("list", [_norm(x) for x in v])
    if isinstance(v, dict):
        return ("dict", {k: _norm(x) for k, x in v.items()})
    return ("other", v)
