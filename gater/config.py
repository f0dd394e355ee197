"""Configuration as frozen dataclasses, parsed once at the entry point (cli.py) and passed down.

Owns: the settings of nodes and gateways, their defaults and the documented limits.
Must not import anything from gater except errors; no module but cli.py reads os.environ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_STORE", "Limits", "NodeConfig"]

DEFAULT_STORE = "default"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits enforced on every call; README's "Limits" table mirrors these defaults."""

    max_message_bytes: int = 16 * 1024 * 1024
    """Largest request or response message, in bytes (gRPC's max message size)."""
    max_events_per_append: int = 10_000
    """Most events in one AppendEvents call."""
    max_stream_id_bytes: int = 256
    """Longest stream id, event type, snapshot source/stream id, in UTF-8 bytes."""
    max_name_bytes: int = 256
    """Longest event type and snapshot source_type, in UTF-8 bytes."""
    max_content_type_bytes: int = 128
    """Longest content type."""
    max_store_id_chars: int = 64
    """Longest store id."""
    max_page_size: int = 1000
    """Most items in one page of a listing."""
    read_batch: int = 500
    """Events per ReadEventsResponse message (and per storage page)."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """How one event-store node runs."""

    listen: str = "127.0.0.1:50051"
    """host:port the gRPC server binds; port 0 picks a free one."""
    data_dir: Path = Path("./data")
    """SQLite backend: where the per-store database files live."""
    postgres_dsn: str | None = None
    """When set, events live in this PostgreSQL database instead of SQLite."""
    default_store: str = DEFAULT_STORE
    """The store used when a request leaves `store` empty; created at start."""
    sqlite_synchronous: str = "FULL"
    """SQLite's synchronous pragma: FULL (durable on power loss) or NORMAL."""
    node_id: str | None = None
    """This node's id; None derives one from the host name and port."""
    cluster_secret: str | None = None
    """When set, calls must carry it in the `x-gater-secret` metadata."""
    advertise: str | None = None
    """host:port other nodes and gateways dial to reach this node; None: the bound address."""
    limits: Limits = field(default_factory=Limits)
    """Limits on calls."""
    grace_s: float = 5.0
    """How long a stop waits for calls in flight."""
