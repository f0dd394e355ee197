"""The event-store node: gRPC servicers that expose a store backend, health and reflection.

Must not import gater.gateway. May import gater.store and gater.subscriptions.
"""

from .server import NodeServer

__all__ = ["NodeServer"]
