"""The gateway: pass-through proxy, channel pool, discovery (consul/static/dns), cluster monitor.

Must not import gater.store nor gater.subscriptions: a gateway reaches storage only through
nodes over gRPC.
"""

__all__: list[str] = []
