"""How big a page may be: the one rule every backend applies to `limit`.

Owns: `page_size` (listings: 1..max_page_size) and `read_size` (events: also at most
read_batch, which is what one ReadEventsResponse carries).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

from ..config import Limits
from ..errors import InvalidArgumentError

__all__ = ["page_size", "read_size"]


def page_size(limit: int, limits: Limits, field: str = "limit") -> int:
    """`limit` clipped to max_page_size; InvalidArgumentError when it is below 1."""
    if limit < 1:
        raise InvalidArgumentError(field, "must be at least 1")
    return min(limit, limits.max_page_size)


def read_size(limit: int, limits: Limits, field: str = "limit") -> int:
    """A page of events: page_size, and at most read_batch."""
    return min(page_size(limit, limits, field), limits.read_batch)
