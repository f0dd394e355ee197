"""Tags and DCB queries (dcb.events): their rules, their matching, and the SQL that answers them
from the indexes.

Owns: the tag rules (`check_tags`: how many, how long, which characters), `QueryItem`, `Query`
and `AppendCondition`, `matches` (pure: does an event of this type with these tags match), the
stream-prefix rules (`check_prefix`, `category_of`), `positions_sql` — the statement that finds
the positions of matching events for either dialect, using only the index on (tag, position),
the one on (event type, position) and, for a stream prefix, the one on (category, position) —
`TimeBisection` (pure: which position to look at next to find where a time begins) and
`query_read` (a query read's arguments checked and its window found, for every backend).
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.

Semantics. A query is a list of items, OR'ed; an item matches an event whose type is one of
the item's types (any type when it names none) and which carries every one of the item's tags
(AND). A query with no items, or with an item naming neither types nor tags, matches every
event.

Why the SQL has this shape. An item is (T1 ∪ … ∪ Tk) ∩ G1 ∩ … ∩ Gm, which distributes into
the union of the conjunctions Ti ∩ G1 ∩ … ∩ Gm. Each conjunction is driven by one index range
scan that is already in position order — the first tag's (tag, position) range, or the type's
(event_type, position) range — and checks the others by index look-ups (EXISTS on the exact
position). Each arm keeps only its first `limit` positions; the union of the arms, in position
order, keeps the first `limit` again. So a page costs a few index ranges of at most `limit`
entries each, never a scan of the events, however many events the store holds.

Stream prefixes. `stream_prefix` "order-" selects the events of the streams whose id starts
with "order-" ("order-1", "order-17/x"; not "orders", not "order"); the seed's "order-*"
spelling says the same. A stream's *category* is its id up to and including its first "-"
("order-1" → "order-"; no "-": ""), and migration 0004 indexes (category, position) on both
backends. A prefix that contains a "-" is answered from that index: the range of its
category (the prefix up to its first "-"), in position order, further checked against the
whole prefix when it is longer. A prefix without a "-" ("ord") cannot name a category; it is
answered from the stream-id index range of the prefix (every stream id starting with it),
sorted by position: it costs the prefix's events in the read's window, not the store's.
With a query, every arm is also checked against the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gater.config import Limits
from gater.errors import InvalidArgumentError, LimitExceededError

from ._pages import read_size

__all__ = [
    "MAX_QUERY_ITEMS",
    "MAX_TAGS_PER_EVENT",
    "MAX_TAGS_PER_ITEM",
    "MAX_TAG_BYTES",
    "MAX_TYPES_PER_ITEM",
    "TAG_CHARACTERS",
    "AppendCondition",
    "TimeBisection",
    "Query",
    "QueryItem",
    "QueryRead",
    "QueryShape",
    "category_of",
    "check_prefix",
    "check_query",
    "check_tags",
    "matches",
    "first_positions_sql",
    "positions_sql",
    "query_bounds",
    "query_read",
]

MAX_TAGS_PER_EVENT = 32
"""Tags one event may carry (after removing repeats)."""
MAX_TAG_BYTES = 128
"""Characters (all ASCII, so bytes) of one tag."""
TAG_CHARACTERS = "A-Z a-z 0-9 and _ - . : / @ + = #"
"""What a tag may be made of, as the error message says it."""
_TAG = re.compile(rf"[A-Za-z0-9_\-.:/@+=#]{{1,{MAX_TAG_BYTES}}}")

MAX_QUERY_ITEMS = 32
MAX_TYPES_PER_ITEM = 32
MAX_TAGS_PER_ITEM = 8
"""A query's bounds: each item becomes (types x 1) arms of one statement, so they bound its
size; 32 items of 32 types is already 1,024 index ranges."""


def check_tags(tags: Sequence[str], field: str) -> tuple[str, ...]:
    """The tags, sorted and without repeats; InvalidArgumentError naming `field[i]` for a bad
    one, LimitExceededError beyond MAX_TAGS_PER_EVENT. Repeats count toward the limit: it is
    checked before any tag is looked at, so a 4 MiB list of one tag costs nothing."""
    if len(tags) > MAX_TAGS_PER_EVENT:
        raise LimitExceededError(
            field, f"at most {MAX_TAGS_PER_EVENT} tags per event (repeats count), got {len(tags)} (max_tags_per_event)",
            limit="max_tags_per_event",
        )
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise InvalidArgumentError(
                f"{field}[{i}]", f"a tag is 1..{MAX_TAG_BYTES} characters of {TAG_CHARACTERS}, got {tag!r}"
            )
    return tuple(sorted(set(tags)))


@dataclass(frozen=True, slots=True)
class QueryItem:
    """Events of any of `types` (any type when empty) carrying all of `tags`."""

    types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """Items OR'ed; no items: every event."""

    items: tuple[QueryItem, ...] = ()

    @property
    def matches_all(self) -> bool:
        return not self.items or any(not item.types and not item.tags for item in self.items)


