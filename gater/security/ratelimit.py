"""Requests per second per principal, as a pure token bucket.

Owns: `RateLimiter` — `take(key, now)` answers whether one more request fits the rate; time is
passed in (any monotonic clock), nothing else is read. Memory is bounded: the least recently
seen keys are forgotten beyond `max_keys` (a forgotten key starts again with a full bucket,
which only ever lets a little more through, never less).
Must not import anything but the standard library.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float | None = None, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s)
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        """True (and the tokens are spent) when `key` may make a request costing `cost` now."""
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate_per_s)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self, key: str, now: float, cost: float = 1.0) -> float:
        """How long until `take(key, ...)` would succeed (0 when it would now)."""
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate_per_s)
        return max(0.0, (cost - tokens) / self.rate_per_s)
