"""Random exesdb.v1 requests, built from the message descriptors, and random bytes.

Owns: `request_bytes(method)` — a strategy of serialized, well-typed requests for one RPC:
every field of the request's descriptor (scalars of every width, strings, bytes, nested
messages, oneofs, repeated fields, enums with unknown numbers, google.protobuf.Struct values),
drawn in three modes: *wild* (a bias toward the values the server's rules are about: empty,
"$all", "$x", store ids, UUID spellings, names at and past their limits, big batches, deep
and non-finite JSON), *valid* (values the server accepts, from small pools, so that appends,
reads, snapshots and subscriptions meet each other) and *mixed* (each field valid or wild,
so that one bad field sits among good ones and reaches the checks that come late);
and `raw_bytes(method)` — bytes for a raw channel: noise, valid requests mutated, and hand-made
encodings protobuf refuses (invalid UTF-8, nesting past its depth limit, wrong wire types).
Nothing here talks to a server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from gater._grpc import EXESDB_SERVICES

__all__ = ["METHODS", "MODES", "Method", "message", "raw_bytes", "request_bytes"]

T = FieldDescriptor


class Method:
    """One exesdb.v1 RPC: its path, its request and response classes, whether it streams."""

    def __init__(self, service: str, descriptor: MethodDescriptor) -> None:
        self.path = f"/{service}/{descriptor.name}"
        self.name = descriptor.name
        self.request_class: type[Message] = GetMessageClass(descriptor.input_type)
        self.response_class: type[Message] = GetMessageClass(descriptor.output_type)
        self.streaming = descriptor.server_streaming

    def __repr__(self) -> str:
        return self.path


METHODS = [Method(name, m) for name, service in EXESDB_SERVICES.items() for m in service.methods]

# -- values that matter ---------------------------------------------------------------------

_POOL_UUIDS = [
    str(uuid.UUID(int=n * 0x1111_1111_1111_1111_1111_1111_1111_1111, version=4))
    for n in range(1, 6)
]
"""A few ids that recur across requests: appends collide with each other (idempotent repeats,
duplicate ids in one append, the same id in another stream)."""

STORES = [
    "",
    "default",
    "fuzz-a",
    "fuzz-b",
    "_audit",
    "$all",
    "$x",
    "Default",
    "-a",
    "a b",
    "a" * 64,
    "a" * 65,
    "é",
]
STREAMS = [
    "s",
    "s-1",
    "t",
    "$all",
    "$s",
    "$x",
    "$",
    "",
    "x" * 256,
    "x" * 257,
    "é" * 128,
    "é" * 129,
    "a\nb",
    "s\x00",
    "\u202e",
    "🦀",
]
NAMES = [
    "t",
    "sub",
    "transient",
    "$all",
    "_",
    "",
    "x" * 128,
    "x" * 129,
    "x" * 256,
    "x" * 257,
    "a\x7f",
    "\ufeff",
]
CONTENT_TYPES = [
    "",
    "application/json",
    "application/octet-stream",
    "text/plain",
    "x" * 128,
    "x" * 129,
    "a\tb",
]
_TOKEN_VALUES: list[Any] = [
    "s",
    "",
    "\ud800",
    1,
    None,
    [],
    ["a", "b", 0],
    ["a", "b", -1],
    ["a", "b", 2**63],
    ["a", "b", 1.5],
    ["", "b", 0],
    {"a": 1},
]


def _token(value: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


PAGE_TOKENS = [
    *(_token(v) for v in _TOKEN_VALUES),
    _token("[" * 5000 + "]" * 5000).replace("=", ""),  # not JSON once decoded
    "W1tb" * 3000 + "XV1d" * 3000,  # "[[[…]]]": nested deeper than json's recursion allows
    "!!!",
    "é",
    "eyJhIjo",  # base64 cut short
]

_UUID_SPELLINGS: list[Callable[[uuid.UUID], str]] = [
    str,
    lambda u: str(u).upper(),
    lambda u: "{" + str(u) + "}",
    lambda u: u.urn,
    lambda u: u.hex,
    lambda u: str(u) + "\n",
    lambda u: str(u)[:-1],
]


@st.composite
def _uuid_ish(draw: st.DrawFn) -> str:
    u = uuid.UUID(draw(st.sampled_from(_POOL_UUIDS))) if draw(st.booleans()) else draw(st.uuids())
    return draw(st.sampled_from(_UUID_SPELLINGS))(u)


def _deep(depth: int, leaf: Any, in_lists: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if in_lists else {"k": value}
    return value


_DEPTHS = [2, 30, 31, 32, 33, 34, 40, 49, 50, 51, 99, 100, 101, 300]
_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 2.0**53, 2.0**63, 1e308, 21.0, 0.5]
    ),
)
_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), _FLOATS, st.text(max_size=20), st.sampled_from(["_", "$all", "s"])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_VALID_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53).map(float),
        st.text(max_size=8),
        st.just("_"),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=6,
)
_VALID_OBJECTS = st.one_of(
    st.dictionaries(st.sampled_from(["a", "b", "n"]), _VALID_JSON, max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "stream_id": st.sampled_from(["s", "t"]),
            "event_type": st.sampled_from(["t", "u"]),
            "data": st.dictionaries(
                st.sampled_from(["a", "n"]), st.sampled_from(["_", 1.0, "x"]), max_size=2
            ),
        },
    ),
)


@st.composite
def _json_object(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON-like object for a Struct: small and random, or nested to a depth that matters
    (objects: 3 protobuf levels each; lists: 2), or wide."""
    kind = draw(st.sampled_from(["random", "random", "deep", "wide", "pattern"]))
    if kind == "deep":
        depth = draw(st.sampled_from(_DEPTHS))
        return {"k": _deep(depth, draw(_JSON_LEAVES), in_lists=draw(st.booleans()))}
    if kind == "wide":
        return {f"k{i}": i for i in range(draw(st.sampled_from([100, 2000])))}
    if kind == "pattern":  # what subscriptions match on
        return draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "stream_id": st.sampled_from(STREAMS),
                    "event_type": st.sampled_from(NAMES),
                    "data": _JSON,
                    "metadata": _JSON,
                    "event_id": _uuid_ish(),
                    "content_type": st.sampled_from(CONTENT_TYPES),
                    "intensity": st.sampled_from(["_", 1, None]),
                },
            )
        )
    return draw(st.dictionaries(st.text(max_size=8), _JSON, max_size=5))


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


