"""The SQL of every backend, loaded from gater/store/sql/<dialect>/.

Owns: `SqlFiles` — reading `<name>.sql` (one statement per file) and `NNNN_<name>.sql` (the
schema migrations, numbered 1..n without gaps) through importlib.resources, so they ship as
package data (pyproject's "gater.store" = ["sql/*/*.sql"] covers them). A statement that takes
a variable number of rows holds a `{rows}` mark that `SqlFiles.rows` fills in.
Must not import a database driver, grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "SqlFiles"]

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
