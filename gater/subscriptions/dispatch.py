"""Persistent subscriptions on a node: the asyncio shell around `PersistentState`.

Owns: `Dispatcher` (one per store and subscription name: reads matching events from the
store, hands deliveries to connected consumers, carries out acks, nacks and timeouts,
persists the state), `PersistentSubscriptions` (the node's dispatchers, the leases that say
which node dispatches what, and the definitions' create/update/remove/list) and `consume()`
(one connected consumer's messages).
Must not import grpc, gater.node or gater.gateway.

Every stop is told: a dispatcher that stops, for whatever reason, records why (`ended`) and
wakes its consumers, which end with that reason — NOT_FOUND when the subscription or its store
was removed, LeaseLostError when another node took the dispatch over (the caller then finds
the new owner), UNAVAILABLE otherwise. A stopped dispatcher is never handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..errors import (
    GaterError,
    InvalidArgumentError,
    LeaseLostError,
    NotFoundError,
    StoreNotFoundError,
    SubscriptionNotFoundError,
    UnavailableError,
)
from ..metrics import Metrics, SubscriptionGauges
from ..store.base import EventStore, StorageBackend
from .hub import PAGE, CaughtUp, Heartbeat, abandon
from .matching import EventFilter, EventView, make_filter
from .persistent import Delivery, NackAction, PersistentSettings, PersistentState
from .start import Start, first_checkpoint

__all__ = [
    "Definition",
    "Dispatcher",
    "PersistentSubscriptions",
    "SubscriptionStats",
    "consume",
    "nack_action",
]

log = logging.getLogger(__name__)

_PERSIST_EVERY_S = 0.05
"""Most often a dispatcher writes its state (acks in between are grouped into one write)."""
_POLL_S = 1.0


@dataclass(frozen=True, slots=True)
class Definition:
    """What a persistent subscription selects, and its settings (stored as JSON)."""

    kind: int
    selector: str
    pattern: dict[str, Any] | None
    settings: PersistentSettings

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": self.kind,
            "selector": self.selector,
            "pattern": self.pattern,
            "settings": {
                "message_timeout_s": s.message_timeout_s,
                "max_retries": s.max_retries,
                "max_in_flight": s.max_in_flight,
            },
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Definition:
        return cls(
            value["kind"],
            value["selector"],
            value["pattern"],
            PersistentSettings(**value["settings"]),
        )

    def filter(self) -> EventFilter:
        return make_filter(self.kind, self.selector, self.pattern)


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    name: str
    definition: Definition
    checkpoint: int
    lag: int
    in_flight: int
    parked: int
    consumers: int


class Dispatcher:
    """Delivers one persistent subscription of one store to the consumers connected here."""

    def __init__(
        self,
        store: EventStore,
        name: str,
        definition: Definition,
        state: PersistentState,
        fence: int | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.fence = fence
        """The lease this dispatcher holds: its state writes are refused once another node
        took the subscription over (see PersistentSubscriptions)."""
        self.definition = definition
        self.filter = definition.filter()
        self.state = state
        self._queues: dict[str, asyncio.Queue[Delivery | None]] = {}
        self._wake = asyncio.Event()
        self._saved_changes = state.changes
        self._persist_lock = asyncio.Lock()
        self.ended: GaterError | None = None
        """Why it stopped (None while it runs): what its consumers and callers are told."""
        self._delivered = self._redelivered = None
        if metrics is not None:
            self._delivered = metrics.delivered_events.labels(store.store_id, name)
            self._redelivered = metrics.redelivered_events.labels(store.store_id, name)

    # -- inputs from RPCs (all on the event loop, so no locks) ------------------------------

    def connect(self) -> tuple[str, asyncio.Queue[Delivery | None]]:
        """A new consumer's id and queue (None in it: the dispatcher stopped). Raises `ended`
        when it has stopped."""
        self._check_running()
        consumer_id = uuid.uuid4().hex[:12]
        queue: asyncio.Queue[Delivery | None] = asyncio.Queue()  # bounded by max_in_flight
        self._queues[consumer_id] = queue
        self.state.add_consumer(consumer_id)
        self._wake.set()
        return consumer_id, queue

    def disconnect(self, consumer_id: str) -> None:
        if self._queues.pop(consumer_id, None) is not None:
            self.state.remove_consumer(consumer_id)
            self._wake.set()

    async def ack(self, positions: list[int]) -> int:
        """Applies an ack and returns once the resulting state is durable: an ack the
        client saw succeed survives a crash (concurrent acks share one write, and so do the
        deliveries the freed window lets out)."""
        self._check_running()
        done = self.state.ack(positions)
        self._wake.set()
        await self._persist_and_deliver()
        return done

    async def nack(self, positions: list[int], action: NackAction) -> int:
        self._check_running()
        changed = self.state.nack(positions, action)
        self._wake.set()
        await self._persist_and_deliver()
        return changed

    async def replay_parked(self) -> int:
        self._check_running()
        count = self.state.replay_parked()
        self._wake.set()
        await self._persist_and_deliver()
        return count

    async def _persist_and_deliver(self) -> None:
        """Whatever can be delivered now, written with the change that allowed it, then sent.
        Deliveries are written before they are sent: a takeover knows they were out."""
        deliveries = self.state.next_deliveries(time.monotonic())
        await self._persist()
        if deliveries and self._delivered is not None and self._redelivered is not None:
            self._delivered.inc(len(deliveries))
            again = sum(1 for d in deliveries if d.retry_count)
            if again:
                self._redelivered.inc(again)
        for delivery in deliveries:
            queue = self._queues.get(delivery.consumer_id)
            if queue is not None:
                queue.put_nowait(delivery)

    def _check_running(self) -> None:
        if self.ended is not None:
            raise self.ended

    def stop(self, reason: GaterError) -> None:
        """Marks it stopped (the first reason counts) and wakes every consumer, at once."""
        if self.ended is None:
            self.ended = reason
        for queue in self._queues.values():
            queue.put_nowait(None)
        self._wake.set()

    def redefine(self, definition: Definition) -> None:
        self.definition = definition
        self.filter = definition.filter()
        self.state.reconfigure(definition.settings)
        self._wake.set()

    @property
    def consumer_count(self) -> int:
        return len(self._queues)

    def report(self, gauges: SubscriptionGauges, now_us: float) -> None:
        """Scrape time: this subscription's lag, window and consumers."""
        state = self.state
        oldest = state.oldest_outstanding()
        gauges.add(
            self.store.store_id,
            self.name,
            consumers=self.consumer_count,
            lag_events=self.store.known_position() - state.checkpoint,
            lag_seconds=(now_us - oldest.created_epoch_us) / 1e6 if oldest is not None else 0.0,
            in_flight=state.in_flight_count,
            parked=state.parked_count,
        )

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled or an error, raised (also when it was `stop()`ped: its reason).
        Nothing is left to write at the end: acks are written before they are answered,
        deliveries before they are sent; what else changed (events read) is read again
        after a restart."""
        while self.ended is None:
            self._wake.clear()
            now = time.monotonic()
            self.state.expire(now)
            await self._supply_missing()
            last = await self._read_more()
            await self._persist_and_deliver()
            await self._sleep(last)
        raise self.ended

    async def _read_more(self) -> int:
        """Offers matching events while the state wants more; returns the last position."""
        last = await self.store.last_position()
        indexed = self.filter.indexed
        while (budget := self.state.read_budget) > 0 and self.state.next_position <= last:
            if indexed is not None:
                # A DCB query or a stream prefix: only matching events, from the indexes; a
                # page that ends short says nothing else matches up to `last`.
                matching, _ = await self.store.read_query(
                    indexed[0], self.state.next_position, PAGE, head=last, stream_prefix=indexed[1]
                )
                scanned = matching[-1].position if matching else last
                if len(matching) > budget:
                    matching = matching[:budget]
                    self.state.offer(matching, scanned_up_to=matching[-1].position)
                    break
                self.state.offer(matching, scanned_up_to=scanned)
                continue
            page = await self.store.read_all(self.state.next_position, PAGE)
            if not page:
                # Nothing readers see up to `last`, read before: what is there is hidden by
                # its stream's lifecycle (store/_lifecycle.py), and the checkpoint passes it.
                self.state.offer([], scanned_up_to=last)
                break
            matching = [e for e in page if self.filter.matches(EventView(e))]
            if len(matching) > budget:
                # Hold at most the budget (memory stays bounded); the rest is read again later.
                matching = matching[:budget]
                self.state.offer(matching, scanned_up_to=matching[-1].position)
                break
            self.state.offer(matching, scanned_up_to=page[-1].position)
        return last

    async def _supply_missing(self) -> None:
        """Fetches events the state lacks (after a restart, or replayed), a run at a time."""
        missing = self.state.missing[: 4 * PAGE]
        i = 0
        while i < len(missing):
            first = missing[i]
            j = i
            while j + 1 < len(missing) and missing[j + 1] - first < PAGE:
                j += 1
            page = await self.store.read_all(first, missing[j] - first + 1)
            self.state.supply(page)
            # A read passes over hidden and removed events and returns every visible one of
            # the range (short only at the end of the log): what it did not return is gone.
            found = {e.position for e in page}
            self.state.gone(p for p in missing[i : j + 1] if p not in found)
            i = j + 1

    async def _persist(self) -> None:
        async with self._persist_lock:
            changes = self.state.changes
            if changes == self._saved_changes:
                return
            try:
                await self.store.save_subscription_state(self.name, self.state.snapshot(), self.fence)
            except (LeaseLostError, NotFoundError) as e:
                self.stop(e)  # another node owns it now, or it is gone: stop at once
                raise
            self._saved_changes = changes

    async def _sleep(self, last: int) -> None:
        """Until an input, new events, the next deadline, or a persist is due. Never spins:
        a wait that returns early with nothing new (a closed store may) is followed by a read
        that fails when the store is gone, and a pause."""
        timeout = _POLL_S
        deadline = self.state.next_deadline()
        if deadline is not None:
            timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        if self.state.changes != self._saved_changes:
            timeout = min(timeout, _PERSIST_EVERY_S)
        waits = [asyncio.ensure_future(self._wake.wait())]
        after = max(last, self.state.next_position - 1)
        if self.state.read_budget > 0:
            waits.append(asyncio.ensure_future(self.store.wait_for_position(after, timeout)))
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                abandon(w)  # the position wait may have failed as the store went: read it
        if len(waits) > 1 and waits[1] in done and not self._wake.is_set():
            moved = waits[1].result() > after  # raises what the wait raised (store gone)
            if not moved and time.monotonic() - started < timeout / 2:
                await self.store.read_all(after + 1, 1)
                await asyncio.sleep(timeout / 2)


class PersistentSubscriptions:
    """The node's persistent subscriptions: definitions in the store, and a dispatcher per
    (store, name) for those this node owns, each a task in this component's TaskGroup.

    Why a lease: with storage shared by many nodes (PostgreSQL) the dispatch of one named
    subscription must happen in one place, or two nodes would hand out the same events. A
    node dispatches only while it holds the subscription's lease, renews it every third of
    its time to live, and stops at once when a renewal fails or a state write is refused
    (the fence moved: someone else took over). A node that does not own a subscription
    tells its callers where the owner is (`owner()` returns its address); when the owner
    dies its lease runs out and the next node that asks takes the subscription over from
    the durable state. With SQLite the one node always holds it.
    """

    def __init__(
        self,
        backend: StorageBackend,
        node_id: str = "local",
        address: str = "",
        lease_ttl_s: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        if metrics is not None:
            metrics.report_subscriptions(self._report)
        self.node_id = node_id
        self.address = address
        self.lease_ttl_s = lease_ttl_s
        self._dispatchers: dict[tuple[str, str], tuple[Dispatcher, asyncio.Task[None]]] = {}
        self._group: asyncio.TaskGroup | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self._stopping: LeaseLostError | None = None
        """What stop() told the dispatchers: a dispatcher that ends with it is no news."""

    async def start(self, node_id: str | None = None, address: str | None = None) -> None:
        self.node_id = node_id or self.node_id
        self.address = address or self.address
        self._exit = contextlib.AsyncExitStack()
        self._group = await self._exit.enter_async_context(asyncio.TaskGroup())

    async def stop(self) -> None:
        """Stops every dispatcher (their consumers are told LEASE_LOST, an UNAVAILABLE: another
        node takes over; a relaying node carries its consumers over) and hands the leases
        over at once. Idempotent."""
        if self._exit is None:
            return
        running = list(self._dispatchers.items())
        stopping = self._stopping = LeaseLostError("this node is shutting down: another node takes its subscriptions over")
        for _, (dispatcher, task) in running:
            dispatcher.stop(stopping)
            task.cancel()
        exit_stack, self._exit, self._group = self._exit, None, None
        await exit_stack.aclose()
        self._dispatchers.clear()
        # Hand the subscriptions over at once rather than when the leases run out.
        for (_, name), (dispatcher, _) in running:
            if dispatcher.fence is not None:
                with contextlib.suppress(Exception):
                    await dispatcher.store.release_lease(name, self.node_id, dispatcher.fence)

    async def save(self, store_id: str, name: str, definition: Definition, start: Start = Start.BEGINNING) -> bool:
        """Creates or updates a subscription; a new one starts at `start`."""
        store = await self.backend.open_store(store_id)
        checkpoint = await first_checkpoint(store, definition.filter(), start)
        initial = PersistentState(definition.settings, checkpoint).snapshot()
        created = await store.save_subscription(name, definition.to_json(), initial)
        running = self._dispatchers.get((store_id, name))
        if running is not None:
            running[0].redefine(definition)
        log.info("saved subscription", extra={"store": store_id, "subscription": name, "new": created})
        return created

    async def remove(self, store_id: str, name: str) -> None:
        store = await self.backend.open_store(store_id)
        await store.remove_subscription(name)
        self._end((store_id, name), SubscriptionNotFoundError(name))
        log.info("removed subscription", extra={"store": store_id, "subscription": name})

    def _end(self, key: tuple[str, str], reason: GaterError) -> None:
        running = self._dispatchers.pop(key, None)
        if running is not None:
            running[0].stop(reason)
            running[1].cancel()

    async def dispatcher(self, store_id: str, name: str) -> Dispatcher:
        """This node's dispatcher of a subscription; LeaseLostError when another node owns it."""
        owner = await self.owner(store_id, name)
        if isinstance(owner, str):
            raise LeaseLostError(f"subscription {name!r} is dispatched by the node at {owner}")
        return owner

    def _running(self, key: tuple[str, str]) -> Dispatcher | None:
        running = self._dispatchers.get(key)
        if running is not None and running[0].ended is None and not running[1].done():
            return running[0]
        return None

    async def owner(self, store_id: str, name: str) -> Dispatcher | str:
        """The local dispatcher when this node owns (or now takes) the subscription's lease,
        else the owner's address. Raises SubscriptionNotFoundError, StoreNotFoundError."""
        key = (store_id, name)
        if (running := self._running(key)) is not None:
            return running
        async with self._lock:
            if (running := self._running(key)) is not None:
                return running
            if self._group is None:
                raise LeaseLostError("this node is shutting down: another node takes its subscriptions over")
            store = await self.backend.open_store(store_id)
            lease = await store.acquire_lease(name, self.node_id, self.address, self.lease_ttl_s)
            if not lease.held:
                return lease.owner_address
            saved = (await store.load_subscriptions()).get(name)
            if saved is None:
                raise SubscriptionNotFoundError(name)
            definition = Definition.from_json(saved[0])
            state = PersistentState.restore(saved[1], definition.settings)
            dispatcher = Dispatcher(store, name, definition, state, lease.fence, self.metrics)
            task = self._group.create_task(self._run(store_id, dispatcher), name=f"dispatch-{store_id}-{name}")
            self._dispatchers[key] = (dispatcher, task)
            log.info(
                "dispatching subscription",
                extra={"store": store_id, "subscription": name, "fence": lease.fence, "checkpoint": state.checkpoint},
            )
            return dispatcher

    async def _run(self, store_id: str, dispatcher: Dispatcher) -> None:
        """Runs a dispatcher and its lease; whatever ends them, its consumers are told why."""
        where = {"store": store_id, "subscription": dispatcher.name}
        reason: GaterError | None = None
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(dispatcher.run())
                group.create_task(self._keep_lease(dispatcher))
        # (CancelledError is no Exception: it goes through these clauses untouched.)
        except* LeaseLostError as e:
            reason = e.exceptions[0]
            if reason is self._stopping:
                # This node's own stop(): a dispatcher woken by it may end with the reason it
                # was given before the cancellation reaches it (under load, it does).
                log.debug("dispatcher stopped: this node is stopping", extra=where)
            else:
                log.warning("lost the lease of a subscription: another node dispatches it now", extra=where)
        except* NotFoundError as e:
            # Removed (the subscription or its store), maybe through another node: a normal end.
            reason = e.exceptions[0]
            log.info("subscription or store removed: dispatcher stopped", extra={**where, "reason": reason.reason})
        except* GaterError as e:
            reason = UnavailableError(f"the dispatcher of subscription {dispatcher.name!r} stopped: {e.exceptions[0].message}")
            log.warning("dispatcher stopped", extra={**where, "error": repr(e.exceptions[0])})
        except* Exception:  # noqa: BLE001 - one subscription failing must not stop the node
            reason = UnavailableError(f"the dispatcher of subscription {dispatcher.name!r} stopped; subscribe again")
            log.exception("dispatcher stopped", extra=where)
        finally:
            dispatcher.stop(reason or UnavailableError(f"the dispatcher of subscription {dispatcher.name!r} stopped"))
            if self._dispatchers.get((store_id, dispatcher.name), (None,))[0] is dispatcher:
                del self._dispatchers[(store_id, dispatcher.name)]

    async def _keep_lease(self, dispatcher: Dispatcher) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl_s / 3)
            lease = await dispatcher.store.acquire_lease(dispatcher.name, self.node_id, self.address, self.lease_ttl_s)
            if not lease.held or lease.fence != dispatcher.fence:
                raise LeaseLostError(f"subscription {dispatcher.name!r} is dispatched by {lease.owner_address}")

    async def list(self, store_id: str) -> list[SubscriptionStats]:
        store = await self.backend.open_store(store_id)
        last = await store.last_position()
        out = []
        for name, (definition_json, state_json) in (await store.load_subscriptions()).items():
            definition = Definition.from_json(definition_json)
            running = self._running((store_id, name))
            if running is not None:
                state = running.state
                stats = (state.checkpoint, state.in_flight_count, state.parked_count, running.consumer_count)
            else:
                stats = (state_json.get("checkpoint", -1), 0, len(state_json.get("parked", ())), 0)
            checkpoint, in_flight, parked, consumers = stats
            out.append(
                SubscriptionStats(name, definition, checkpoint, max(0, last - checkpoint), in_flight, parked, consumers)
            )
        return out

    def _report(self, gauges: SubscriptionGauges) -> None:
        """Scrape time: the subscriptions this node dispatches (the others are reported by
        the nodes that own them)."""
        now_us = time.time() * 1e6
        for dispatcher, _ in list(self._dispatchers.values()):
            if dispatcher.ended is None:
                dispatcher.report(gauges, now_us)

    def forget_store(self, store_id: str) -> None:
        """The store was removed: its dispatchers stop, their consumers end with NOT_FOUND."""
        for key in [k for k in self._dispatchers if k[0] == store_id]:
            self._end(key, StoreNotFoundError(store_id))


