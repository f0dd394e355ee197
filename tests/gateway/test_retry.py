"""The forwarding decisions' pure core (gater/gateway/retry.py), with the pool's pure state.

Covers: the first member (round-robin, or give up when none is usable); a node's own answer
(any status but UNAVAILABLE) is relayed; UNAVAILABLE of a request that may have reached the
node is relayed unless it is safe to repeat; a request never sent goes elsewhere; a stream that
passed messages goes on only when it can be resumed; the one stop rule (no member tried twice
without progress, then give up); progress lets a long stream move again. Property tests
(hypothesis) check the rules over random pools and random sequences of outcomes.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gater.gateway.pool_state import PoolState
from gater.gateway.retry import RESUMABLE, SAFE_TO_RETRY, Attempts, Verdict

pytestmark = pytest.mark.timeout(60)

A, B, C = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"
CODES = ["OK", "CANCELLED", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
         "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "INTERNAL", "UNAUTHENTICATED", "UNAVAILABLE"]  # fmt: skip


def pool(*addresses: str) -> PoolState:
    p = PoolState()
    p.update_members(addresses)
    for a in addresses:
        p.report_probe(a, True)
    return p


def fail(attempts: Attempts, state: PoolState, member: str, *, code: str = "UNAVAILABLE", sent: bool = True,
         progressed: bool = False, now: float = 0.0, rng: random.Random | None = None):  # fmt: skip
    """What the shell does: report the outcome to the pool, then ask."""
    if code == "UNAVAILABLE":
        state.report_failure(member, now)
    return attempts.failed(
        member, code=code, sent=sent, progressed=progressed, state=state, now=now, rng=rng or random.Random(0)
    )


def test_the_first_attempt_goes_round_robin_or_gives_up_at_once():
    p = pool(A, B)
    assert [Attempts(safe=True, resumable=False).first(p, 0.0).member for _ in range(4)] == [A, B, A, B]
    empty = PoolState()
    empty.update_members([A])  # known, never answered a probe
    decision = Attempts(safe=True, resumable=False).first(empty, 0.0)
    assert decision.verdict is Verdict.GIVE_UP and decision.member is None


@pytest.mark.parametrize("code", [c for c in CODES if c != "UNAVAILABLE"])
def test_a_nodes_own_answer_is_relayed(code):
    p = pool(A, B)
    attempts = Attempts(safe=True, resumable=True)
    attempts.first(p, 0.0)
    assert fail(attempts, p, A, code=code).verdict is Verdict.RELAY


def test_an_unsafe_request_that_may_have_reached_the_node_is_relayed():
    p = pool(A, B)
    attempts = Attempts(safe=False, resumable=False)
    assert attempts.first(p, 0.0).member == A
    assert fail(attempts, p, A, sent=True).verdict is Verdict.RELAY


def test_an_unsafe_request_never_sent_goes_to_another_member():
    p = pool(A, B)
    attempts = Attempts(safe=False, resumable=False)
    assert attempts.first(p, 0.0).member == A
    decision = fail(attempts, p, A, sent=False)
    assert (decision.verdict, decision.member) == (Verdict.SEND, B)
    assert fail(attempts, p, B, sent=False).verdict is Verdict.GIVE_UP


def test_a_safe_request_tries_each_member_once_then_gives_up():
    p = pool(A, B, C)
    attempts = Attempts(safe=True, resumable=False)
    tried = [attempts.first(p, 0.0).member]
    while (decision := fail(attempts, p, tried[-1])).verdict is Verdict.SEND:
        tried.append(decision.member)
        for a in (A, B, C):  # even when every member answers its probe again at once
            p.report_probe(a, True)
    assert sorted(tried) == [A, B, C] and decision.verdict is Verdict.GIVE_UP and attempts.sent == 3


def test_a_stream_that_passed_messages_goes_on_only_when_resumable():
    p = pool(A, B)
    plain = Attempts(safe=True, resumable=False)
    plain.first(p, 0.0)
    assert fail(plain, p, A, progressed=True).verdict is Verdict.RELAY

    p = pool(A, B)
    resumable = Attempts(safe=True, resumable=True)
    assert resumable.first(p, 0.0).member == A
    decision = fail(resumable, p, A, progressed=True)
    assert (decision.verdict, decision.member) == (Verdict.SEND, B)
    p.report_probe(A, True)
    # B delivered messages before failing: A may be tried again (a subscription lives long).
    decision = fail(resumable, p, B, progressed=True)
    assert (decision.verdict, decision.member) == (Verdict.SEND, A)
    # B failed since the last progress, and A fails now without any: nobody is left, even
    # though B answers its probe again.
    p.report_probe(B, True)
    assert fail(resumable, p, A, progressed=False).verdict is Verdict.GIVE_UP


def test_what_is_safe_and_resumable_is_as_documented():
    assert "/exesdb.v1.Streams/AppendEvents" not in SAFE_TO_RETRY  # only with every event id set
    assert "/exesdb.v1.Stores/CreateStore" not in SAFE_TO_RETRY
    assert "/exesdb.v1.Subscriptions/AckEvent" in SAFE_TO_RETRY
    assert RESUMABLE == {"/exesdb.v1.Streams/ReadEvents", "/exesdb.v1.Subscriptions/Subscribe"}
    assert RESUMABLE <= SAFE_TO_RETRY


# -- properties -------------------------------------------------------------------------------

outcomes = st.lists(
    st.tuples(
        st.sampled_from(CODES + ["UNAVAILABLE"] * 4),  # mostly node failures
        st.booleans(),  # sent
        st.booleans(),  # progressed
        st.sets(st.integers(min_value=0, max_value=5), max_size=3),  # members that answer a probe meanwhile
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300)
@given(
    size=st.integers(min_value=1, max_value=6),
    safe=st.booleans(),
    resumable=st.booleans(),
    outcomes=outcomes,
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_decisions_follow_the_rules(size, safe, resumable, outcomes, seed):
    rng = random.Random(seed)
    members = [f"10.0.0.{i}:1" for i in range(size)]
    p = pool(*members)
    attempts = Attempts(safe=safe, resumable=resumable)
    decision = attempts.first(p, 0.0)
    failed_since_progress: set[str] = set()
    sends_without_progress = 1
    for code, sent, progressed, probed in outcomes:
        assert decision.verdict is Verdict.SEND
        member = decision.member
        assert member in members
        decision = fail(attempts, p, member, code=code, sent=sent, progressed=progressed, rng=rng)
        must_relay = code != "UNAVAILABLE" or (progressed and not resumable) or (sent and not safe)
        assert (decision.verdict is Verdict.RELAY) == must_relay
        if must_relay:
            return
        if progressed:
            failed_since_progress.clear()
            sends_without_progress = 0
        failed_since_progress.add(member)
        if decision.verdict is Verdict.GIVE_UP:
            # Only when no usable member is left outside those that failed since progress.
            assert set(p.usable()) <= failed_since_progress
            return
        assert decision.member not in failed_since_progress and p.is_usable(decision.member)
        sends_without_progress += 1
        assert sends_without_progress <= size  # the one stop rule bounds a call without progress
        for i in probed:
            if i < size:
                p.report_probe(members[i], True)