STRUCTS = _json_object().map(_struct)
VALID_STRUCTS = _VALID_OBJECTS.map(_struct)


def _json_body(size: int, item: str) -> bytes:
    """A JSON object of about `size` bytes made of `item`s (numbers weigh far more as a Struct)."""
    return b'{"a":[' + ",".join([item] * (size // (len(item) + 1))).encode() + b"]}"


BODIES = [
    b"",
    b"{}",
    b'{"a":1}',
    b'{"a":21.0,"b":[true,null,"x"]}',
    b"[1,2]",
    b"null",
    b"NaN",
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":1e999}',
    b'{"a":' + b"9" * 400 + b"}",  # an integer past a double
    b'{"a":"\\ud800"}',  # a lone surrogate, escaped
    b"\xff\xfe\x00",
    b'{"a":"\xff"}',
    json.dumps(_deep(31, 1, False)).encode(),
    json.dumps(_deep(40, 1, False)).encode(),
    json.dumps(_deep(64, 1, True)).encode(),
    b"[" * 100_000 + b"]" * 100_000,  # deeper than json's recursion
    _json_body(300_000, "1"),  # a Struct several times its JSON
    _json_body(900_000, "1"),
    b"x" * (1024 * 1024 - 200),  # near the test node's message limit
]

# -- scalars --------------------------------------------------------------------------------

_RANGES = {
    T.TYPE_INT32: (-(2**31), 2**31 - 1),
    T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    T.TYPE_INT64: (-(2**63), 2**63 - 1),
    T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    T.TYPE_UINT32: (0, 2**32 - 1),
    T.TYPE_FIXED32: (0, 2**32 - 1),
    T.TYPE_UINT64: (0, 2**64 - 1),
    T.TYPE_FIXED64: (0, 2**64 - 1),
}
_EDGES = [
    0,
    1,
    -1,
    -2,
    2,
    7,
    99,
    100,
    101,
    999,
    1000,
    1001,
    9999,
    10_000,
    10_001,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**53,
    2**53 + 1,
    2**63 - 2,
    2**63 - 1,
]


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({v for e in _EDGES for v in (e, -e) if lo <= v <= hi} | {lo, hi})
    return st.one_of(
        st.integers(max(lo, -3), min(hi, 12)), st.sampled_from(edges), st.integers(lo, hi)
    )


_STRING_HINTS: dict[str, list[str] | st.SearchStrategy[str]] = {
    "store": STORES,
    "store_id": STORES,
    "stream_id": STREAMS,
    "selector": STREAMS + NAMES,
    "source_uuid": STREAMS,
    "stream_uuid": STREAMS,
    "event_type": NAMES,
    "source_type": NAMES,
    "name": NAMES,
    "subscription_name": NAMES,
    "reason": ["", "x" * 1024, "x" * 1025, "a\x00b"],
    "content_type": CONTENT_TYPES,
    "metadata_content_type": CONTENT_TYPES,
    "page_token": PAGE_TOKENS,
    "event_id": _uuid_ish(),
}
_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=300),
    st.sampled_from(["", "$all", "$x", "default", "x" * 10_000, "\x00", "\U0010ffff", "\ufffe"]),
)

