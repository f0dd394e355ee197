"""What a person types to select events beyond one stream: `tags:`, `type:` and `prefix:` words.

Owns: `parse_selection` (the typed words → a DCB `Query` and a stream prefix) and
`subscription_selector` (the same, or a plain stream, → the one keyword `Client.subscribe` /
`save_subscription` take). Plain functions: text in, values out.
Must not import anything from gater but gater.client.

The words: ``tags:<tag> <tag>...`` (an event carries every tag), ``type:<T> <T>...`` (any of the
types), ``prefix:<p>`` (streams whose id starts with p; ``order-*`` says the same as
``order-``). A word without one of these keys goes to the key before it, so tags may hold
colons themselves: ``tags:crop:basil room:r1 type:temperature_measured:v1 prefix:greenhouse``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..client import Query

__all__ = ["KEYS", "Selection", "SelectionError", "parse_selection", "subscription_selector"]

KEYS = ("tags:", "type:", "prefix:")


class SelectionError(ValueError):
    """Typed words that select nothing sensible; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Selection:
    query: Query | None
    """Types OR'ed, tags AND'ed, in one query item; None when only a prefix was given."""
    prefix: str = ""

    def describe(self) -> str:
        parts = []
        if self.query is not None:
            (item,) = self.query.items
            parts += [f"tags {' '.join(item.tags)}"] if item.tags else []
            parts += [f"type {' or '.join(item.types)}"] if item.types else []
        if self.prefix:
            parts.append(f"streams {self.prefix}*")
        return ", ".join(parts)


def is_selection(text: str) -> bool:
    return text.startswith(KEYS)


def parse_selection(text: str) -> Selection:
    """The Selection `text` spells; SelectionError when it starts with no key, a key has no
    value, or a prefix is given twice."""
    if not is_selection(text):
        raise SelectionError(f"{text!r} starts with none of {', '.join(KEYS)}")
    values: dict[str, list[str]] = {key: [] for key in KEYS}
    key = ""
    seen: set[str] = set()
    for word in text.split():
        found = next((k for k in KEYS if word.startswith(k)), None)
        if found is not None:
            key, word = found, word[len(found):]
            seen.add(key)
            if not word:
                continue
        values[key].append(word)
    for k in seen:
        if not values[k]:
            raise SelectionError(f"{k} needs a value, e.g. {_EXAMPLES[k]}")
    if len(values["prefix:"]) > 1:
        raise SelectionError(f"one prefix: at a time, got {' '.join(values['prefix:'])}")
    tags, types = tuple(values["tags:"]), tuple(values["type:"])
    prefix = values["prefix:"][0].removesuffix("*") if values["prefix:"] else ""
    if "prefix:" in seen and not prefix:
        raise SelectionError("prefix: needs at least one character before *")
    return Selection(Query.of(types=types, tags=tags) if tags or types else None, prefix)


_EXAMPLES = {"tags:": "tags:room:r1", "type:": "type:temperature_measured:v1", "prefix:": "prefix:greenhouse"}


def subscription_selector(text: str) -> dict[str, Any]:
    """The keyword for Client.subscribe / save_subscription: {"stream": text} for a stream,
    $all or a pattern such as order-*; {"stream": "<p>*"} for prefix:<p>; {"query": Query}
    for tags:/type:. A subscription selects by one of them, so both is a SelectionError."""
    if not is_selection(text):
        return {"stream": text}
    selection = parse_selection(text)
    if selection.query is not None and selection.prefix:
        raise SelectionError("a subscription selects by a prefix or by tags:/type:, not both")
    if selection.query is not None:
        return {"query": selection.query}
    return {"stream": f"{selection.prefix}*"}
