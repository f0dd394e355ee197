"""Payload patterns typed by a person: JSON, or the seed's Elixir map syntax.

Owns: `parse_pattern` — ``%{operator: "John"}`` → ``{"operator": "John"}``, parsed by a small
tokenizer and recursive-descent parser; nothing typed is ever evaluated as code.
Used by the console and `gater subscribe --payload`, which must not depend on each other.
Must not import anything from gater (it is pure text → data).

The map syntax: ``%{key: value, "quoted key" => value, :atom => value}`` with values that are
strings ("..." or '...'), numbers (1, -2.5, 1_000, 1e3), true, false, nil, atoms (:on → "on"),
lists ``[1, 2]``, nested maps, and ``_`` — the subscription wildcard "field present, any
value", which the API spells as the string "_".
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["WILDCARD", "PatternError", "parse_pattern"]

WILDCARD = "_"
"""How the API spells "any value" in a payload pattern (the seed's `%{intensity: _}`)."""


class PatternError(ValueError):
    """The text is not a pattern; says where and why."""

    def __init__(self, text: str, at: int, why: str) -> None:
        super().__init__(f"{why} at column {at + 1}: {text[:at]}⟨here⟩{text[at:]}")
        self.at = at
        self.why = why


_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<open_map>%\{)
    | (?P<key>[A-Za-z_][A-Za-z0-9_?!]*:)(?=\s|$|[,}\]])   # `operator:` (a key, Elixir keyword style)
    | (?P<arrow>=>)
    | (?P<punct>[{}\[\],])
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<number>-?(?:\d[\d_]*)(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?)
    | (?P<atom>:[A-Za-z_][A-Za-z0-9_?!]*|:"(?:[^"\\]|\\.)*")
    | (?P<word>[A-Za-z_][A-Za-z0-9_?!]*)
    | (?P<colon>:)(?=\s)                                   # `"quoted key": value`
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_WORDS: dict[str, Any] = {"true": True, "false": False, "nil": None, WILDCARD: WILDCARD}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise PatternError(text, at, f"unexpected {text[at]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append((kind, match.group(), at))
        at = match.end()
    return out


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        if self.i < len(self.tokens):
            return self.tokens[self.i]
        return ("end", "", len(self.text))

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token[0] == "end" or (value is not None and token[1] != value):
            want = f"{value!r}" if value is not None else "more"
            raise PatternError(self.text, token[2], f"expected {want}, found {token[1] or 'the end'!r}")
        self.i += 1
        return token

    def value(self) -> Any:
        kind, raw, at = self.take()
        if kind == "open_map":
            return self.map_rest()
        if raw == "[":
            return self.list_rest()
        if kind == "string":
            return _unquote(raw)
        if kind == "number":
            number = raw.replace("_", "")
            return float(number) if any(c in number for c in ".eE") else int(number)
        if kind == "atom":
            return _unquote(raw[1:]) if raw.startswith(':"') else raw[1:]
        if kind == "word" and raw in _WORDS:
            return _WORDS[raw]
        raise PatternError(self.text, at, f"unexpected {raw!r} (strings need quotes)")

    def key(self) -> tuple[str, bool]:
        """A map key and whether its `:`/`=>` was already consumed."""
        kind, raw, at = self.take()
        if kind == "key":
            return raw[:-1], True
        if kind == "string":
            return _unquote(raw), False
        if kind == "atom":
            return (_unquote(raw[1:]) if raw.startswith(':"') else raw[1:]), False
        raise PatternError(self.text, at, f"expected a key, found {raw!r}")

    def map_rest(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.peek()[1] != "}":
            key, separated = self.key()
            if not separated:
                # `"key": value` (Elixir allows quoted keyword keys) or `"key" => value`.
                kind, raw, at = self.peek()
                if kind not in ("arrow", "colon"):
                    raise PatternError(self.text, at, "expected '=>' or ': ' after a quoted key")
                self.take()
            out[key] = self.value()
            if self.peek()[1] != ",":
                break
            self.take(",")
        self.take("}")
        return out

    def list_rest(self) -> list[Any]:
        out: list[Any] = []
        while self.peek()[1] != "]":
            out.append(self.value())
            if self.peek()[1] != ",":
                break
            self.take(",")
        self.take("]")
        return out


def parse_pattern(text: str) -> dict[str, Any]:
    """A payload pattern from JSON (``{"operator": "John"}``) or the seed's map syntax
    (``%{operator: "John", intensity: _}``). PatternError says what is wrong and where."""
    text = text.strip()
    if not text:
        raise PatternError(text, 0, "empty pattern")
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as e:
            raise PatternError(text, getattr(e, "pos", 0), f"not JSON ({e.args[0].split(':')[0]})") from None
    else:
        parser = _Parser(text)
        value = parser.value()
        if parser.peek()[0] != "end":
            raise PatternError(text, parser.peek()[2], "unexpected text after the pattern")
    if not isinstance(value, dict):
        raise PatternError(text, 0, "a pattern must be a map (%{...}) or a JSON object")
    return value