@dataclass(frozen=True, slots=True)
class AppendCondition:
    """An append goes ahead only if no event matching `fail_if_events_match` has a position
    greater than `after` (-1: no such event at all)."""

    fail_if_events_match: Query
    after: int = -1


class _ItemShape(Protocol):
    types: Sequence[str]
    tags: Sequence[str]


class QueryShape(Protocol):
    """A Query, or anything shaped like one (the protobuf message)."""

    items: Sequence[_ItemShape]


def check_query(query: QueryShape, field: str) -> Query:
    """The query with its tags normalised; InvalidArgumentError naming the field at fault.
    Every count is checked before the items are converted, so a 4 MiB query costs little."""
    if len(query.items) > MAX_QUERY_ITEMS:
        raise LimitExceededError(f"{field}.items", f"at most {MAX_QUERY_ITEMS} items, got {len(query.items)}",
                                 limit="max_query_items")
    items = []
    for i, item in enumerate(query.items):
        where = f"{field}.items[{i}]"
        if len(item.types) > MAX_TYPES_PER_ITEM:
            raise LimitExceededError(f"{where}.types", f"at most {MAX_TYPES_PER_ITEM} types, got {len(item.types)}",
                                     limit="max_types_per_item")
        for j, event_type in enumerate(item.types):
            if not event_type:
                raise InvalidArgumentError(f"{where}.types[{j}]", "must not be empty")
        if len(item.tags) > MAX_TAGS_PER_ITEM:  # repeats count, as for an event's tags
            raise LimitExceededError(f"{where}.tags", f"at most {MAX_TAGS_PER_ITEM} tags, got {len(item.tags)}",
                                     limit="max_tags_per_item")
        tags = check_tags(item.tags, f"{where}.tags")
        items.append(QueryItem(tuple(dict.fromkeys(item.types)), tags))
    return Query(tuple(items))


def matches(query: Query, event_type: str, tags: Iterable[str]) -> bool:
    """Whether an event of `event_type` carrying `tags` matches the query."""
    if not query.items:
        return True
    have = set(tags)
    return any(
        (not item.types or event_type in item.types) and have.issuperset(item.tags) for item in query.items
    )


