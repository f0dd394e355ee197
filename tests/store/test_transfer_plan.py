"""store/_transfer.plan_import, the pure rules of an import batch: fed whole, and as the
client feeds it (batches overlapping by one event), with the gaps a scavenge leaves, and every
way a batch can fail to fit; check_stream_states, the check of a batch's stream states."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gater.errors import ImportMismatchError
from gater.store._transfer import (
    ImportedEvent,
    StreamState,
    check_stream_states,
    held_range,
    plan_import,
    prepare_import,
)


def events(count: int, streams: int = 3) -> list[ImportedEvent]:
    versions: dict[str, int] = {}
    out = []
    for p in range(count):
        stream = f"s{p % streams}"
        versions[stream] = versions.get(stream, -1) + 1
        tags = (f"t:{p}",) if p % 4 == 0 else ()
        out.append(ImportedEvent(p, stream, versions[stream], str(uuid.uuid4()), "x:v1", 1_000 + p, b"r%d" % p, tags))
    return out


def apply(stored: dict[int, bytes], versions: dict[str, int], batch: list[ImportedEvent], starts_file: bool = False) -> int:
    """Runs one batch against an in-memory store as a writer would; returns events written."""
    head = max(stored, default=-1)
    held = held_range(batch, head)
    overlap = {p: stored[p] for p in range(held[0], held[1] + 1) if p in stored} if held else {}
    plan = plan_import(batch, head=head, stored=overlap, stream_versions=versions, starts_file=starts_file)
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
        (lambda log: log[5:8], 3, "at or before its head"),  # no overlap
        (lambda log: [log[0], log[2], log[1]], -1, "strictly increasing"),
        (lambda log: [log[0], log[1], log[1]], -1, "strictly increasing"),
        (lambda log: log[3:6], -1, "must be the file's first"),  # a later batch that overtook the first
        (lambda log: log[0:4], 2, "not a prefix"),  # the stored event at 2 differs
        (lambda log: [log[0], log[1], log[3], log[4]], 3, "holds an event the import does not"),  # 2 is held
    ],
)
def test_what_does_not_fit_is_refused(batch, head: int, why: str) -> None:
    log = events(8)
    stored = {p: (b"other" if p == 2 else log[p].record) for p in range(head + 1)}
    part = batch(log)
    held = held_range(part, head)
    overlap = {p: stored[p] for p in range(held[0], held[1] + 1) if p in stored} if held else {}
    with pytest.raises(ImportMismatchError, match=why):
        plan_import(part, head=head, stored=overlap, stream_versions={})


def test_a_version_that_does_not_follow_its_stream_is_refused() -> None:
    log = events(4)
    with pytest.raises(ImportMismatchError, match="does not follow") as info:
        plan_import(log, head=-1, stored={}, stream_versions={"s1": 5})
    assert info.value.position == 1 and info.value.code == "FAILED_PRECONDITION"


def test_gaps_left_by_a_scavenge_are_imported_as_they_are() -> None:
    """A scavenged source: positions 0, 1, 4 and 6 gone, and with them versions of s0 and s1.
    Batches overlapping by one event rebuild it, gaps included, and its head is the source's."""
    log = [e for e in events(12) if e.position not in (0, 1, 4, 6)]
    whole: dict[int, bytes] = {}
    assert apply(whole, {}, log, starts_file=True) == 8 and max(whole) == 11
    stored: dict[int, bytes] = {}
    versions: dict[str, int] = {}
    written = apply(stored, versions, log[:3], starts_file=True)
    written += apply(stored, versions, log[2:6])
    written += apply(stored, versions, log[5:])
    assert written == 8 and stored == whole and sorted(stored) == [2, 3, 5, 7, 8, 9, 10, 11]
    assert apply(stored, versions, log[1:]) == 0  # a repeat writes nothing


def state(stream_id: str, version: int) -> StreamState:
    return StreamState(stream_id, version, 1, 0, version + 1, None, None, "{}")


def test_a_stream_state_behind_the_stored_stream_is_refused() -> None:
    check_stream_states([state("s0", 3)], {"s0": 3}, 9)
    check_stream_states([state("s9", 0)], {}, 9)  # no events imported for it: all scavenged
    with pytest.raises(ImportMismatchError, match="past the import's 2") as info:
        check_stream_states([state("s0", 2)], {"s0": 3}, 9)
    assert info.value.code == "FAILED_PRECONDITION"


def _outcome(batch: list[ImportedEvent], **kwargs: object) -> object:
    try:
        plan = plan_import(batch, **kwargs)  # type: ignore[arg-type]
    except ImportMismatchError as e:
        return ("refused", e.position, e.message)
    return (plan.rows, plan.tag_rows, plan.stream_versions, plan.new_streams, plan.record_bytes, plan.last_position)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_a_prepared_batch_is_planned_per_stream_with_the_same_plan_or_the_same_refusal(data: st.DataObject) -> None:
    """prepare_import's check per stream against plan_import's check per event: batches in
    order and not, overlapping the head or not, stored records equal or not, stream versions
    as stored, behind or ahead."""
    log = events(data.draw(st.integers(1, 30)), streams=data.draw(st.integers(1, 4)))
    start = data.draw(st.integers(0, len(log) - 1))
    batch = log[start : data.draw(st.integers(start + 1, len(log)))]
    if data.draw(st.booleans()):  # out of order: two events swapped, or one repeated
        i, j = data.draw(st.integers(0, len(batch) - 1)), data.draw(st.integers(0, len(batch) - 1))
        batch = list(batch)
        batch[i], batch[j] = batch[j], batch[i]
        if data.draw(st.booleans()):
            batch.insert(i, batch[j])
    if data.draw(st.booleans()):  # gaps, as a scavenge leaves them
        batch = [e for e in batch if data.draw(st.booleans())] or batch[:1]
    head = data.draw(st.integers(-1, len(log)))
    stored = {e.position: e.record for e in log if batch[0].position <= e.position <= head}
    if stored and data.draw(st.booleans()):  # the store holds something else somewhere
        position = data.draw(st.sampled_from(sorted(stored)))
        stored[position] = b"other" if data.draw(st.booleans()) else stored.pop(position)
    versions: dict[str, int] = {}
    for e in log:
        if e.position <= head:
            versions[e.stream_id] = e.version
    for stream_id in list(versions):
        versions[stream_id] += data.draw(st.integers(-2, 2))  # the store's own versions, off or not
    if data.draw(st.booleans()) and versions:
        del versions[data.draw(st.sampled_from(sorted(versions)))]
    kwargs = {"head": head, "stored": stored, "stream_versions": versions, "starts_file": data.draw(st.booleans())}
    assert _outcome(batch, prepared=prepare_import(batch), **kwargs) == _outcome(batch, **kwargs)


@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["s0", "s1", "s2"])), min_size=1, max_size=12),
       st.integers(-1, 21))
def test_the_streams_a_batch_writes_are_those_with_an_event_past_the_head_in_order_or_not(pairs, head) -> None:
    batch = [ImportedEvent(p, s, v, str(uuid.UUID(int=v)), "x:v1", 1, b"r") for v, (p, s) in enumerate(pairs)]
    assert sorted(prepare_import(batch).streams_after(head)) == sorted({e.stream_id for e in batch if e.position > head})
