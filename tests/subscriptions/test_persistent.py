"""Tests of gater.subscriptions.persistent: unit cases, then a model-based property test that
drives random interleavings of offer / deliver / ack / nack / expire / consumers / replay /
restart against a simple model and checks the invariants after every step."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exesdb.v1 import subscriptions_pb2
from gater.store.base import RecordedEvent
from gater.subscriptions.persistent import (
    Delivery,
    NackAction,
    PersistentSettings,
    PersistentState,
)

pytestmark = pytest.mark.timeout(120)


def ev(position: int) -> RecordedEvent:
    return RecordedEvent(position, f"s-{position % 3}", position, f"id-{position}", "t", b"")


def evs(*positions: int) -> list[RecordedEvent]:
    return [ev(p) for p in positions]


def state_with(
    *positions: int,
    consumers: tuple[str, ...] = ("a",),
    timeout_s: float = 10.0,
    max_retries: int = 3,
    max_in_flight: int = 100,
) -> PersistentState:
    state = PersistentState(PersistentSettings(timeout_s, max_retries, max_in_flight))
    for consumer in consumers:
        state.add_consumer(consumer)
    if positions:
        state.offer(evs(*positions), max(positions))
    return state


def positions_of(deliveries: list[Delivery]) -> list[int]:
    return [d.position for d in deliveries]


def expand(runs: list[list[int]]) -> dict[int, int]:
    """A snapshot's "outstanding" runs as position -> deliveries."""
    return {p: n for first, last, n in runs for p in range(first, last + 1)}


# --- settings -----------------------------------------------------------------------------


def test_settings_from_proto_values_apply_the_documented_defaults() -> None:
    assert PersistentSettings.from_proto_values() == PersistentSettings(30.0, 10, 100)
    assert PersistentSettings.from_proto_values(1500, 2, 7) == PersistentSettings(1.5, 2, 7)
    proto = subscriptions_pb2.SubscriptionSettings(message_timeout_ms=250)
    s = PersistentSettings.from_proto_values(
        proto.message_timeout_ms, proto.max_retries, proto.max_in_flight
    )
    assert (s.message_timeout_s, s.max_retries, s.max_in_flight) == (0.25, 10, 100)


@pytest.mark.parametrize("args", [(0.0, 1, 1), (-1.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)])
def test_settings_reject_nonsense(args: tuple) -> None:
    with pytest.raises(ValueError):
        PersistentSettings(*args)


def test_nack_actions_mirror_the_proto_enum() -> None:
    for action in NackAction:
        assert subscriptions_pb2.NackAction.Value(f"NACK_ACTION_{action.name}") == action


# --- offer, deliver, ack, checkpoint ---------------------------------------------------------


def test_new_state_starts_at_its_checkpoint() -> None:
    state = PersistentState(checkpoint=41)
    assert state.checkpoint == 41
    assert state.next_position == 42
    assert state.next_deadline() is None
    assert state.next_deliveries(0.0) == []
    with pytest.raises(ValueError):
        PersistentState(checkpoint=-2)


def test_ack_moves_the_checkpoint_only_past_contiguous_done_events() -> None:
    state = state_with(0, 1, 2)
    deliveries = state.next_deliveries(0.0)
    assert [(d.consumer_id, d.position, d.retry_count) for d in deliveries] == [
        ("a", 0, 0),
        ("a", 1, 0),
        ("a", 2, 0),
    ]
    assert deliveries[1].event == ev(1)
    assert state.checkpoint == -1
    assert state.ack([1]) == 1
    assert state.checkpoint == -1  # 0 is still out
    state.ack([0])
    assert state.checkpoint == 1
    state.ack([2])
    assert state.checkpoint == 2
    assert state.in_flight_count == 0


def test_gaps_that_did_not_match_move_the_checkpoint() -> None:
    state = state_with()
    assert state.offer([], scanned_up_to=99) == 0
    assert state.checkpoint == 99
    assert state.next_position == 100
    state.offer(evs(105), scanned_up_to=120)
    assert state.checkpoint == 104  # held by 105
    assert state.next_position == 121
    state.next_deliveries(0.0)
    state.ack([105])
    assert state.checkpoint == 120


