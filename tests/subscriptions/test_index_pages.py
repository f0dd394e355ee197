"""subscriptions._catch_up.index_pages on a real store: pages in order, each read up to the head
the first page found (what is appended meanwhile is left to the caller's next pass), ending
with a short page — framed in batches, and as RecordedEvents."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest

from exesdb.v1 import types_pb2
from gater.config import Limits
from gater.store.base import EXPECT_ANY, EncodedBatch, Query, QueryItem
from gater.store.sqlite import SqliteBackend
from gater.subscriptions._catch_up import Page, index_pages
from tests.store.conformance import events

__all__: list[str] = []

TAGGED = Query((QueryItem((), ("course:c1",)),))


def tagged(n: int) -> list:  # noqa: ANN201 - NewEvents
    return [dataclasses.replace(e, tags=("course:c1",)) for e in events(n)]


def positions(page: Page, batch: int | None) -> list[int]:
    if batch is None:
        return [e.position for e in page]  # type: ignore[union-attr]
    assert all(isinstance(b, EncodedBatch) and 1 <= b.count <= batch for b in page)
    found = [types_pb2.EventRecord.FromString(r).position for b in page for r in b.records()]  # type: ignore[union-attr]
    assert [b.last_position for b in page] == [found[sum(b.count for b in page[: i + 1]) - 1] for i in range(len(page))]  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("batch", [None, 1, 20, 50])
async def test_pages_stop_at_the_first_pages_head_and_what_came_after_is_read_next(tmp_path: Path, batch: int | None) -> None:
    async with SqliteBackend(tmp_path / "data", limits=Limits()) as backend:
        await backend.create_store("s")
        store = await backend.open_store("s")
        await store.append("a", tagged(120), EXPECT_ANY)
        await store.append("noise", events(30), EXPECT_ANY)
        first_head = await store.last_position()
        seen: list[int] = []
        heads: set[int] = set()
        async with contextlib.aclosing(index_pages(store, TAGGED, "", 0, 50, batch)) as pages:
            async for page, head in pages:
                if not seen:  # appended after the first page was read
                    await store.append("b", tagged(70), EXPECT_ANY)
                seen += positions(page, batch)
                heads.add(head)
        assert heads == {first_head}
        assert seen == list(range(120))  # in order, none past the first head
        # The caller's next pass, from where it stopped, reads the rest.
        rest: list[int] = []
        async with contextlib.aclosing(index_pages(store, TAGGED, "", first_head + 1, 50, batch)) as pages:
            async for page, _ in pages:
                rest += positions(page, batch)
        assert rest == list(range(first_head + 1, first_head + 71))
