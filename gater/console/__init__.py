"""The interactive test console of the seed (`gater console`), over gater.client.

Owns: the greenhouse domain (greenhouse), payload patterns typed by a person (patterns) and
the menu-driven console itself (app). Must not import anything from gater but gater.client,
gater.errors and gater.config: it is a client program like any other.
"""

from __future__ import annotations

from .app import ConsoleApp, Theme, run_console
from .greenhouse import EVENT_TYPES, OPERATORS, STREAMS, generate_events
from .patterns import PatternError, parse_pattern

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
