"""The bookkeeping of one persistent (named) subscription, as a pure state object.

Owns: `PersistentState` (checkpoint, read position, in-flight events with their deadlines and
retry counts, events waiting for (re)delivery, parked positions, connected consumers),
`PersistentSettings`, `NackAction` and `Delivery`. It is fed inputs (events offered by the
shell, acks, nacks, consumers joining and leaving, the time) and answers with data (what to
deliver to whom, when to wake up, what to persist); it never does I/O.
Must not import grpc, asyncio, gater.node or gater.gateway; it reads no clock: time is the
`now` argument, in seconds, from whatever monotonic clock the shell uses.

How an asyncio shell drives it:

1. `state = PersistentState.restore(saved, settings)` (or `PersistentState(settings, checkpoint)`
   for a new subscription: checkpoint -1 for "from the beginning", last_position for "now",
   revision - 1 for "from revision").
2. Read matching events from the store from `state.next_position` (global positions), at most
   about `state.read_budget` of them, and `offer(events, scanned_up_to)`. Fetch the events of
   `state.missing` (replayed parked events) by position and `supply()` them.
3. On each wake-up: `expire(now)`, take `next_deliveries(now)`, persist `snapshot()` (it
   records them as delivered), and only then send each to its consumer. Sleep until
   `next_deadline()` or the next input (ack, nack, consumer, new events).
4. Persist `snapshot()` whenever `changes` differs from its value at the last save; answer
   an ack or nack only once the snapshot that includes it is persisted.

Semantics:
- Delivery is at-least-once, lowest position first, to the least-loaded consumer (round-robin
  among equals), at most `max_in_flight` events out at once over all consumers, each event to
  one consumer at a time.
- A failed delivery (timeout, nack RETRY, or the consumer leaving with the event in flight) puts
  the event back with retry_count + 1; retry_count is "how many times it was delivered before".
  When an event has failed `max_retries` times it is parked instead (so it is delivered at most
  `max_retries` times: subscriptions.proto's "park after this many failed deliveries").
  A consumer leaving counts as a failure on purpose: a poison event that crashes its consumers
  still ends up parked instead of cycling forever.
- Acks and nacks name global positions; any consumer's ack counts, for an event in flight or
  waiting; unknown positions are ignored (the gateway may repeat an ack).
- The checkpoint only moves forward. Every position at or before it is acked, skipped, parked,
  did not match, or -- the one exception -- was parked before and then replayed: those are
  listed in the snapshot's "replay" so a restart still redelivers them.
- Parked events count as done for the checkpoint but stay listed (`parked`) until
  `replay_parked()`, which puts them back for delivery with retry_count 0.
- Across a restart (or a takeover by another node) nothing done comes back and nothing
  delivered is forgotten: the snapshot holds what was examined, what is still outstanding and
  how often each of those was delivered (see `_snapshot`). An event in flight when its
  dispatcher died counts as a failed delivery, as one whose consumer left: it comes back with
  retry_count + 1, or parked after max_retries.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from gater.store.base import RecordedEvent
from gater.subscriptions import _snapshot
from gater.subscriptions._snapshot import SNAPSHOT_FORMAT

__all__ = [
    "SNAPSHOT_FORMAT",
    "Delivery",
    "NackAction",
    "PersistentSettings",
    "PersistentState",
]

# Stale entries of the lazily cleaned heaps are dropped by a rebuild once they outnumber the live
# ones by this much, so the heaps stay O(live) and every operation O(log n) amortised.
_COMPACT_SLACK = 64


class NackAction(enum.IntEnum):
    """What a nack asks for; the values are exesdb.v1.NackAction's numbers."""

    RETRY = 0
    """Deliver again (counts as a failed delivery: parked after max_retries)."""
    PARK = 1
    """Park now."""
    SKIP = 2
    """Treat as handled without processing."""


@dataclass(frozen=True, slots=True)
class PersistentSettings:
    """Settings of one persistent subscription (exesdb.v1.SubscriptionSettings, in seconds)."""

    message_timeout_s: float = 30.0
    """An event not acked this long after its delivery is delivered again."""
    max_retries: int = 10
    """An event is parked after this many failed deliveries (so delivered at most this often)."""
    max_in_flight: int = 100
    """At most this many events delivered and not acked at once, over all consumers."""

    def __post_init__(self) -> None:
        if not self.message_timeout_s > 0:
            raise ValueError(f"message_timeout_s must be > 0, not {self.message_timeout_s!r}")
        if self.max_retries < 1:
            raise ValueError(f"max_retries must be >= 1, not {self.max_retries!r}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, not {self.max_in_flight!r}")

    @classmethod
    def from_proto_values(
        cls, message_timeout_ms: int = 0, max_retries: int = 0, max_in_flight: int = 0
    ) -> PersistentSettings:
        """From SubscriptionSettings' fields, where 0 means the default (30000 ms, 10, 100)."""
        return cls(
            message_timeout_s=(message_timeout_ms or 30_000) / 1000.0,
            max_retries=max_retries or 10,
            max_in_flight=max_in_flight or 100,
        )