_VALID_STRINGS: dict[str, list[str] | st.SearchStrategy[str]] = {
    "store": ["", "default", "default", "fuzz-a", "fuzz-b"],
    "store_id": ["default", "fuzz-a", "fuzz-b"],
    "stream_id": ["s", "s", "s-1", "t", "$all"],
    "selector": ["s", "t", "$all", "$s"],
    "source_uuid": ["s", "t"],
    "stream_uuid": ["s", "t"],
    "event_type": ["t", "u"],
    "source_type": ["t", "u"],
    "name": ["sub", "sub-2"],
    "subscription_name": ["", "transient", "sub", "sub-2"],
    "reason": ["", "r"],
    "content_type": ["", "application/json", "application/octet-stream"],
    "metadata_content_type": ["", "application/json"],
    "page_token": [""],
    "event_id": st.one_of(
        st.just(""), st.sampled_from(_POOL_UUIDS), *[st.uuids(version=4).map(str)] * 2
    ),
}
"""Values the server accepts, few enough that requests meet: an append's stream is read, a
saved subscription is consumed, a recorded snapshot is deleted."""
_VALID_UNSET = frozenset(
    {"selector", "pattern", "start_from", "settings", "data_json", "metadata_json", "created_at"}
)
"""Fields a valid request may leave unset (a subscription has a selector or a pattern); every
other field is set, since most are required."""
_VALID_INTEGERS: dict[str, tuple[int, int]] = {
    "expected_version": (-1, 5),
    "page_size": (0, 5),
    "count": (0, 10),
    "max_batch": (0, 10),
    "positions": (0, 20),
    "max_retries": (0, 3),
    "max_in_flight": (0, 10),
    "nanos": (0, 999_999_999),
}
_VALID_BODIES = [b"", b"{}", b'{"a":1}', b'{"a":21.0,"b":[true,null,"x"]}', b'{"n":"x"}']

MODES = ("wild", "valid", "mixed")
"""How a message's fields are drawn (see the module docstring)."""


def _string(field: FieldDescriptor, mode: str) -> st.SearchStrategy[str]:
    hints = _VALID_STRINGS if mode == "valid" else _STRING_HINTS
    hint = hints.get(field.name)
    if hint is None:
        return st.text(max_size=8) if mode == "valid" else _TEXT
    pool = st.sampled_from(hint) if isinstance(hint, list) else hint
    return pool if mode == "valid" else st.one_of(pool, pool, pool, _TEXT)


def _bytes(field: FieldDescriptor, mode: str) -> st.SearchStrategy[bytes]:
    if mode == "valid":
        return st.sampled_from(_VALID_BODIES)
    return st.one_of(st.sampled_from(BODIES), st.sampled_from(BODIES), st.binary(max_size=64))


def _enum(field: FieldDescriptor, mode: str) -> st.SearchStrategy[int]:
    known = [v.number for v in field.enum_type.values]
    if mode == "valid":
        return st.sampled_from(known)
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(known),
        st.sampled_from([-1, max(known) + 1, 99, 2**31 - 1, -(2**31)]),
    )


def _valid_integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    if field.name == "heartbeat_ms":
        return st.sampled_from([0, 100, 1000])
    if field.name == "message_timeout_ms":
        return st.sampled_from([0, 10, 1000, 30_000])
    lo, hi = _VALID_INTEGERS.get(field.name, (0, 5))
    if field.type in (T.TYPE_UINT32, T.TYPE_UINT64, T.TYPE_FIXED32, T.TYPE_FIXED64):
        lo = max(lo, 0)
    return st.integers(lo, hi)