def test_offer_validates_order_and_changes_nothing_on_error() -> None:
    state = state_with(0, 1)
    with pytest.raises(ValueError):
        state.offer(evs(5, 4), 10)
    with pytest.raises(ValueError):
        state.offer(evs(5, 5), 10)
    with pytest.raises(ValueError):
        state.offer(evs(5, 8), 6)
    assert state.next_position == 2
    assert state.outstanding_count == 2


def test_offering_examined_positions_again_is_ignored() -> None:
    state = state_with(0, 1, 2)
    state.next_deliveries(0.0)
    state.ack([1])
    assert state.offer(evs(0, 1, 2, 3), 3) == 1  # only 3 is new
    assert state.outstanding_count == 3  # 0, 2, 3
    assert positions_of(state.next_deliveries(0.0)) == [3]


def test_no_consumers_no_deliveries() -> None:
    state = state_with(0, consumers=())
    assert state.next_deliveries(0.0) == []
    assert state.waiting_count == 1
    state.add_consumer("a")
    assert positions_of(state.next_deliveries(0.0)) == [0]


def test_acks_are_idempotent_and_unknown_positions_ignored() -> None:
    state = state_with(0, 1)
    state.next_deliveries(0.0)
    assert state.ack([0, 0, 77, -5]) == 1
    assert state.ack([0]) == 0
    assert state.checkpoint == 0
    assert state.in_flight() == {1: "a"}


def test_an_ack_for_a_waiting_event_counts() -> None:
    # A late ack from a consumer whose delivery timed out: it did process the event.
    state = state_with(0, timeout_s=1.0)
    state.next_deliveries(0.0)
    assert state.expire(1.0) == [0]
    assert state.waiting_count == 1
    assert state.ack([0]) == 1
    assert state.checkpoint == 0
    assert state.next_deliveries(2.0) == []


def test_max_in_flight_is_a_window_over_all_consumers() -> None:
    state = state_with(*range(10), consumers=("a", "b"), max_in_flight=3)
    first = state.next_deliveries(0.0)
    assert positions_of(first) == [0, 1, 2]
    assert state.next_deliveries(0.0) == []
    state.ack([1])
    assert positions_of(state.next_deliveries(0.0)) == [3]
    assert state.in_flight_count == 3


def test_competing_consumers_share_round_robin() -> None:
    state = state_with(*range(6), consumers=("a", "b", "c"))
    deliveries = state.next_deliveries(0.0)
    assert [d.consumer_id for d in deliveries] == ["a", "b", "c", "a", "b", "c"]
    assert {c: state.consumer_load(c) for c in "abc"} == {"a": 2, "b": 2, "c": 2}


def test_competing_consumers_least_loaded_first() -> None:
    state = state_with(*range(4), consumers=("a", "b"))
    state.next_deliveries(0.0)  # a: 0, 2; b: 1, 3
    state.ack([0, 2])
    state.offer(evs(4, 5, 6), 6)
    assert [d.consumer_id for d in state.next_deliveries(0.0)] == ["a", "a", "b"]


def test_read_budget_bounds_held_events() -> None:
    state = state_with(max_in_flight=2)
    assert state.read_budget == 4
    state.offer(evs(0, 1, 2), 2)
    assert state.read_budget == 1
    state.next_deliveries(0.0)
    state.ack([0, 1])
    assert state.read_budget == 3


# --- timeouts, retries, parking -----------------------------------------------------------


def test_expire_redelivers_with_a_higher_retry_count() -> None:
    state = state_with(0, consumers=("a", "b"), timeout_s=5.0, max_retries=5)
    assert [(d.consumer_id, d.retry_count) for d in state.next_deliveries(100.0)] == [("a", 0)]
    assert state.next_deadline() == 105.0
    assert state.expire(104.999) == []
    assert state.expire(105.0) == [0]
    again = state.next_deliveries(105.0)
    assert [(d.position, d.retry_count) for d in again] == [(0, 1)]
    assert state.next_deadline() == 110.0


