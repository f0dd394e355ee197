"""The stream-prefix and time part of the storage conformance suite: reads of "$all" by stream
prefix (alone and with a DCB query) and where a time begins (`position_at`), written against
gater/store/base.py only.

Owns: `PrefixConformance`, a mixin of `StoreConformance` (so every backend's subclass runs it);
it uses that class's `store` fixture. Kept apart only to keep each module readable.
Must not import a backend module.
"""

from __future__ import annotations

import random

import pytest

from gater.errors import InvalidArgumentError
from gater.store._query import matches
from gater.store.base import EXPECT_ANY, EventStore, Query, QueryItem

from .dcb_conformance import tagged

__all__ = ["PrefixConformance", "read_filtered"]

ALL = Query()

STREAMS = ["order-1", "orders", "order-2", "order", "order-1/x", "ord-3", "customer-1", "x", "order-10"]
"""One event each, in this order (position = index): the cases a prefix must tell apart."""


async def read_filtered(
    store: EventStore,
    prefix: str,
    query: Query = ALL,
    start: int | None = None,
    backward: bool = False,
    page: int = 2,
) -> list[int]:
    """Every position a prefix read returns, in pages of `page`, cut at the first page's head."""
    found: list[int] = []
    head: int | None = None
    key = start
    while True:
        batch, at = await store.read_query(query, key, page, backward, head, stream_prefix=prefix)
        head = at if head is None else head
        found.extend(e.position for e in batch)
        if len(batch) < page:
            return found
        key = batch[-1].position + (-1 if backward else 1)
        if key < 0:
            return found


