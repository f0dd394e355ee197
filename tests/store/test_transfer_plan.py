"""store/_transfer.plan_import, the pure rules of an import batch: fed whole, and as the
client feeds it (batches overlapping by one event), and every way a batch can fail to fit."""

from __future__ import annotations

import uuid

import pytest

from gater.errors import ImportMismatchError
from gater.store._transfer import ImportedEvent, held_range, plan_import


def events(count: int, streams: int = 3) -> list[ImportedEvent]:
    versions: dict[str, int] = {}
    out = []
    for p in range(count):
        stream = f"s{p % streams}"
        versions[stream] = versions.get(stream, -1) + 1
        tags = (f"t:{p}",) if p % 4 == 0 else ()
        out.append(ImportedEvent(p, stream, versions[stream], str(uuid.uuid4()), "x:v1", 1_000 + p, b"r%d" % p, tags))
    return out


def apply(stored: dict[int, bytes], versions: dict[str, int], batch: list[ImportedEvent]) -> int:
    """Runs one batch against an in-memory store as a writer would; returns events written."""
    head = max(stored, default=-1)
    held = held_range(batch, head)
    overlap = {p: stored[p] for p in range(held[0], held[1] + 1)} if held else {}
    plan = plan_import(batch, head=head, stored=overlap, stream_versions=versions)
    for position, stream, version, *_, record in plan.rows:
        stored[position] = record
        versions[stream] = version
    return len(plan.rows)


def test_batches_that_overlap_by_one_rebuild_the_whole_log() -> None:
    log = events(25)
    whole: dict[int, bytes] = {}
    assert apply(whole, {}, log) == 25
    stored: dict[int, bytes] = {}
    versions: dict[str, int] = {}
    written = apply(stored, versions, log[:10])
    for start in range(9, 25, 10):  # each batch starts with the last event the store holds
        written += apply(stored, versions, log[start : start + 11])
    assert written == 25 and stored == whole
    assert apply(stored, versions, log[5:25]) == 0  # a repeat writes nothing


def test_plan_counts_streams_tags_and_bytes() -> None:
    plan = plan_import(events(8), head=-1, stored={}, stream_versions={})
    assert plan.new_streams == 3 and plan.last_position == 7
    assert plan.stream_versions == {"s0": 2, "s1": 2, "s2": 1}
    assert plan.tag_rows == [("t:0", 0), ("t:4", 4)]
    assert plan.record_bytes == sum(len(b"r%d" % p) for p in range(8))


@pytest.mark.parametrize(
    ("batch", "head", "why"),
    [
        (lambda log: log[3:6], -1, "expected 0"),  # an empty store starts at 0
        (lambda log: log[5:8], 3, "at or before its head"),  # no overlap
        (lambda log: [log[0], log[2]], -1, "dense"),
        (lambda log: log[0:4], 2, "not a prefix"),  # the stored event at 2 differs
    ],
)
def test_what_does_not_fit_is_refused(batch, head: int, why: str) -> None:
    log = events(8)
    stored = {p: (b"other" if p == 2 else log[p].record) for p in range(head + 1)}
    part = batch(log)
    held = held_range(part, head)
    overlap = {p: stored[p] for p in range(held[0], held[1] + 1)} if held else {}
    with pytest.raises(ImportMismatchError, match=why):
        plan_import(part, head=head, stored=overlap, stream_versions={})


def test_a_version_that_does_not_follow_its_stream_is_refused() -> None:
    log = events(4)
    with pytest.raises(ImportMismatchError, match="does not follow") as info:
        plan_import(log, head=-1, stored={}, stream_versions={"s1": 5})
    assert info.value.position == 1 and info.value.code == "FAILED_PRECONDITION"