def test_parked_after_max_retries_failed_deliveries() -> None:
    state = state_with(0, 1, timeout_s=1.0, max_retries=2)
    now = 0.0
    seen = []
    for _ in range(5):
        for d in state.next_deliveries(now):
            if d.position == 0:
                seen.append(d.retry_count)
            else:
                state.ack([d.position])
        now += 1.0
        state.expire(now)
    assert seen == [0, 1]  # delivered max_retries times, then parked
    assert state.parked == {0}
    assert state.checkpoint == 1  # parked counts as done
    assert state.outstanding_count == 0


def test_nack_actions() -> None:
    state = state_with(0, 1, 2, 3, max_retries=2)
    state.next_deliveries(0.0)
    assert state.nack([0], NackAction.RETRY) == 1
    assert state.nack([1], "park") == 1
    assert state.nack([2], NackAction.SKIP) == 1
    assert state.nack([99], NackAction.SKIP) == 0
    assert state.parked == {1}
    assert state.in_flight() == {3: "a"}
    redelivered = state.next_deliveries(1.0)
    assert [(d.position, d.retry_count) for d in redelivered] == [(0, 1)]
    assert state.nack([0], 0) == 1  # second failure: parked (max_retries=2)
    assert state.parked == {0, 1}
    state.ack([3])
    assert state.checkpoint == 3


def test_nack_retry_of_an_event_not_in_flight_does_nothing() -> None:
    state = state_with(0, consumers=())
    assert state.nack([0], NackAction.RETRY) == 0
    state.add_consumer("a")
    assert [d.retry_count for d in state.next_deliveries(0.0)] == [0]


def test_nack_rejects_unknown_actions() -> None:
    state = state_with(0)
    with pytest.raises(ValueError):
        state.nack([0], "explode")
    with pytest.raises(ValueError):
        state.nack([0], 7)


def test_a_leaving_consumer_hands_its_events_to_the_others() -> None:
    state = state_with(0, 1, 2, consumers=("a", "b"), max_retries=5)
    state.next_deliveries(0.0)  # a: 0, 2; b: 1
    assert state.remove_consumer("a") == [0, 2]
    assert state.remove_consumer("a") == []
    assert state.consumers == ("b",)
    again = state.next_deliveries(1.0)
    assert [(d.consumer_id, d.position, d.retry_count) for d in again] == [("b", 0, 1), ("b", 2, 1)]


def test_a_leaving_consumer_can_park_a_poison_event() -> None:
    state = state_with(0, consumers=("a",), max_retries=1)
    state.next_deliveries(0.0)
    state.remove_consumer("a")
    assert state.parked == {0}
    assert state.checkpoint == 0


def test_next_deadline_skips_acked_events() -> None:
    state = state_with(0, timeout_s=1.0)
    state.next_deliveries(0.0)
    state.offer(evs(1), 1)
    state.next_deliveries(5.0)
    state.ack([0])
    assert state.next_deadline() == 6.0


# --- replay, snapshot, restore ------------------------------------------------------------


def test_replaying_parked_events_the_checkpoint_has_passed() -> None:
    state = state_with(0, 1)
    state.next_deliveries(0.0)
    state.nack([0], NackAction.PARK)
    state.ack([1])
    assert state.checkpoint == 1
    changes = state.changes
    assert state.replay_parked() == 1
    assert state.changes != changes
    assert state.parked == frozenset()
    assert state.missing == [0]
    assert state.snapshot()["outstanding"] == [[0, 0, 0]]  # at the checkpoint: still to do
    assert state.next_deliveries(1.0) == []  # its event must be fetched first
    assert state.supply(evs(0, 1)) == 1
    again = state.next_deliveries(1.0)
    assert [(d.position, d.retry_count) for d in again] == [(0, 0)]
    assert state.checkpoint == 1  # never moves back
    state.ack([0])
    assert state.snapshot() == {
        "format": 2, "checkpoint": 1, "scanned": 1, "parked": [], "outstanding": [], "ahead": []
    }


