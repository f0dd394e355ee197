"""The per-principal token bucket (pure: time passed in)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gater.security.ratelimit import RateLimiter


def test_burst_then_rate() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=5)
    assert [limiter.take("a", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.take("b", 0.0)  # one key's use takes nothing from another's
    assert not limiter.take("a", 0.05)  # half a token
    assert limiter.take("a", 0.1)
    assert limiter.retry_after_s("a", 0.1) == 0.1


@given(
    rate=st.floats(1, 1000),
    times=st.lists(st.floats(0, 100), min_size=1, max_size=200).map(sorted),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, times: list[float]) -> None:
    limiter = RateLimiter(rate_per_s=rate, burst=3)
    granted = sum(limiter.take("k", t) for t in times)
    assert granted <= 3 + rate * (times[-1] - times[0]) + 1e-6


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, max_keys=10)
    for i in range(1000):
        limiter.take(f"k{i}", 0.0)
    assert not limiter.take("k999", 0.0)  # recent keys are remembered
    assert limiter.take("k0", 0.0)  # forgotten ones start full again
