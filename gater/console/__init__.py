"""The interactive test console of the seed (`gater console`), over gater.client.

Owns: the menu-driven console itself (app, with its data and lifecycle entries in _data and
_lifecycle, over _io's prompts) and the words a person types to select events (_selection:
tags:, type:, prefix:). The greenhouse domain and the payload patterns a person types live in
gater.client (greenhouse, patterns), shared with the CLI's client commands; they are
re-exported here. Must not import anything from gater but gater.client and
gater.errors: it is a client program like any other, and knows nothing of the CLI.
"""

from __future__ import annotations

from ..client.greenhouse import EVENT_TYPES, OPERATORS, STREAMS, generate_events
from ..client.patterns import PatternError, parse_pattern
from ._selection import Selection, SelectionError, parse_selection, subscription_selector
from .app import ConsoleApp, Theme, run_console

__all__ = [
    "EVENT_TYPES",
    "OPERATORS",
    "STREAMS",
    "ConsoleApp",
    "PatternError",
    "Selection",
    "SelectionError",
    "Theme",
    "generate_events",
    "parse_pattern",
    "parse_selection",
    "run_console",
    "subscription_selector",
]