def test_snapshot_is_json_and_restores() -> None:
    state = state_with(0, 1, 2, 3, 4, 5, 6)
    state.next_deliveries(0.0)
    state.nack([0], NackAction.PARK)
    state.ack([1, 5])  # 5: above the checkpoint, held back by 2
    state.nack([3], NackAction.PARK)  # the same
    state.nack([6], NackAction.RETRY)  # delivered once, waiting again
    snap = json.loads(json.dumps(state.snapshot()))
    assert snap == {
        "format": 2,
        "checkpoint": 1,
        "scanned": 6,
        "parked": [0, 3],
        "outstanding": [[2, 2, 1], [4, 4, 1], [6, 6, 1]],
        "ahead": [],
    }
    restored = PersistentState.restore(snap, state.settings)
    assert restored.checkpoint == 1
    assert restored.next_position == 7  # what was examined stays examined
    assert restored.parked == {0, 3}
    assert restored.consumers == ()
    assert restored.missing == [2, 4, 6]
    restored.add_consumer("b")
    # Exactly the outstanding events come back, each counting its earlier delivery; the
    # acked 5 and the parked 3 do not.
    assert restored.offer(evs(3, 5), 6) == 0  # parked 3, acked 5: read again, not taken
    assert restored.supply(evs(2, 4, 6)) == 3
    assert [(d.position, d.retry_count) for d in restored.next_deliveries(0.0)] == [(2, 1), (4, 1), (6, 1)]
    restored.ack([2, 4, 6])
    assert restored.checkpoint == 6
    assert restored.parked == {0, 3}


def test_a_format_1_snapshot_restores() -> None:
    # What nodes wrote before format 2: everything after the checkpoint is read again.
    snap = {"format": 1, "checkpoint": 1, "parked": [0, 3], "replay": []}
    restored = PersistentState.restore(snap)
    assert restored.checkpoint == 1
    assert restored.next_position == 2
    assert restored.parked == {0, 3}
    assert restored.consumers == ()
    restored.add_consumer("b")
    # Reading again from checkpoint + 1: 2 and 4 are redelivered, parked 3 is not.
    assert restored.offer(evs(2, 3, 4), 4) == 2
    assert positions_of(restored.next_deliveries(0.0)) == [2, 4]
    restored.ack([2, 4])
    assert restored.checkpoint == 4
    assert restored.parked == {0, 3}
    assert restored.snapshot()["format"] == 2


def test_events_in_flight_at_a_crash_come_back_counted_and_park_at_max_retries() -> None:
    state = state_with(0, 1, max_retries=2)
    state.next_deliveries(0.0)
    state.nack([1], NackAction.RETRY)
    state.next_deliveries(0.0)  # 1 is out for the second time
    restored = PersistentState.restore(json.loads(json.dumps(state.snapshot())), state.settings)
    # 0 was delivered once (it comes back with retry_count 1); 1 twice: max_retries, parked.
    assert restored.parked == {1}
    assert restored.missing == [0]
    restored.add_consumer("a")
    restored.supply(evs(0))
    assert [(d.position, d.retry_count) for d in restored.next_deliveries(0.0)] == [(0, 1)]
    assert restored.changes != 0  # the parking is to be persisted


def test_restore_keeps_replayed_events_to_redeliver() -> None:
    state = state_with(0, 1)
    state.next_deliveries(0.0)
    state.nack([0, 1], NackAction.PARK)
    state.replay_parked()
    state.supply(evs(0, 1))
    state.next_deliveries(0.0)
    state.ack([1])
    restored = PersistentState.restore(state.snapshot())
    assert restored.missing == [0]
    restored.add_consumer("a")
    restored.offer([], 1)  # nothing new to read
    restored.supply(evs(0))
    assert positions_of(restored.next_deliveries(0.0)) == [0]


def test_replay_of_a_parked_event_above_the_checkpoint_after_restore() -> None:
    restored = PersistentState.restore({"checkpoint": 1, "parked": [3]})
    restored.add_consumer("a")
    assert restored.replay_parked() == 1
    assert restored.missing == [3]
    restored.offer(evs(2, 3), 3)  # reading on reaches it: taken from the read
    assert restored.missing == []
    assert positions_of(restored.next_deliveries(0.0)) == [2, 3]
    restored.ack([2])
    assert restored.checkpoint == 2
    restored.ack([3])
    assert restored.checkpoint == 3


