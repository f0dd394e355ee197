"""The interactive test console of the seed (`gater console`), over gater.client.

Owns: the menu-driven console itself (app). The greenhouse domain and the payload patterns a
person types live in gater.client (greenhouse, patterns), shared with the CLI's client
commands; they are re-exported here. Must not import anything from gater but gater.client and
gater.errors: it is a client program like any other, and knows nothing of the CLI.
"""

from __future__ import annotations

from ..client.greenhouse import EVENT_TYPES, OPERATORS, STREAMS, generate_events
from ..client.patterns import PatternError, parse_pattern
from .app import ConsoleApp, Theme, run_console

__all__ = [
    "EVENT_TYPES",
    "OPERATORS",
    "STREAMS",
    "ConsoleApp",
    "PatternError",
    "Theme",
    "generate_events",
    "parse_pattern",
    "run_console",
]
