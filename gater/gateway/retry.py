"""The pure core of forwarding one call: where it is sent first, and after an attempt failed,
whether the failure goes to the client, the call is sent again (to which member), or the
gateway gives up.

Owns: `SAFE_TO_RETRY` and `RESUMABLE` (which methods may be sent twice, which streams can go on
where they broke), `Attempts` (one call's tries) and its answer, `Decision` / `Verdict`.
No I/O, no grpc, no asyncio, no clock reads: the shell (gateway/proxy.py) passes the pool's
state, `now` and a `random.Random`, and reports each outcome to the pool before asking.
Must not import gater.store, gater.subscriptions, gater.node, grpc or asyncio.

Rules, for an attempt that ended with a status (or was never sent):
1. A status other than UNAVAILABLE is the node's own answer: relay it (the node is alive).
2. UNAVAILABLE blames the member (it died, hangs, refused the connection, or said so):
   a. a stream that already passed messages to the client and cannot be resumed: relay;
   b. a request that may have reached the node and is not safe to repeat: relay. Whether it
      was sent is a fact the shell knows — it did not issue the call because the member's
      channel was not connected — never a guess from an error message;
   c. otherwise send it again (resumed, for a stream), to a member not tried since the call
      last made progress, chosen by the pool (random among available members, else its panic
      rule); when there is none, give up: UNAVAILABLE from the gateway.
One stop rule for every kind of call: no member is tried twice without progress (a message
received) in between, so a call that makes none ends after at most one attempt per member,
while a long subscription may move as often as its nodes fail.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from .pool_state import PoolState

__all__ = ["RESUMABLE", "SAFE_TO_RETRY", "Attempts", "Decision", "Verdict"]

SAFE_TO_RETRY = frozenset(
    {
        "/exesdb.v1.Streams/ReadEvents",
        "/exesdb.v1.Streams/GetVersion",
        "/exesdb.v1.Streams/ListStreams",
        "/exesdb.v1.Subscriptions/SaveSubscription",
        "/exesdb.v1.Subscriptions/ListSubscriptions",
        "/exesdb.v1.Subscriptions/AckEvent",
        "/exesdb.v1.Subscriptions/NackEvent",
        "/exesdb.v1.Subscriptions/Subscribe",
        "/exesdb.v1.Snapshots/RecordSnapshot",
        "/exesdb.v1.Snapshots/ReadSnapshot",
        "/exesdb.v1.Snapshots/DeleteSnapshot",
        "/exesdb.v1.Snapshots/ListSnapshots",
        "/exesdb.v1.Stores/ListStores",
        "/exesdb.v1.Stores/GetStoreStatus",
        "/exesdb.v1.Stores/GetStoreConfig",
        # A read; and an import batch whose records the store holds already is a no-op.
        "/exesdb.v1.Stores/ExportStore",
        "/exesdb.v1.Stores/ImportEvents",
    }
)
"""Methods whose repetition has the same effect as one call (reads, acks, upserts). An
AppendEvents whose events all carry ids is safe too (the node answers a repeat with the first
result); the shell reads that from the request."""

RESUMABLE = frozenset({"/exesdb.v1.Streams/ReadEvents", "/exesdb.v1.Subscriptions/Subscribe"})
"""Server streams that can go on, on another node, after the last message the client got."""

_UNAVAILABLE = "UNAVAILABLE"


class Verdict(enum.Enum):
    SEND = "send"
    """Send the call (again) to `Decision.member`."""
    RELAY = "relay"
    """Pass the attempt's status to the client unchanged."""
    GIVE_UP = "give_up"
    """No member left to try: the gateway answers UNAVAILABLE."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    member: str | None = None
    """For SEND: where to."""


_RELAY = Decision(Verdict.RELAY)
_GIVE_UP = Decision(Verdict.GIVE_UP)


class Attempts:
    """The tries of one forwarded call; see the module docstring for the rules."""

    def __init__(self, *, safe: bool, resumable: bool) -> None:
        self.safe = safe
        """Sending the request twice has the effect of sending it once."""
        self.resumable = resumable
        """A stream that broke can go on where it broke."""
        self.tried: set[str] = set()
        """Members that failed this call since it last made progress."""
        self.sent = 0
        """Attempts so far."""

    def first(self, state: PoolState, now: float) -> Decision:
        """Where the call goes first: the pool's round-robin choice, or give up (none usable)."""
        return self._send(state.choose(now))

    def failed(
        self,
        member: str,
        *,
        code: str,
        sent: bool,
        progressed: bool,
        state: PoolState,
        now: float,
        rng: random.Random,
    ) -> Decision:
        """The attempt on `member` ended with status `code` (its name, e.g. "UNAVAILABLE";
        a call never issued counts as UNAVAILABLE with `sent` False). `progressed`: it passed
        messages to the client. Call after the outcome was reported to the pool."""
        if code != _UNAVAILABLE:
            return _RELAY
        if progressed and not self.resumable:
            return _RELAY
        if sent and not self.safe:
            return _RELAY
        if progressed:
            self.tried.clear()
        self.tried.add(member)
        return self._send(state.fallback(self.tried, now, rng))

    def _send(self, member: str | None) -> Decision:
        if member is None:
            return _GIVE_UP
        self.sent += 1
        return Decision(Verdict.SEND, member)