class _Params:
    """Parameters in order, spelled as the dialect wants them ("?" or "$n")."""

    def __init__(self, dialect: str) -> None:
        self.values: list[object] = []
        self._numbered = dialect == "postgres"

    def __call__(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self._numbered else "?"


def check_prefix(value: str, field: str) -> str:
    """The stream prefix a read or subscription names: the seed's "order-*" spelling is taken
    (one trailing "*" is dropped, as is a leading "$"); InvalidArgumentError naming `field`
    when nothing is left or a "*" is elsewhere."""
    prefix = value[1:] if value.startswith("$") else value
    prefix = prefix[:-1] if prefix.endswith("*") else prefix
    if not prefix:
        raise InvalidArgumentError(field, f'must name a prefix of stream ids (e.g. "order-" or "order-*"), got {value!r}')
    if "*" in prefix:
        raise InvalidArgumentError(field, f'"*" may only end the prefix, got {value!r}')
    return prefix


def category_of(stream_id: str) -> str:
    """A stream's category, as the (category, position) index keys it: the id up to and
    including its first "-" ("order-1" → "order-"), "" when it has none."""
    return stream_id[: stream_id.find("-") + 1]


def _after_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (code-point order,
    which is SQLite's BINARY and PostgreSQL's "C" order of UTF-8); None when there is none."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)
        prefix = prefix[:-1]
    return None


def _category_expr(alias: str, dialect: str) -> str:
    """The indexed expression of migration 0004, spelled exactly as the index spells it (a
    planner only uses an expression index for the same expression)."""
    find = "strpos" if dialect == "postgres" else "instr"
    return f"substr({alias}.stream_id, 1, {find}({alias}.stream_id, '-'))"


def _in_prefix(alias: str, prefix: str, p: _Params, dialect: str) -> str:
    """The condition that `alias`'s stream id starts with `prefix`: its category's equality
    (the index's key) when the prefix names one, and the stream-id range when the category
    alone does not say it all."""
    parts = []
    category = category_of(prefix)
    if category:
        parts.append(f"{_category_expr(alias, dialect)} = {p(category)}")
    if prefix != category:
        parts.append(f"{alias}.stream_id >= {p(prefix)}")
        upper = _after_prefix(prefix)
        if upper is not None:
            parts.append(f"{alias}.stream_id < {p(upper)}")
    return " AND ".join(parts)


def _conjunction(
    event_type: str | None,
    tags: Sequence[str],
    p: _Params,
    store_id: str | None,
    low: int,
    high: int,
    prefix: str = "",
    dialect: str = "sqlite",
) -> str:
    """SELECT position ... of the events of `event_type` (None: any) carrying every tag, in
    streams starting with `prefix` ("": any), in low..high, driven by one index range."""
    store = (lambda alias: f"{alias}.store_id = {p(store_id)} AND ") if store_id is not None else (lambda alias: "")
    if not tags:
        in_store = store("e")  # first: on PostgreSQL the store id is always $1
        of_type = f"e.event_type = {p(event_type)} AND " if event_type is not None else ""
        in_prefix = f"{_in_prefix('e', prefix, p, dialect)} AND " if prefix else ""
        return (
            f"SELECT e.position AS position FROM events e WHERE {in_store}{of_type}{in_prefix}"
            f"e.position >= {p(low)} AND e.position <= {p(high)}"
        )
    first, *others = tags
    sql = (
        f"SELECT t0.position AS position FROM event_tags t0 WHERE {store('t0')}t0.tag = {p(first)}"
        f" AND t0.position >= {p(low)} AND t0.position <= {p(high)}"
    )
    for n, tag in enumerate(others, 1):
        sql += (
            f" AND EXISTS (SELECT 1 FROM event_tags t{n} WHERE {store(f't{n}')}t{n}.tag = {p(tag)}"
            f" AND t{n}.position = t0.position)"
        )
    if event_type is not None or prefix:
        of_type = f" AND e.event_type = {p(event_type)}" if event_type is not None else ""
        in_prefix = f" AND {_in_prefix('e', prefix, p, dialect)}" if prefix else ""
        sql += f" AND EXISTS (SELECT 1 FROM events e WHERE {store('e')}e.position = t0.position{of_type}{in_prefix})"
    return sql


def positions_sql(
    query: Query,
    *,
    dialect: str,
    low: int,
    high: int,
    limit: int,
    backward: bool,
    store_id: str | None = None,
    prefix: str = "",
    params: _Params | None = None,
) -> tuple[str, list[object]]:
    """(statement, parameters) selecting the positions of the first `limit` matching events in
    low..high (inclusive), ascending — or, `backward`, the last ones, descending — of the
    streams starting with `prefix` ("": every stream). `store_id` is given for PostgreSQL,
    whose tables hold every store."""
    p = params if params is not None else _Params(dialect)
    order = "DESC" if backward else "ASC"
    if query.matches_all:
        conjunctions: list[tuple[str | None, Sequence[str]]] = [(None, ())]
    else:
        conjunctions = [(event_type, item.tags) for item in query.items for event_type in (item.types or (None,))]
    if len(conjunctions) == 1:
        arm = _conjunction(*conjunctions[0], p, store_id, low, high, prefix, dialect)
        return f"{arm} ORDER BY position {order} LIMIT {p(limit)}", p.values
    arms = []
    for n, (event_type, tags) in enumerate(conjunctions):
        # Parameters are numbered (or, for "?", bound) in the order they appear in the text.
        arm = _conjunction(event_type, tags, p, store_id, low, high, prefix, dialect)
        arms.append(f"SELECT position FROM ({arm} ORDER BY position {order} LIMIT {p(limit)}) AS a{n}")
    return f"{' UNION '.join(arms)} ORDER BY position {order} LIMIT {p(limit)}", p.values


def first_positions_sql(ranges: Sequence[tuple[Query, int, int]], dialect: str, store_id: str | None = None) -> tuple[str, list[object]]:
    """One statement (one round trip) whose one row holds, for each (query, low, high) in
    order, the first position in low..high of an event the query matches (NULL: none)."""
    p = _Params(dialect)
    columns = [
        f"({positions_sql(q, dialect=dialect, low=low, high=high, limit=1, backward=False, store_id=store_id, params=p)[0]})"
        for q, low, high in ranges
    ]
    return f"SELECT {', '.join(columns)}", p.values


class TimeBisection:
    """Where the events committed at or after a time begin: the first position whose event's
    `created` is >= `epoch_us`, found by bisection over positions 0..head.

    Why bisection is exact: a position is taken by the writer in commit order and `created` is
    stamped at commit, so `created` does not decrease along positions — as long as the
    writer's clock does not step back (and, on PostgreSQL, the nodes' clocks agree). Then
    log2(head) look-ups of the primary key find the start, with no index on time and nothing
    more to write per append. Positions may have holes (events removed from disk): a look-up
    asks for the first event at or after a position.

    Sans-IO: `probe()` is the position to look up next (None: done, `start` is the answer);
    `found(position, created_epoch_us)` gives the first event at or after it (None: none)."""

    __slots__ = ("_high", "_low", "_probe", "epoch_us")

    def __init__(self, epoch_us: int, head: int) -> None:
        self.epoch_us = epoch_us
        self._low, self._high = 0, head + 1
        self._probe = 0

    def probe(self) -> int | None:
        if self._low >= self._high:
            return None
        self._probe = (self._low + self._high) // 2
        return self._probe

    def found(self, event: tuple[int, int] | None) -> None:
        if event is None or event[0] >= self._high or event[1] >= self.epoch_us:
            # Nothing in probe..high-1 is before the time: the start is at or before the probe
            # (reading on from the probe reads the same events as from what it found).
            self._high = self._probe
        else:
            self._low = event[0] + 1

    @property
    def start(self) -> int:
        """The first position of the read (head + 1: every event is older)."""
        return self._low


def query_bounds(start: int | None, backward: bool, head: int) -> tuple[int, int] | None:
    """(low, high) positions a page of a query read looks in, or None when none: forward from
    `start` (None: 0) up to the head, backward from `start` (None, or past the head: the
    head) down to 0."""
    if backward:
        high = head if start is None else min(start, head)
        return (0, high) if high >= 0 else None
    low = 0 if start is None else start
    return (low, head) if low <= head else None


@dataclass(frozen=True, slots=True)
class QueryRead:
    """A query read's arguments, checked, and the window of positions it looks in."""

    query: Query
    prefix: str
    """The stream prefix ("": every stream)."""
    limit: int
    """Events a page may hold (`_pages.read_size`)."""
    head: int
    bounds: tuple[int, int] | None
    """(low, high) of `query_bounds`; None: nothing to read."""


async def query_read(
    query: QueryShape,
    start: int | None,
    limit: int,
    backward: bool,
    head: int | None,
    stream_prefix: str,
    limits: Limits,
    last_position: Callable[[], Awaitable[int]],
) -> QueryRead:
    """What every backend's query read does first: the query and prefix checked (errors name
    "query" and "stream_prefix"), the limit clipped, and the head — when not given, the
    store's last position now: positions are committed in order, so every event up to it is
    visible to the read."""
    checked = check_query(query, "query")
    prefix = check_prefix(stream_prefix, "stream_prefix") if stream_prefix else ""
    limit = read_size(limit, limits)
    if head is None:
        head = await last_position()
    return QueryRead(checked, prefix, limit, head, query_bounds(start, backward, head))