async def consume(
    dispatcher: Dispatcher,
    consumer_id: str,
    queue: asyncio.Queue[Delivery | None],
    heartbeat_s: float,
    max_batch: int,
) -> AsyncIterator[list[Delivery] | Heartbeat | CaughtUp]:
    """A connected consumer's messages: delivery batches, a Heartbeat (with the checkpoint)
    when idle, one CaughtUp once the dispatcher has read to the store's end. Ends by raising
    the dispatcher's `ended` when it stops; disconnects the consumer at the end (its
    in-flight events go to the other consumers)."""
    caught_up = False
    try:
        while True:
            try:
                first = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                first = None
                if dispatcher.ended is None:
                    yield Heartbeat(dispatcher.state.checkpoint)
            if dispatcher.ended is not None:
                raise dispatcher.ended
            if first is not None:
                batch = [first]
                while len(batch) < max_batch and not queue.empty():
                    item = queue.get_nowait()
                    if item is None:
                        break
                    batch.append(item)
                yield batch
            if not caught_up and dispatcher.state.next_position > await dispatcher.store.last_position():
                caught_up = True
                yield CaughtUp(dispatcher.state.next_position - 1)
    finally:
        dispatcher.disconnect(consumer_id)


def nack_action(value: int) -> NackAction:
    try:
        return NackAction(value)
    except ValueError:
        raise InvalidArgumentError("action", f"unknown value {value}") from None