def _scalar(field: FieldDescriptor, mode: str) -> st.SearchStrategy[Any]:
    if mode == "mixed":
        valid = _scalar(field, "valid")
        return st.one_of(valid, valid, valid, _scalar(field, "wild"))
    kind = field.type
    if kind in _RANGES:
        return _valid_integers(field) if mode == "valid" else _integers(*_RANGES[kind])
    if kind in (T.TYPE_DOUBLE, T.TYPE_FLOAT):
        if mode == "valid":
            return st.integers(-100, 100).map(float)
        return _FLOATS.filter(
            lambda f: kind == T.TYPE_DOUBLE or abs(f) < 3e38 or f != f or abs(f) == float("inf")
        )
    if kind == T.TYPE_BOOL:
        return st.booleans()
    if kind == T.TYPE_STRING:
        return _string(field, mode)
    if kind == T.TYPE_BYTES:
        return _bytes(field, mode)
    if kind == T.TYPE_ENUM:
        return _enum(field, mode)
    raise AssertionError(f"no strategy for {field.full_name} (type {kind})")


# -- messages -------------------------------------------------------------------------------

_BIG_BATCHES = [100, 101, 1000]
"""Event counts at and past the test node's max_events_per_append (100)."""


@st.composite
def _big_batch(draw: st.DrawFn, element: st.SearchStrategy[Message]) -> list[Message]:
    """One drawn element, many times: the same id (duplicates), none (the server assigns
    them), or fresh ids (a real batch)."""
    template = draw(element)
    count = draw(st.sampled_from(_BIG_BATCHES))
    ids = draw(st.sampled_from(["same", "none", "fresh"]))
    base = draw(st.integers(0, 2**64))
    out = []
    for i in range(count):
        item = type(template)()
        item.CopyFrom(template)
        if ids != "same" and "event_id" in type(template).DESCRIPTOR.fields_by_name:
            item.event_id = "" if ids == "none" else str(uuid.UUID(int=base + i, version=4))
        out.append(item)
    return out


def _repeated(
    field: FieldDescriptor, element: st.SearchStrategy[Any], mode: str
) -> st.SearchStrategy[list[Any]]:
    if mode == "valid":  # an append has events; acks have positions
        return st.lists(element, min_size=1, max_size=4)
    small = st.lists(element, max_size=4)
    if field.type == T.TYPE_MESSAGE:
        batch = _big_batch(message(field.message_type, "valid") if mode == "mixed" else element)
        return st.one_of(small, small, small, batch)
    return st.one_of(
        small,
        small,
        st.lists(element, min_size=100, max_size=200),
        st.builds(lambda v: [v] * 10_000, element),
    )


_SPECIAL: dict[tuple[str, str], st.SearchStrategy[Message]] = {
    ("google.protobuf.Struct", "wild"): STRUCTS,
    ("google.protobuf.Struct", "valid"): VALID_STRUCTS,
    ("google.protobuf.Struct", "mixed"): st.one_of(
        VALID_STRUCTS, VALID_STRUCTS, VALID_STRUCTS, STRUCTS
    ),
}
_cache: dict[tuple[str, str], st.SearchStrategy[Message]] = {}


def message(descriptor: Descriptor, mode: str = "wild") -> st.SearchStrategy[Message]:
    """Random messages of `descriptor`'s type, drawn in `mode` (one of MODES): each field set
    or not, one member (or none) of each oneof, proto3 `optional` fields present or absent."""
    key = (descriptor.full_name, mode)
    if key in _SPECIAL:
        return _SPECIAL[key]
    if key not in _cache:
        _cache[key] = st.deferred(lambda: _message(descriptor, mode))
    return _cache[key]


def _value(field: FieldDescriptor, mode: str) -> st.SearchStrategy[Any]:
    single = (
        message(field.message_type, mode) if field.type == T.TYPE_MESSAGE else _scalar(field, mode)
    )
    if field.is_repeated:
        return _repeated(field, single, mode)
    return single


def _valid_subscription(request: Any) -> Any:
    """A valid Subscribe or SaveSubscription: a selector or a pattern, as its type wants; a
    persistent consumer describes nothing (its saved subscription does)."""
    if getattr(request, "subscription_name", "") not in ("", "transient"):
        request.ClearField("type")
        request.ClearField("selector")
        request.ClearField("pattern")
        return request
    if request.type in (0, 1):  # BY_STREAM, BY_EVENT_TYPE: a selector
        request.ClearField("pattern")
        request.selector = request.selector or ("$all" if request.type == 0 else "t")
        if request.type == 1 and request.selector.startswith("$"):
            request.selector = "t"
    else:  # BY_EVENT_PATTERN, BY_EVENT_PAYLOAD: a pattern
        request.ClearField("selector")
        if not request.pattern.fields:
            request.pattern.update({"event_type": "t"} if request.type == 2 else {"a": "_"})
    return request


