"""The channel pool's pure decision core (gater/gateway/pool_state.py).

Covers: membership diffs, round-robin order and spread, members unusable until a health probe
answers and after a failed call until one answers again (never by the passing of time),
ejection with growing capped backoff, report_success resetting, stale failures not lengthening
an ejection, the panic rule (all usable members ejected) and the "no usable member → None"
rule, `routable` agreeing with `choose`, fallback never returning an excluded member, in-flight
counters, health flags and snapshots. Property tests (hypothesis) check the invariants over
random sequences of operations.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gater.config import PoolPolicy
from gater.gateway.pool_state import PoolState, ejection_s

pytestmark = pytest.mark.timeout(60)

A, B, C = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"


def pool(*addresses: str, **policy: object) -> PoolState:
    """A pool whose members all answered their first health probe."""
    p = PoolState(PoolPolicy(**policy))  # type: ignore[arg-type]
    p.update_members(addresses)
    for a in addresses:
        p.report_probe(a, True)
    return p


def test_update_members_returns_joined_and_left():
    p = PoolState()
    assert p.update_members([A, B]) == (frozenset({A, B}), frozenset())
    assert p.update_members([B, C]) == (frozenset({C}), frozenset({A}))
    assert p.update_members([B, C]) == (frozenset(), frozenset())
    assert p.members() == {B, C} and A not in p and len(p) == 2


def test_round_robin_in_stable_order():
    p = pool(C, A, B)
    assert [p.choose(0.0) for _ in range(6)] == [A, B, C, A, B, C]


def test_no_members_means_none():
    assert PoolState().choose(0.0) is None
    assert PoolState().fallback(A, 0.0, random.Random(1)) is None


def test_no_healthy_member_means_none_at_once():
    p = pool(A, B)
    p.mark_healthy(A, False)
    p.mark_healthy(B, False)
    assert p.choose(0.0) is None
    p.mark_healthy(B, True)
    assert p.choose(0.0) == B


def test_a_member_is_used_only_once_its_health_probe_answers():
    p = PoolState()
    p.update_members([A, B])
    assert p.choose(0.0) is None and not p.routable(0.0) and p.usable() == ()
    p.report_probe(B, True)
    assert [p.choose(0.0) for _ in range(2)] == [B, B] and p.routable(0.0)
    p.report_probe(B, False)  # NOT_SERVING, or no answer in time
    assert p.choose(0.0) is None and not p.routable(0.0)
    snap = {s.address: s for s in p.snapshot(0.0)}
    assert snap[B].healthy and not snap[B].answering and not snap[B].available


def test_failure_ejects_and_success_restores():
    p = pool(A, B)
    assert p.report_failure(A, now=10.0) == 11.0
    assert [p.choose(10.5) for _ in range(3)] == [B, B, B]
    assert not p.is_available(A, 10.5)
    # The ejection ran out, but nothing said the node answers again: still not used.
    assert not p.is_available(A, 11.0) and not p.is_usable(A)
    p.report_probe(A, True)
    assert p.is_available(A, 11.0)
    p.report_success(A)
    assert p.is_available(A, 10.5)


def test_after_a_failed_call_only_a_probe_brings_the_member_back():
    """The flap of issue 9: one failed call must not turn into "usable again" when its
    ejection ends while the node is still dead."""
    p = pool(A)
    p.report_failure(A, 0.0)
    for now in (0.5, 1.0, 5.0, 100.0):
        assert p.choose(now) is None and not p.routable(now)
    p.report_probe(A, False)
    assert p.choose(100.0) is None
    p.report_probe(A, True)
    assert p.choose(100.0) == A and p.routable(100.0)


def test_backoff_doubles_and_is_capped():
    p = pool(A, base_ejection_s=1.0, max_ejection_s=8.0)
    now, lengths = 0.0, []
    for _ in range(6):
        until = p.report_failure(A, now)
        assert until is not None
        lengths.append(until - now)
        now = until  # the next failure comes from a call made after the ejection ended
    assert lengths == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    p.report_success(A)
    assert p.report_failure(A, now) == now + 1.0


def test_failures_while_ejected_do_not_lengthen_the_ejection():
    p = pool(A, B)
    until = p.report_failure(A, 0.0)
    assert p.report_failure(A, 0.5) == until
    assert p.snapshot(0.5)[0].failures == 1


def test_unknown_addresses_are_ignored():
    p = pool(A)
    assert p.report_failure(B, 0.0) is None
    p.report_success(B)
    p.acquire(B)
    p.release(B)
    p.mark_healthy(B, False)
    p.report_probe(B, True)
    assert p.members() == {A} and not p.is_usable(B)


def answered(p: PoolState, *addresses: str) -> None:
    """Each of `addresses` answered a health probe (after the calls that failed on it)."""
    for a in addresses:
        p.report_probe(a, True)


def test_panic_picks_the_member_whose_ejection_ends_soonest():
    p = pool(A, B, C)
    p.report_failure(A, 0.0)  # until 1
    p.report_failure(B, 0.0)
    p.report_failure(B, 1.0)  # until 3
    p.report_failure(C, 0.5)  # until 1.5
    assert p.choose(0.9) is None  # not one answered a probe since its failure
    answered(p, A, B, C)
    assert p.routable(0.9)
    assert p.choose(0.9) == A
    p.mark_healthy(A, False)
    assert p.choose(0.9) == C
    p.report_probe(C, False)
    assert p.choose(0.9) == B


def test_panic_can_be_turned_off():
    p = pool(A, B, panic=False)
    p.report_failure(A, 0.0)
    p.report_failure(B, 0.0)
    answered(p, A, B)
    assert p.choose(0.5) is None and not p.routable(0.5)
    assert p.fallback(A, 0.5, random.Random(0)) is None
    assert p.routable(1.0) and p.choose(1.0) in (A, B)


def test_fallback_picks_another_member():
    p = pool(A, B, C)
    rng = random.Random(7)
    picks = {p.fallback(A, 0.0, rng) for _ in range(50)}
    assert picks == {B, C}
    p.report_failure(B, 0.0)
    assert {p.fallback(A, 0.5, rng) for _ in range(20)} == {C}
    assert {p.fallback({A, C}, 0.5, rng) for _ in range(20)} == {None}  # B must answer first
    p.report_failure(C, 0.0)
    answered(p, B, C)
    assert p.fallback(A, 0.5, rng) in {B, C}  # panic among the others
    assert p.fallback({A, B}, 0.5, rng) == C
    assert p.fallback([A, B, C], 0.5, rng) is None
    assert pool(A).fallback(A, 0.0, rng) is None


def test_in_flight_counts_and_snapshot():
    p = pool(A, B)
    p.acquire(A)
    p.acquire(A)
    p.release(A)
    p.release(B)  # never below zero
    p.report_failure(B, 100.0)
    snap = {s.address: s for s in p.snapshot(100.25)}
    assert snap[A].in_flight == 1 and snap[A].available and snap[A].ejected_until is None
    assert snap[B].in_flight == 0 and not snap[B].available and snap[B].healthy
    assert snap[B].ejected_until == 101.0 and snap[B].ejected_for_s == 0.75
    assert snap[B].failures == 1
    p.update_members([A, B, C])
    assert [s.address for s in p.snapshot(0.0)] == [A, B, C]


def test_members_that_stay_keep_their_state():
    p = pool(A, B)
    p.report_failure(A, 0.0)
    p.acquire(A)
    p.update_members([A, C])
    s = p.snapshot(0.5)[0]
    assert s.address == A and s.failures == 1 and s.in_flight == 1


def test_ejection_jitter_only_shortens():
    policy = PoolPolicy(base_ejection_s=1.0, max_ejection_s=30.0, jitter=0.5)
    rng = random.Random(3)
    for n in range(1, 10):
        d = ejection_s(n, policy, rng)
        full = min(30.0, 2.0 ** (n - 1))
        assert full / 2 <= d <= full


def test_policy_is_validated():
    with pytest.raises(ValueError):
        PoolPolicy(base_ejection_s=5, max_ejection_s=1)
    with pytest.raises(ValueError):
        PoolPolicy(jitter=2)


# -- properties -------------------------------------------------------------------------------

addresses = st.lists(
    st.integers(min_value=1, max_value=60).map(lambda i: f"10.0.0.{i}:5000"),
    min_size=1,
    max_size=8,
    unique=True,
)


@given(members=addresses, ejected=st.data(), rounds=st.integers(min_value=1, max_value=5))
def test_round_robin_spreads_evenly_over_available_members(members, ejected, rounds):
    p = PoolState()
    p.update_members(members)
    answered(p, *members)
    down = ejected.draw(st.sets(st.sampled_from(members), max_size=len(members) - 1))
    for a in down:
        p.report_failure(a, 0.0)
    up = [a for a in members if a not in down]
    counts = Counter(p.choose(0.5) for _ in range(rounds * len(up)))
    assert counts == Counter({a: rounds for a in up})


ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["choose", "fail", "ok", "unhealthy", "healthy", "members", "tick", "fallback", "probe", "silent"]
        ),
        st.integers(min_value=0, max_value=9),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(ops=ops, seed=st.integers(min_value=0, max_value=2**32))
def test_choices_are_always_known_usable_members_and_never_ejected_unless_panic(ops, seed):
    rng = random.Random(seed)
    universe = [f"h{i}:1" for i in range(10)]
    p = PoolState(PoolPolicy(jitter=0.3))
    p.update_members(universe[:4])
    answered(p, *universe[:4])
    failed_since_probe: set[str] = set()
    now = 0.0
    for op, i in ops:
        a = universe[i]
        if op == "choose":
            routable = p.routable(now)
            got = p.choose(now)
            assert routable == (got is not None)
            usable = [s for s in p.snapshot(now) if s.healthy and s.answering]
            if not usable:
                assert got is None
            else:
                assert got in p.members() and got not in failed_since_probe
                snap = {s.address: s for s in p.snapshot(now)}
                assert snap[got].healthy and snap[got].answering
                if any(s.available for s in usable):
                    assert snap[got].available
                else:  # panic: the soonest end of ejection
                    assert snap[got].ejected_until == min(s.ejected_until for s in usable)
        elif op == "fallback":
            got = p.fallback(a, now, rng)
            assert got != a and got not in failed_since_probe
            assert got is None or got in p.members()
        elif op == "fail":
            p.report_failure(a, now, rng)
            failed_since_probe.add(a)
        elif op == "probe":
            p.report_probe(a, True)
            failed_since_probe.discard(a)
        elif op == "silent":
            p.report_probe(a, False)
        elif op == "ok":
            p.report_success(a)
        elif op == "unhealthy":
            p.mark_healthy(a, False)
        elif op == "healthy":
            p.mark_healthy(a, True)
        elif op == "members":
            p.update_members(rng.sample(universe, rng.randint(0, 6)))
        elif op == "tick":
            now += i * 0.7


@given(
    base=st.floats(min_value=0.01, max_value=5),
    cap=st.floats(min_value=5, max_value=120),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_grows_and_is_capped(base, cap, jitter, seed):
    policy = PoolPolicy(base_ejection_s=base, max_ejection_s=cap, jitter=jitter)
    plain = [ejection_s(n, policy) for n in range(1, 40)]
    assert all(x <= y for x, y in zip(plain, plain[1:], strict=False))
    assert plain[0] == base and plain[-1] == cap
    rng = random.Random(seed)
    assert all(0 < ejection_s(n, policy, rng) <= cap for n in range(1, 40))


@given(members=addresses, seed=st.integers(min_value=0, max_value=2**32))
def test_fallback_never_returns_the_failed_member(members, seed):
    rng = random.Random(seed)
    p = PoolState()
    p.update_members(members)
    answered(p, *members)
    for a in members:
        got = p.fallback(a, 0.0, rng)
        assert got != a
        assert (got is None) == (len(members) == 1)
