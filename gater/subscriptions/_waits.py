"""Waits the subscription layer leaves behind.

Owns: `abandon()`. Must not import grpc, gater.node or gater.gateway.
"""

from __future__ import annotations

import asyncio
from typing import Any


def abandon(wait: asyncio.Future[Any]) -> None:
    """Cancels a wait whose outcome nobody will read, and reads that outcome when it comes.
    Why: a wait for a position fails (StoreNotFoundError) in the same turn as RemoveStore
    wakes or cancels its waiter, which then leaves it; unread, asyncio logs the failure as an
    ERROR ("Task exception was never retrieved") — found by the fuzz suite."""
    wait.cancel()
    wait.add_done_callback(_read_outcome)


def _read_outcome(wait: asyncio.Future[Any]) -> None:
    if not wait.cancelled():
        wait.exception()
