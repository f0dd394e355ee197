"""The SQL of every backend, loaded from gater/store/sql/<dialect>/.

Owns: `SqlFiles` — reading `<name>.sql` (one statement per file) and `NNNN_<name>.sql` (the
schema migrations, numbered 1..n without gaps) through importlib.resources, so they ship as
package data (pyproject's "gater.store" = ["sql/*/*.sql"] covers them). A statement that takes
a variable number of rows holds a `{rows}` mark that `SqlFiles.rows` fills in. And
`field_1_sql`, the expression that frames a record for the wire in either dialect.
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "SqlFiles", "field_1_sql"]

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


class SqlFiles:
    """The statements and migrations of one dialect ("sqlite", "postgres")."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._dir = resources.files("gater.store") / "sql" / dialect
        # Per instance (one per dialect, made at import): each file is read once.
        self.query = functools.cache(self._query)
        self.rows = functools.cache(self._rows)
        self.migrations = functools.cache(self._migrations)

    def _query(self, name: str) -> str:
        """The text of <name>.sql."""
        return self._dir.joinpath(f"{name}.sql").read_text(encoding="utf-8")

    def _rows(self, name: str, count: int, row: str) -> str:
        """<name>.sql with its `{rows}` mark replaced by `count` copies of `row` ("(?, ?)")."""
        return self.query(name).replace("{rows}", ", ".join([row] * count))

    def _migrations(self) -> tuple[Migration, ...]:
        """Every schema migration, in version order. Adding one is adding a file with the next
        number; applied migrations are never edited."""
        found = []
        for entry in self._dir.iterdir():
            match = _MIGRATION_NAME.match(entry.name)
            if match:
                found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
        found.sort(key=lambda m: m.version)
        versions = [m.version for m in found]
        if versions != list(range(1, len(found) + 1)):
            raise RuntimeError(f"{self.dialect} migrations must be numbered 1..n without gaps: {versions}")
        return tuple(found)


def field_1_sql(record: str, n: str, literal: Callable[[bytes], str]) -> str:
    """SQL: `record` (n bytes) framed as protobuf field 1 of a message — tag 0x0a, the varint
    of n, the record — the bytes `_wire.read_response` frames in Python, for records below
    2**35 bytes. `literal` spells a byte string in the dialect. Each byte of the varint is
    picked out of a literal of the 256 byte values (SQLite's char() would give UTF-8, two
    bytes from 128 on); "||" joins byte strings as they are (in SQLite, in a UTF-8 database)."""
    every_byte = literal(bytes(range(256)))

    def varint(size: int) -> str:
        parts = [f"(({n} >> {7 * i}) & 127 | 128)" for i in range(size - 1)] + [f"({n} >> {7 * (size - 1)})"]
        return " || ".join(f"substr({every_byte}, {part} + 1, 1)" for part in parts)

    tag = literal(bytes((0x0A,)))
    arms = " ".join(f"WHEN {n} < {128 ** size} THEN {varint(size)}" for size in range(1, 5))
    return f"{tag} || CASE {arms} ELSE {varint(5)} END || {record}"
