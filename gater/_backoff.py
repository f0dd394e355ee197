"""Retrying a remote dependency (a Consul agent, a DNS server): how long to wait, and telling an
outage once.

Owns: `backoff_s` (exponential, capped, with jitter) and `Outage`, the bookkeeping of failures
in a row that every long-lived client of a remote dependency shares: one WARNING when an
outage starts, DEBUG while it lasts, one INFO when it ends, and the delay before the next try.
Shared by nodes (Consul registration) and gateways (discovery): must not import gater.store,
gater.subscriptions, gater.node or gater.gateway; no I/O, no clock reads.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Outage", "backoff_s"]


def backoff_s(attempt: int, *, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (1-based): initial·2^(attempt-1), capped at max_s,
    with "full jitter" in [d/2, d] when `rng` is given, so it never exceeds the cap."""
    if attempt < 1:
        return 0.0
    d = min(max_s, initial_s * (2.0 ** min(attempt - 1, 62)))
    if rng is not None:
        d = d / 2 + rng.random() * d / 2
    return d


class Outage:
    """Failures in a row of one remote dependency.

    `failed(error)` counts one, logs `started` at WARNING on the first of an outage (DEBUG
    after), and returns the delay before the next try; `succeeded()` logs `ended` at INFO
    (with `failed_attempts`) when an outage ends. Log records carry `context()` as fields.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        started: str,
        ended: str,
        initial_s: float,
        max_s: float,
        rng: random.Random | None = None,
        context: Callable[[], dict[str, Any]] = dict,
        last_error: str | None = None,
    ) -> None:
        self._log = log
        self._started = started
        self._ended = ended
        self._initial_s = initial_s
        self._max_s = max_s
        self._rng = rng or random.Random()
        self._context = context
        self.failures = 0
        """Failed attempts since the last success."""
        self.last_error: str | None = last_error
        """Why the last attempt failed; None after a success."""

    @property
    def ok(self) -> bool:
        """True when the last attempt succeeded."""
        return self.last_error is None

    def failed(self, error: str, **fields: Any) -> float:
        """One more failed attempt; returns the seconds to wait before the next."""
        self.failures += 1
        self.last_error = error
        extra = {**self._context(), "error": error, **fields}
        if self.failures == 1:
            self._log.warning(self._started, extra=extra)
        else:
            self._log.debug(self._started, extra={**extra, "failed_attempts": self.failures})
        return backoff_s(self.failures, initial_s=self._initial_s, max_s=self._max_s, rng=self._rng)

    def succeeded(self, **fields: Any) -> None:
        """An attempt succeeded: the outage, if any, is over."""
        if self.failures:
            self._log.info(self._ended, extra={**self._context(), "failed_attempts": self.failures, **fields})
        self.failures = 0
        self.last_error = None