def test_a_replayed_event_finished_before_the_read_reaches_it_is_not_read_again() -> None:
    restored = PersistentState.restore({"checkpoint": 1, "parked": [3, 5]})
    restored.add_consumer("a")
    restored.replay_parked()
    restored.supply(evs(3, 5))
    assert positions_of(restored.next_deliveries(0.0)) == [3, 5]
    restored.ack([3])
    restored.nack([5], NackAction.SKIP)
    assert restored.offer(evs(2, 3, 4, 5), 5) == 2
    assert positions_of(restored.next_deliveries(0.0)) == [2, 4]
    restored.ack([2, 4])
    assert restored.checkpoint == 5
    assert restored.outstanding_count == 0


@pytest.mark.parametrize(
    "snap",
    [
        {"format": 3, "checkpoint": 1},
        {"checkpoint": -3},
        {"checkpoint": "1"},
        {"checkpoint": 1, "parked": [-1]},
        {"checkpoint": 1, "parked": "12"},
        {"checkpoint": 1, "parked": [1.5]},
        {"checkpoint": 1, "replay": [2]},
        {"checkpoint": 5, "parked": [1], "replay": [1]},
        {"format": 2, "checkpoint": 5, "scanned": 4},
        {"format": 2, "checkpoint": 1, "scanned": 5, "outstanding": [[3, 2, 0]]},
        {"format": 2, "checkpoint": 1, "scanned": 5, "outstanding": [[3, 4]]},
        {"format": 2, "checkpoint": 1, "scanned": 5, "outstanding": [[3, 4, -1]]},
        {"format": 2, "checkpoint": 1, "scanned": 5, "outstanding": [[2, 4, 0], [4, 4, 1]]},
        {"format": 2, "checkpoint": 1, "scanned": 5, "outstanding": [[3, 3, 0]], "parked": [3]},
        {"format": 2, "checkpoint": 1, "scanned": 5, "ahead": [5]},
    ],
)
def test_restore_rejects_malformed_snapshots(snap: dict) -> None:
    with pytest.raises(ValueError):
        PersistentState.restore(snap)


def test_changes_moves_when_the_snapshot_does() -> None:
    state = state_with(0, 1)
    before = state.changes
    state.next_deliveries(0.0)
    assert state.changes != before  # deliveries are persisted (before they are sent)
    before = state.changes
    state.ack([1])  # above the checkpoint: it stays, the ack is recorded all the same
    assert state.checkpoint == -1
    assert state.changes != before


# --- the model-based property test --------------------------------------------------------

OUTSTANDING = ("waiting", "inflight", "missing")
CONSUMERS = ("a", "b", "c")

_ops = {
    "append": st.tuples(st.just("append"), st.lists(st.booleans(), min_size=1, max_size=6)),
    "offer": st.tuples(st.just("offer"), st.integers(1, 8)),
    "deliver": st.tuples(st.just("deliver")),
    "ack": st.tuples(st.just("ack"), st.lists(st.integers(-1, 40), max_size=3)),
    "ack_out": st.tuples(st.just("ack_out"), st.integers(0, 20)),
    "nack": st.tuples(st.just("nack"), st.sampled_from(list(NackAction)), st.integers(0, 20)),
    "tick": st.tuples(st.just("tick"), st.floats(0.0, 12.0)),
    "join": st.tuples(st.just("join"), st.sampled_from(CONSUMERS)),
    "leave": st.tuples(st.just("leave"), st.sampled_from(CONSUMERS)),
    "replay": st.tuples(st.just("replay")),
    "supply": st.tuples(st.just("supply")),
    "restart": st.tuples(st.just("restart")),
}
# The everyday operations weigh more than the rare ones (joins, leaves, replays, restarts).
_weights = {
    "append": 4,
    "offer": 4,
    "deliver": 5,
    "ack": 1,
    "ack_out": 5,
    "nack": 2,
    "tick": 3,
    "join": 1,
    "leave": 1,
    "replay": 1,
    "supply": 1,
    "restart": 1,
}
ops = st.one_of([_ops[name] for name, weight in _weights.items() for _ in range(weight)])
programs = st.lists(ops, min_size=30, max_size=200)
settings_strategy = st.builds(
    PersistentSettings,
    message_timeout_s=st.sampled_from([1.0, 5.0, 10.0]),
    max_retries=st.integers(1, 4),
    max_in_flight=st.integers(1, 6),
)