class PrefixConformance:
    """Mixed into StoreConformance; every test takes its `store` fixture."""

    async def _streams(self, store: EventStore) -> None:
        for i, stream_id in enumerate(STREAMS):
            await store.append(stream_id, [tagged(f"type-{i % 2}", f"n:{i}")], EXPECT_ANY)

    # -- reads by stream prefix ---------------------------------------------------------------

    async def test_a_prefix_selects_the_streams_starting_with_it(self, store: EventStore) -> None:
        await self._streams(store)
        # "order-" is a category: not "orders", not "order".
        assert await read_filtered(store, "order-") == [0, 2, 4, 8]
        assert await read_filtered(store, "order-*") == [0, 2, 4, 8]  # the seed's spelling
        assert await read_filtered(store, "$order-*") == [0, 2, 4, 8]
        # Longer than its category: "order-1" is a prefix of "order-1/x" and "order-10" too.
        assert await read_filtered(store, "order-1") == [0, 4, 8]
        assert await read_filtered(store, "order-1/") == [4]
        # No "-": a plain prefix of stream ids, whatever their category.
        assert await read_filtered(store, "ord") == [0, 1, 2, 3, 4, 5, 8]
        assert await read_filtered(store, "orders") == [1]
        assert await read_filtered(store, "x") == [7]
        assert await read_filtered(store, "nothing-") == []
        assert await read_filtered(store, "nothing") == []

    async def test_a_prefix_read_backward_from_a_position_in_pages(self, store: EventStore) -> None:
        await self._streams(store)
        assert await read_filtered(store, "order-", backward=True) == [8, 4, 2, 0]
        assert await read_filtered(store, "order-", start=3) == [4, 8]
        assert await read_filtered(store, "order-", start=3, backward=True) == [2, 0]
        assert await read_filtered(store, "ord", start=100, backward=True) == [8, 5, 4, 3, 2, 1, 0]
        assert await read_filtered(store, "order-", start=9) == []
        page, head = await store.read_query(Query(), None, 3, stream_prefix="order-")
        assert ([e.position for e in page], head) == ([0, 2, 4], 8)
        assert [e.stream_id for e in page] == ["order-1", "order-2", "order-1/x"]

    async def test_a_prefix_read_stops_at_its_head(self, store: EventStore) -> None:
        await self._streams(store)
        page, head = await store.read_query(Query(), None, 2, stream_prefix="order-")
        await store.append("order-3", [tagged("late")], EXPECT_ANY)
        rest, same = await store.read_query(Query(), page[-1].position + 1, 10, head=head, stream_prefix="order-")
        assert ([e.position for e in rest], same) == ([4, 8], 8)
        assert await read_filtered(store, "order-") == [0, 2, 4, 8, 9]

    async def test_a_prefix_with_a_query(self, store: EventStore) -> None:
        await self._streams(store)
        of_type = Query((QueryItem(("type-0",), ()),))
        assert await read_filtered(store, "order-", of_type) == [0, 2, 4, 8]
        assert await read_filtered(store, "ord", Query((QueryItem(("type-1",), ()),))) == [1, 3, 5]
        by_tags = Query((QueryItem((), ("n:2",)), QueryItem(("type-1",), ("n:7",)), QueryItem((), ("n:1",))))
        assert await read_filtered(store, "order-", by_tags) == [2]
        assert await read_filtered(store, "orders", by_tags) == [1]
        assert await read_filtered(store, "x", by_tags, backward=True) == [7]

    @pytest.mark.parametrize("bad", ["*", "$", "a*b", "**"])
    async def test_a_bad_prefix_is_refused_naming_the_field(self, store: EventStore, bad: str) -> None:
        with pytest.raises(InvalidArgumentError) as caught:
            await store.read_query(Query(), None, 10, stream_prefix=bad)
        assert caught.value.field == "stream_prefix"

    async def test_prefix_reads_agree_with_matching_on_random_data(self, store: EventStore) -> None:
        rng = random.Random(1409)
        streams = ["a-1", "a-2", "a-10", "ab-1", "a", "b-1", "b-1-2", "ba", "é-1", "a-é"]
        written: list[tuple[str, str, tuple[str, ...]]] = []
        for _ in range(15):
            stream_id = rng.choice(streams)
            batch = []
            for _ in range(rng.randint(1, 4)):
                event = (stream_id, rng.choice("xyz"), tuple(rng.sample(["k:0", "k:1", "k:2"], rng.randint(0, 2))))
                written.append(event)
                batch.append(tagged(event[1], *event[2]))
            await store.append(stream_id, batch, EXPECT_ANY)
        for _ in range(30):
            prefix = rng.choice(["a-", "a", "ab", "a-1", "b-1-", "b", "é-", "a-é", "c-", "b-1"])
            query = Query(tuple(
                QueryItem(tuple(rng.sample("xyz", rng.randint(0, 2))), tuple(rng.sample(["k:0", "k:1"], rng.randint(0, 1))))
                for _ in range(rng.randint(0, 2))
            ))
            start = rng.randint(0, len(written))
            hits = [p for p, (s, t, g) in enumerate(written) if s.startswith(prefix) and matches(query, t, g)]
            assert await read_filtered(store, prefix, query, start=start) == [p for p in hits if p >= start]
            back = [p for p in hits if p <= start][::-1]
            assert await read_filtered(store, prefix, query, start=start, backward=True) == back, (prefix, query)

    # -- where a time begins ------------------------------------------------------------------

    async def test_position_at_finds_the_first_event_at_or_after_a_time(self, store: EventStore) -> None:
        assert await store.position_at(0) == 0  # an empty store: every read from a time is empty
        for n in range(7):
            await store.append(f"s-{n}", [tagged("t"), tagged("t")] if n % 2 else [tagged("t")], EXPECT_ANY)
        created = [e.created_epoch_us for e in await store.read_all(None, 100)]
        assert created == sorted(created)  # commit order is time order
        head = len(created) - 1
        for t in sorted({*created, *(c + 1 for c in created), *(c - 1 for c in created)}):
            want = next((p for p, c in enumerate(created) if c >= t), head + 1)
            assert await store.position_at(t) == want, t
        assert await store.position_at(-10**12) == 0
        assert await store.position_at(created[-1] + 1) == head + 1
