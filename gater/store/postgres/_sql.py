"""The SQL of the PostgreSQL backend, loaded from gater/store/sql/postgres/.

Owns: reading `<name>.sql` (one statement per file) and `NNNN_<name>.sql` (the schema
migrations, in version order) through importlib.resources, so they ship as package data
(pyproject's "gater.store" = ["sql/*/*.sql"] covers them).
Must not import grpc, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "migrations", "query"]

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _sql_dir() -> resources.abc.Traversable:
    return resources.files("gater.store") / "sql" / "postgres"


@functools.cache
def query(name: str) -> str:
    """The text of <name>.sql."""
    return _sql_dir().joinpath(f"{name}.sql").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """Every schema migration, in version order. Adding one is adding a file with the next
    number; applied migrations are never edited."""
    found = []
    for entry in _sql_dir().iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"PostgreSQL migrations must be numbered 1..n without gaps: {versions}")
    return tuple(found)