class Sim:
    """Drives a PersistentState the way the shell will, against a model of what it should do."""

    def __init__(self, settings: PersistentSettings) -> None:
        self.settings = settings
        self.state = PersistentState(settings)
        self.store: list[bool] = []  # does the event at this position match?
        self.status: dict[int, str] = {}  # matching, examined positions
        self.retries: dict[int, int] = {}
        self.inflight: dict[int, tuple[str, float]] = {}
        self.consumers: set[str] = set()
        self.now = 0.0
        self.checkpoint = -1
        self.changes = self.state.changes
        self.snap = self.state.snapshot()
        self.deliveries = 0
        self.run(("join", "a"))

    # the model's transitions

    def fail(self, p: int) -> None:
        self.inflight.pop(p, None)
        self.retries[p] += 1
        self.status[p] = "parked" if self.retries[p] >= self.settings.max_retries else "waiting"

    def outstanding(self) -> list[int]:
        return sorted(p for p, s in self.status.items() if s in OUTSTANDING)

    # the operations

    def run(self, op: tuple) -> None:
        getattr(self, "op_" + op[0])(*op[1:])
        self.check()

    def op_append(self, matches: list[bool]) -> None:
        self.store.extend(matches)

    def op_offer(self, count: int) -> None:
        start = self.state.next_position
        end = min(len(self.store), start + count)
        if end <= start:
            return
        events = [ev(p) for p in range(start, end) if self.store[p]]
        taken = self.state.offer(events, end - 1)
        expected = 0
        for e in events:
            status = self.status.get(e.position)
            if status is None:  # read for the first time (since a restart)
                self.status[e.position] = "waiting"
                self.retries[e.position] = 0
                expected += 1
            elif status == "missing":  # a replayed event the read supplies
                self.status[e.position] = "waiting"
                expected += 1
            # else: known already (parked, or replayed and supplied / finished): not taken
        assert taken == expected

    def op_deliver(self) -> None:
        for d in self.state.next_deliveries(self.now):
            self.deliveries += 1
            p = d.position
            assert d.event.position == p
            assert self.status[p] == "waiting", "never in flight twice, never a done event"
            assert d.consumer_id in self.consumers
            assert d.retry_count == self.retries[p]
            self.status[p] = "inflight"
            self.inflight[p] = (d.consumer_id, self.now + self.settings.message_timeout_s)
        # Liveness: nothing deliverable is left behind.
        if self.consumers and len(self.inflight) < self.settings.max_in_flight:
            assert "waiting" not in self.status.values()

    def op_ack(self, positions: list[int]) -> None:
        expected = 0
        for p in positions:
            if self.status.get(p) in OUTSTANDING:
                self.status[p] = "done"
                self.inflight.pop(p, None)
                expected += 1
        assert self.state.ack(positions) == expected

    def op_ack_out(self, index: int) -> None:
        if self.inflight:
            self.op_ack([sorted(self.inflight)[index % len(self.inflight)]])

    def op_nack(self, action: NackAction, index: int) -> None:
        candidates = self.outstanding()
        if not candidates:
            assert self.state.nack([0, 5], action) == 0
            return
        p = candidates[index % len(candidates)]
        changed = self.state.nack([p], action)
        if action is NackAction.RETRY:
            if self.status[p] == "inflight":
                self.fail(p)
                assert changed == 1
            else:
                assert changed == 0
        else:
            self.inflight.pop(p, None)
            self.status[p] = "parked" if action is NackAction.PARK else "done"
            assert changed == 1

    def op_tick(self, seconds: float) -> None:
        self.now += seconds
        due = {p for p, (_, deadline) in self.inflight.items() if deadline <= self.now}
        expired = self.state.expire(self.now)
        assert sorted(expired) == sorted(due)
        assert len(expired) == len(set(expired))
        for p in expired:
            self.fail(p)

    def op_join(self, consumer: str) -> None:
        self.state.add_consumer(consumer)
        self.consumers.add(consumer)

    def op_leave(self, consumer: str) -> None:
        theirs = sorted(p for p, (c, _) in self.inflight.items() if c == consumer)
        assert self.state.remove_consumer(consumer) == theirs
        self.consumers.discard(consumer)
        for p in theirs:
            self.fail(p)

    def op_replay(self) -> None:
        parked = [p for p, s in self.status.items() if s == "parked"]
        assert self.state.replay_parked() == len(parked)
        for p in parked:
            self.status[p] = "missing"
            self.retries[p] = 0

    def op_supply(self) -> None:
        missing = self.state.missing
        assert self.state.supply(evs(*missing)) == len(missing)
        for p in missing:
            self.status[p] = "waiting"

    def op_restart(self) -> None:
        snap = json.loads(json.dumps(self.state.snapshot()))
        scanned = self.state.next_position - 1
        self.state = PersistentState.restore(snap, self.settings)
        assert self.state.checkpoint >= self.checkpoint
        assert self.state.next_position - 1 == scanned  # what was examined stays examined
        for p, s in list(self.status.items()):
            if s in OUTSTANDING:
                # Back to fetch, counting a delivery in flight as failed (parked at max).
                self.fail(p) if s == "inflight" else None
                if self.status[p] != "parked":
                    self.status[p] = "missing"
            # done stays done and parked stays parked: never delivered again
        self.inflight.clear()
        self.consumers.clear()
        self.changes = self.state.changes
        self.snap = self.state.snapshot()
        self.op_join("a")  # consumers reconnect to the restarted node

    # the invariants

    def check(self) -> None:
        state = self.state
        checkpoint = state.checkpoint
        assert checkpoint >= self.checkpoint, "the checkpoint never moves back"
        scanned = state.next_position - 1
        assert checkpoint <= scanned
        snap = state.snapshot()
        listed = expand(snap["outstanding"])
        replay = {p for p in listed if p <= checkpoint}
        outstanding = self.outstanding()
        assert listed == {p: self.retries[p] + (p in self.inflight) for p in outstanding}
        for p in outstanding:
            if p <= checkpoint:
                assert p in replay, f"checkpoint {checkpoint} passed un-acked {p}"
            else:
                assert p not in replay
        assert replay <= set(outstanding)
        for p in range(checkpoint + 1):
            if p < len(self.store) and self.store[p]:
                assert self.status.get(p) in ("done", "parked") or p in replay
        # The checkpoint is as far as it may be.
        above = [p for p in outstanding if p > checkpoint]
        assert checkpoint == max(self.checkpoint, min([scanned, *(p - 1 for p in above)]))
        assert state.parked == {p for p, s in self.status.items() if s == "parked"}
        assert set(snap["parked"]) == state.parked
        assert state.in_flight() == {p: c for p, (c, _) in self.inflight.items()}
        assert state.in_flight_count <= self.settings.max_in_flight
        assert state.missing == sorted(p for p, s in self.status.items() if s == "missing")
        assert state.outstanding_count == len(outstanding)
        assert state.waiting_count == sum(s == "waiting" for s in self.status.values())
        assert state.pending_count == len(outstanding) - len(self.inflight)
        assert state.next_deadline() == min((d for _, d in self.inflight.values()), default=None)
        for consumer in (*CONSUMERS, "drainer"):
            load = sum(c == consumer for c, _ in self.inflight.values())
            assert state.consumer_load(consumer) == load
        assert set(state.consumers) == self.consumers
        if self.durable(snap) != self.durable(self.snap):
            assert state.changes != self.changes, "a change a crash must not lose moves `changes`"
        self.checkpoint, self.snap, self.changes = checkpoint, snap, state.changes

    def durable(self, snap: dict) -> tuple:
        """What a snapshot says that a crash must not lose: all but what was merely read."""
        listed = expand(snap["outstanding"])
        checkpoint, parked = snap["checkpoint"], set(snap["parked"])
        done_above = {
            p for p in range(checkpoint + 1, snap["scanned"] + 1)
            if p < len(self.store) and self.store[p] and p not in listed and p not in parked
        }
        delivered = {p: n for p, n in listed.items() if n or p <= checkpoint}
        return checkpoint, sorted(parked), snap["ahead"], delivered, done_above

    def drain(self) -> None:
        """A consumer that acks everything: every event ends done or parked, none lost."""
        self.run(("join", "drainer"))
        for _ in range(10 * (len(self.store) + 10)):
            self.run(("offer", 50))
            self.run(("supply",))
            self.run(("deliver",))
            for p in sorted(self.inflight):
                self.run(("ack", [p]))
            if not self.outstanding() and self.state.next_position == len(self.store):
                break
        matching = [p for p, m in enumerate(self.store) if m]
        assert all(self.status.get(p) in ("done", "parked") for p in matching)
        assert self.state.checkpoint == len(self.store) - 1
        assert self.state.outstanding_count == 0
        assert self.state.in_flight_count == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_strategy, programs)