_VALID_FIXES = {
    "exesdb.v1.SubscribeRequest": _valid_subscription,
    "exesdb.v1.SaveSubscriptionRequest": _valid_subscription,
}
"""Rules across fields that valid requests keep (one field's valid value depends on another)."""


def _message(descriptor: Descriptor, mode: str) -> st.SearchStrategy[Message]:
    cls = GetMessageClass(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for oneof in descriptor.oneofs:  # proto3 `optional` fields are synthetic oneofs of one
        choices = [st.tuples(st.just(f.name), _value(f, mode)) for f in oneof.fields]
        parts["oneof:" + oneof.name] = st.one_of(st.none(), *choices)
    for field in descriptor.fields:
        if field.containing_oneof is None:
            value = _value(field, mode)
            always = mode == "valid" and field.name not in _VALID_UNSET
            parts[field.name] = value if always else st.one_of(st.none(), value)

    def build(values: dict[str, Any]) -> Message:
        out = cls()
        for key, value in values.items():
            if value is None:
                continue
            name, value = value if key.startswith("oneof:") else (key, value)
            _set(out, descriptor.fields_by_name[name], value)
        return out

    fix = _VALID_FIXES.get(descriptor.full_name) if mode == "valid" else None
    built = st.fixed_dictionaries(parts).map(build)
    return built.map(fix) if fix else built


def _set(out: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        target = getattr(out, field.name)
        if field.type == T.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == T.TYPE_MESSAGE:
        getattr(out, field.name).CopyFrom(value)
    else:
        setattr(out, field.name, value)


def request_bytes(method: Method, modes: tuple[str, ...] = MODES) -> st.SearchStrategy[bytes]:
    """Serialized, well-typed requests of `method`, drawn in any of `modes`."""
    descriptor = method.request_class.DESCRIPTOR
    return st.one_of(*(message(descriptor, mode) for mode in modes)).map(
        lambda m: m.SerializeToString()
    )


# -- bytes ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes = b"") -> bytes:
    return _varint(number << 3 | wire_type) + payload


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _field(number, 2, _varint(len(payload)) + payload)


def _nested(numbers: list[int], depth: int) -> bytes:
    """Length-delimited fields nested `depth` deep (the field numbers of a message path)."""
    inner = b""
    for i in range(depth):
        inner = _length_delimited(numbers[i % len(numbers)], inner)
    return inner


@st.composite
def _crafted(draw: st.DrawFn, method: Method) -> bytes:
    """Encodings protobuf refuses, or nearly: invalid UTF-8 in a string field, nesting past
    the decoder's depth limit, a known field with the wrong wire type, lengths past the end."""
    fields = list(method.request_class.DESCRIPTOR.fields) or [None]
    field = draw(st.sampled_from(fields))
    number = field.number if field is not None else draw(st.integers(1, 20))
    kind = draw(st.sampled_from(["utf8", "deep", "wire", "length", "group", "huge_tag"]))
    if kind == "utf8":
        return _length_delimited(
            number, draw(st.sampled_from([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"a\xe2\x82"]))
        )
    if kind == "deep":
        return _nested([number, 1, 2], draw(st.sampled_from(_DEPTHS)))
    if kind == "wire":
        return _field(number, draw(st.sampled_from([0, 1, 2, 5])), draw(st.binary(max_size=9)))
    if kind == "length":
        return _field(
            number, 2, _varint(draw(st.sampled_from([1, 2**31, 2**63, 2**64 - 1]))) + b"x"
        )
    if kind == "group":
        return _field(number, 3) + _field(number + 1, 4)
    return _field(draw(st.sampled_from([0, 2**29 - 1, 2**29, 2**32])), 0, b"\x01")


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, at, payload in edits:
        at = at % (len(out) + 1)
        if kind == 0:  # overwrite
            out[at : at + len(payload)] = payload
        elif kind == 1:  # insert
            out[at:at] = payload
        elif kind == 2:  # delete
            del out[at : at + len(payload) + 1]
        else:  # truncate
            del out[at:]
    return bytes(out)


_EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**16), st.binary(min_size=1, max_size=4)),
    min_size=1,
    max_size=4,
)


def raw_bytes(method: Method) -> st.SearchStrategy[bytes]:
    """Bytes for `method` through a raw channel: noise, a valid request mutated, a valid
    request with a crafted field appended, or a crafted field alone."""
    valid = request_bytes(method)
    return st.one_of(
        st.binary(max_size=200),
        st.builds(_mutate, valid, _EDITS),
        st.builds(lambda a, b: a + b, valid, _crafted(method)),
        _crafted(method),
    )