class Delivery(NamedTuple):
    """Send `event` to `consumer_id`, with EventRecord.retry_count = `retry_count`."""

    consumer_id: str
    position: int
    retry_count: int
    event: RecordedEvent


class _Entry:
    """An outstanding event: waiting (consumer None, event set), in flight (consumer set) or
    missing (event None: replayed from parking, the shell has to fetch it)."""

    __slots__ = ("position", "event", "retry_count", "consumer", "deadline", "seq")

    def __init__(self, position: int, event: RecordedEvent | None) -> None:
        self.position = position
        self.event = event
        self.retry_count = 0
        self.consumer: str | None = None
        self.deadline = 0.0
        self.seq = 0  # which delivery this is, to recognise stale deadline-heap entries


class PersistentState:
    """One persistent subscription's delivery state. Not thread-safe: one task owns it.

    Positions are global positions. See the module docstring for the semantics and how a shell
    drives it.
    """

    def __init__(self, settings: PersistentSettings | None = None, checkpoint: int = -1) -> None:
        if not isinstance(checkpoint, int) or isinstance(checkpoint, bool) or checkpoint < -1:
            raise ValueError(f"checkpoint must be an int >= -1, not {checkpoint!r}")
        self._settings = settings or PersistentSettings()
        self._checkpoint = checkpoint
        self._scanned = checkpoint  # the last position the shell has examined
        self._entries: dict[int, _Entry] = {}  # every outstanding event
        self._waiting: set[int] = set()
        self._ready: list[int] = []  # heap over _waiting, may hold stale positions
        self._in_flight: dict[int, _Entry] = {}
        self._deadlines: list[tuple[float, int, int]] = []  # (deadline, seq, position), lazy
        self._missing: set[int] = set()
        # Outstanding positions above the checkpoint: the lowest one holds the checkpoint back.
        self._above: list[int] = []  # heap, may hold stale positions
        # Replayed positions at or below the checkpoint, still outstanding (persisted).
        self._replayed_below: set[int] = set()
        self._parked: set[int] = set()
        # Replayed events beyond the read position that were finished before the read reached
        # them (only after a restore): reading them must not deliver them again.
        self._done_ahead: set[int] = set()
        self._consumers: dict[str, int] = {}  # consumer id -> events in flight to it
        self._order: list[str] = []  # consumers in join order, for round-robin
        self._rr = 0
        self._seq = 0
        self._changes = 0

    # --- persistence -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What to persist, JSON-able (format 2, see `_snapshot`): the checkpoint, the last
        examined position, parked positions, and every outstanding event with how often it
        was delivered (in flight counts), so a restart redelivers exactly those."""
        in_flight = self._in_flight
        return _snapshot.encode(
            self._checkpoint,
            self._scanned,
            self._parked,
            {p: e.retry_count + (p in in_flight) for p, e in self._entries.items()},
            self._done_ahead,
        )

    @classmethod
    def restore(
        cls, snapshot: Mapping[str, Any], settings: PersistentSettings | None = None
    ) -> PersistentState:
        """A state from `snapshot()`'s output (or an older format's): reading resumes after
        the last examined position, parked positions stay parked, outstanding ones are
        `missing` (fetch and `supply()` them) with retry_count = their deliveries so far
        (parked when that reaches max_retries). No consumers. Raises ValueError on a
        malformed snapshot."""
        saved = _snapshot.decode(snapshot)
        state = cls(settings, saved.checkpoint)
        state._scanned = saved.scanned
        state._parked = saved.parked
        state._done_ahead = saved.ahead
        for position, deliveries in sorted(saved.outstanding.items()):
            if deliveries >= state._settings.max_retries:
                state._parked.add(position)
                state._changes += 1
                continue
            entry = _Entry(position, None)
            entry.retry_count = deliveries
            state._entries[position] = entry
            state._missing.add(position)
            if position <= state._checkpoint:
                state._replayed_below.add(position)
            else:
                heapq.heappush(state._above, position)
        state._advance()
        return state

    @property
    def changes(self) -> int:
        """A counter that moves whenever `snapshot()` changed in a way a crash must not lose
        (deliveries, acks, nacks, parking, replays, the checkpoint): persist when it differs
        from its value at the last save. Reading alone (`offer`) does not move it: what was
        read is read again after a restart."""
        return self._changes

    # --- queries -----------------------------------------------------------------------

    @property
    def settings(self) -> PersistentSettings:
        return self._settings

    @property
    def checkpoint(self) -> int:
        """Every position <= this is done (acked, skipped, parked or not matching), except the
        replayed ones listed in the snapshot. -1: nothing yet. Never decreases."""
        return self._checkpoint

    @property
    def next_position(self) -> int:
        """The global position the shell should read candidate events from next."""
        return self._scanned + 1

    @property
    def read_budget(self) -> int:
        """How many more events the shell should offer now (a hint bounding memory to
        2 * max_in_flight held events; `offer` accepts more)."""
        held = len(self._entries) - len(self._missing)
        return max(0, 2 * self._settings.max_in_flight - held)

    @property
    def in_flight_count(self) -> int:
        return len(self._in_flight)

    @property
    def waiting_count(self) -> int:
        """Events ready to be delivered as soon as a consumer and the window allow."""
        return len(self._waiting)

    @property
    def pending_count(self) -> int:
        """Outstanding events not in flight: waiting ones plus missing ones."""
        return len(self._entries) - len(self._in_flight)

    @property
    def outstanding_count(self) -> int:
        """Events offered (or replayed) and not yet acked, skipped or parked."""
        return len(self._entries)

    def in_flight(self) -> dict[int, str]:
        """A copy: position -> consumer id of every event in flight."""
        return {p: e.consumer for p, e in self._in_flight.items() if e.consumer is not None}

    @property
    def parked(self) -> frozenset[int]:
        """Parked positions (a copy)."""
        return frozenset(self._parked)

    @property
    def parked_count(self) -> int:
        return len(self._parked)

    def oldest_outstanding(self) -> RecordedEvent | None:
        """The outstanding (waiting or in-flight) event of the lowest position whose event is
        held, None when there is none: what a subscription's lag in seconds is read from."""
        held = [p for p, e in self._entries.items() if e.event is not None]
        return self._entries[min(held)].event if held else None

    @property
    def missing(self) -> list[int]:
        """Positions, ascending, whose events the shell must fetch and `supply()`."""
        return sorted(self._missing)

    @property
    def consumers(self) -> tuple[str, ...]:
        """Connected consumers, in join order."""
        return tuple(self._order)

    def consumer_load(self, consumer_id: str) -> int:
        """Events in flight to this consumer (0 for an unknown one)."""
        return self._consumers.get(consumer_id, 0)

    def next_deadline(self) -> float | None:
        """The earliest delivery deadline (when to call `expire`), None when nothing is out."""
        deadlines = self._deadlines
        while deadlines and not self._is_live(deadlines[0]):
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    # --- inputs ------------------------------------------------------------------------

    def reconfigure(self, settings: PersistentSettings) -> None:
        """New settings (SaveSubscription on a live subscription). Events already out keep
        their deadlines; a lower max_in_flight only stops new deliveries until enough acks."""
        self._settings = settings

    def add_consumer(self, consumer_id: str) -> None:
        """A consumer connected. Adding a connected consumer again changes nothing."""
        if not consumer_id:
            raise ValueError("consumer_id must not be empty")
        if consumer_id not in self._consumers:
            self._consumers[consumer_id] = 0
            self._order.append(consumer_id)

    def remove_consumer(self, consumer_id: str) -> list[int]:
        """A consumer went away. Its in-flight events fail (retry_count + 1; parked after
        max_retries) and go back to be delivered to the others. Returns their positions,
        ascending. Unknown consumers are ignored."""
        if consumer_id not in self._consumers:
            return []
        index = self._order.index(consumer_id)
        del self._order[index]
        del self._consumers[consumer_id]
        if index < self._rr:
            self._rr -= 1
        if self._rr >= len(self._order):
            self._rr = 0
        failed = sorted(p for p, e in self._in_flight.items() if e.consumer == consumer_id)
        for position in failed:
            self._fail(self._in_flight[position])
        self._advance()
        return failed

    def offer(self, events: Iterable[RecordedEvent], scanned_up_to: int | None = None) -> int:
        """Hands over matching events read from `next_position` on, in ascending position
        order, and says that every position up to `scanned_up_to` has been examined (default:
        the last event's position), so positions that did not match let the checkpoint move.

        Events at positions examined before are ignored (a repeated read is harmless), except
        `missing` ones, which are supplied; parked positions are not delivered again. Raises
        ValueError, changing nothing, when the new events are not strictly ascending or lie
        beyond `scanned_up_to`. Returns how many events were taken.
        """
        events = list(events)
        last = self._scanned
        for event in events:
            position = event.position
            if position > self._scanned:
                if position <= last:
                    raise ValueError(f"offered positions not ascending at {position}")
                last = position
        if scanned_up_to is None:
            scanned_up_to = last
        elif scanned_up_to < last:
            raise ValueError(f"scanned_up_to {scanned_up_to} is before offered position {last}")

        taken = 0
        for event in events:
            position = event.position
            entry = self._entries.get(position)
            if entry is not None:
                if entry.event is None:
                    self._attach(entry, event)
                    taken += 1
            elif (
                position > self._scanned
                and position not in self._parked
                and position not in self._done_ahead
            ):
                entry = _Entry(position, event)
                self._entries[position] = entry
                heapq.heappush(self._above, position)
                self._make_waiting(entry)
                taken += 1
        self._scanned = max(self._scanned, scanned_up_to)
        if self._done_ahead:
            self._done_ahead = {p for p in self._done_ahead if p > self._scanned}
        self._advance()
        return taken

    def supply(self, events: Iterable[RecordedEvent]) -> int:
        """Hands over the events of `missing` positions (fetched by position, any order);
        others are ignored. Returns how many were taken."""
        taken = 0
        for event in events:
            entry = self._entries.get(event.position)
            if entry is not None and entry.event is None:
                self._attach(entry, event)
                taken += 1
        return taken

    def gone(self, positions: Iterable[int]) -> int:
        """`missing` positions whose events readers no longer see (deleted, hidden, scavenged)
        finish as if skipped: nothing waits for them. Returns how many."""
        gone = [e for e in map(self._entries.get, positions) if e is not None and e.event is None]
        for entry in gone:
            self._finish(entry, park=False)
        if gone:
            self._advance()
        return len(gone)

    def next_deliveries(self, now: float) -> list[Delivery]:
        """What to send now: waiting events, lowest position first, each to the least-loaded
        consumer (round-robin among equals), while fewer than max_in_flight are out. Each is
        due back (acked) by now + message_timeout_s. Empty without consumers."""
        out: list[Delivery] = []
        if not self._consumers:
            return out
        timeout_s = self._settings.message_timeout_s
        max_in_flight = self._settings.max_in_flight
        while self._waiting and len(self._in_flight) < max_in_flight:
            position = heapq.heappop(self._ready)
            if position not in self._waiting:
                continue  # stale: acked, nacked or already delivered since it was queued
            self._waiting.remove(position)
            entry = self._entries[position]
            consumer = self._pick_consumer()
            self._seq += 1
            entry.consumer = consumer
            entry.seq = self._seq
            entry.deadline = now + timeout_s
            self._in_flight[position] = entry
            self._consumers[consumer] += 1
            heapq.heappush(self._deadlines, (entry.deadline, entry.seq, position))
            assert entry.event is not None  # waiting entries always hold their event
            out.append(Delivery(consumer, position, entry.retry_count, entry.event))
        if out:
            self._changes += 1  # the snapshot counts deliveries: persist before sending
        self._compact()
        return out

    def ack(self, positions: Iterable[int]) -> int:
        """Marks events handled. Any outstanding event counts (in flight to any consumer,
        waiting, or missing); unknown and repeated positions are ignored. Returns how many
        events this ack finished."""
        done = 0
        for position in positions:
            entry = self._entries.get(position)
            if entry is not None:
                self._finish(entry, park=False)
                done += 1
        if done:
            self._advance()
        return done

    def nack(self, positions: Iterable[int], action: NackAction | int | str) -> int:
        """Rejects events. RETRY: an in-flight event fails (retry_count + 1, parked after
        max_retries); on one not in flight it does nothing. PARK: parks any outstanding event.
        SKIP: finishes any outstanding event as if acked. Unknown positions are ignored.
        Returns how many events changed state."""
        action = _coerce_action(action)
        changed = 0
        for position in positions:
            entry = self._entries.get(position)
            if entry is None:
                continue
            if action is NackAction.RETRY:
                if position not in self._in_flight:
                    continue
                self._fail(entry)
            else:
                self._finish(entry, park=action is NackAction.PARK)
            changed += 1
        if changed:
            self._advance()
        return changed

    def expire(self, now: float) -> list[int]:
        """Fails every in-flight event whose deadline is <= now (retry_count + 1, parked after
        max_retries). Returns their positions in deadline order."""
        expired: list[int] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            item = heapq.heappop(deadlines)
            if self._is_live(item):
                expired.append(item[2])
                self._fail(self._in_flight[item[2]])
        if expired:
            self._advance()
        return expired

    def replay_parked(self) -> int:
        """Puts every parked event back for delivery with retry_count 0, even those the
        checkpoint has passed. Their events are `missing` until supplied (or offered again).
        Returns how many."""
        count = len(self._parked)
        for position in sorted(self._parked):
            self._entries[position] = _Entry(position, None)
            self._missing.add(position)
            if position <= self._checkpoint:
                self._replayed_below.add(position)
            else:
                heapq.heappush(self._above, position)
        self._parked.clear()
        if count:
            self._changes += 1
        return count

    # --- internals ---------------------------------------------------------------------

    def _is_live(self, item: tuple[float, int, int]) -> bool:
        entry = self._in_flight.get(item[2])
        return entry is not None and entry.seq == item[1]

    def _pick_consumer(self) -> str:
        order = self._order
        count = len(order)
        best_index = self._rr % count
        best_load = self._consumers[order[best_index]]
        for step in range(1, count):
            index = (self._rr + step) % count
            load = self._consumers[order[index]]
            if load < best_load:
                best_index, best_load = index, load
        self._rr = (best_index + 1) % count
        return order[best_index]

    def _make_waiting(self, entry: _Entry) -> None:
        self._waiting.add(entry.position)
        heapq.heappush(self._ready, entry.position)

    def _attach(self, entry: _Entry, event: RecordedEvent) -> None:
        entry.event = event
        self._missing.discard(entry.position)
        self._make_waiting(entry)

    def _release(self, entry: _Entry) -> None:
        """Takes an event out of flight (its deadline-heap item goes stale)."""
        if self._in_flight.pop(entry.position, None) is not None:
            consumer = entry.consumer
            if consumer in self._consumers:
                self._consumers[consumer] -= 1
        entry.consumer = None

    def _fail(self, entry: _Entry) -> None:
        self._release(entry)
        entry.retry_count += 1
        if entry.retry_count >= self._settings.max_retries:
            self._finish(entry, park=True)
        else:
            self._make_waiting(entry)

    def _finish(self, entry: _Entry, park: bool) -> None:
        position = entry.position
        self._release(entry)
        self._waiting.discard(position)
        self._missing.discard(position)
        del self._entries[position]
        self._changes += 1  # no longer outstanding: the snapshot says so
        self._replayed_below.discard(position)
        if park:
            self._parked.add(position)
        elif position > self._scanned:
            self._done_ahead.add(position)

    def _advance(self) -> None:
        """Moves the checkpoint up to just below the lowest outstanding event above it, or to
        the last examined position when there is none."""
        above = self._above
        checkpoint = self._checkpoint
        while above and (above[0] <= checkpoint or above[0] not in self._entries):
            heapq.heappop(above)
        target = min(self._scanned, above[0] - 1) if above else self._scanned
        if target > checkpoint:
            self._checkpoint = target
            self._changes += 1
        self._compact()

    def _compact(self) -> None:
        if len(self._ready) > 2 * len(self._waiting) + _COMPACT_SLACK:
            self._ready = list(self._waiting)
            heapq.heapify(self._ready)
        if len(self._deadlines) > 2 * len(self._in_flight) + _COMPACT_SLACK:
            self._deadlines = [(e.deadline, e.seq, p) for p, e in self._in_flight.items()]
            heapq.heapify(self._deadlines)
        live_above = len(self._entries) - len(self._replayed_below)
        if len(self._above) > 2 * live_above + _COMPACT_SLACK:
            self._above = [p for p in self._entries if p not in self._replayed_below]
            heapq.heapify(self._above)


def _coerce_action(action: NackAction | int | str) -> NackAction:
    if isinstance(action, NackAction):
        return action
    try:
        if isinstance(action, str):
            return NackAction[action.strip().upper().removeprefix("NACK_ACTION_")]
        return NackAction(action)
    except (KeyError, ValueError):
        raise ValueError(f"unknown nack action {action!r}") from None