def test_random_interleavings_keep_the_invariants_and_lose_nothing(
    subscription_settings: PersistentSettings, program: list[tuple]
) -> None:
    sim = Sim(subscription_settings)
    for op in program:
        sim.run(op)
    sim.drain()
    # Parked events come back on replay and then drain too.
    sim.run(("replay",))
    sim.drain()
    assert sim.state.parked == frozenset()
    assert all(s == "done" for s in sim.status.values())


@settings(max_examples=100, deadline=None)
@given(settings_strategy, programs, programs)
def test_a_restart_anywhere_loses_nothing(
    subscription_settings: PersistentSettings, before: list[tuple], after: list[tuple]
) -> None:
    sim = Sim(subscription_settings)
    for op in before:
        sim.run(op)
    sim.run(("restart",))
    for op in after:
        sim.run(op)
    sim.drain()


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.data())
def test_retry_count_counts_failed_deliveries_up_to_max_retries(
    max_retries: int, consumers: int, data: st.DataObject
) -> None:
    state = PersistentState(PersistentSettings(1.0, max_retries, 10))
    for i in range(consumers):
        state.add_consumer(f"c{i}")
    state.offer(evs(0), 0)
    now = 0.0
    counts = []
    while state.outstanding_count:
        for d in state.next_deliveries(now):
            counts.append(d.retry_count)
        how = data.draw(st.sampled_from(["expire", "nack", "leave"]))
        if how == "expire":
            now += 1.0
            assert state.expire(now) == [0]
        elif how == "nack":
            assert state.nack([0], NackAction.RETRY) == 1
        else:
            (consumer,) = state.in_flight().values()
            assert state.remove_consumer(consumer) == [0]
            state.add_consumer(consumer)
    assert counts == list(range(max_retries))
    assert state.parked == {0}
    assert state.checkpoint == 0


def test_heaps_stay_bounded_under_churn() -> None:
    # Many deliveries acked long before their deadline: stale heap items must not pile up.
    # Observable through behaviour only: deadlines stay right, and it stays fast.
    state = state_with(max_in_flight=4, timeout_s=1000.0)
    position = 0
    for step in range(20_000):
        state.offer(evs(position), position)
        (d,) = state.next_deliveries(float(step))
        state.ack([d.position])
        position += 1
    assert state.checkpoint == position - 1
    assert state.next_deadline() is None
    state.offer(evs(position), position)
    state.next_deliveries(5.0)
    assert state.next_deadline() == 1005.0


@pytest.mark.parametrize("module", ["matching", "persistent"])
def test_pure_cores_import_no_io(module: str) -> None:
    import ast
    import pathlib

    import gater.subscriptions

    path = pathlib.Path(gater.subscriptions.__file__).with_name(f"{module}.py")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    forbidden = ("grpc", "asyncio", "time", "socket", "threading", "gater.node", "gater.gateway")
    assert imported, "the parse found the imports"
    assert not [m for m in imported if m.split(".")[0] in forbidden or m.startswith(forbidden)]
