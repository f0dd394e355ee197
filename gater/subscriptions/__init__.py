"""Subscriptions: which events a subscription wants and how persistent ones are delivered.

Owns: the pure cores -- `matching` (selector validation and event filters) and `persistent`
(the bookkeeping of one persistent subscription) -- re-exported here, and the asyncio shells
that drive them (catch-up -> live hub), which live in their own modules.
Must not import grpc, gater.node or gater.gateway (the pure cores also not asyncio).
"""

from gater.subscriptions.matching import (
    PATTERN_FIELDS,
    WILDCARD,
    EventFilter,
    EventView,
    SubscriptionKind,
    make_filter,
    match_partial,
)
from gater.subscriptions.persistent import (
    SNAPSHOT_FORMAT,
    Delivery,
    NackAction,
    PersistentSettings,
    PersistentState,
)

__all__ = [
    "PATTERN_FIELDS",
    "SNAPSHOT_FORMAT",
    "WILDCARD",
    "Delivery",
    "EventFilter",
    "EventView",
    "NackAction",
    "PersistentSettings",
    "PersistentState",
    "SubscriptionKind",
    "make_filter",
    "match_partial",
]
