"""The SQL of the PostgreSQL backend, loaded from the .sql files next to this module.

Owns: reading `sql/<name>.sql` (queries) and `sql/migrations/NNNN_<name>.sql` (schema
versions) through importlib.resources, so they ship as package data.
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
    return resources.files(__package__).joinpath("sql")


@functools.cache
def query(name: str) -> str:
    """The text of sql/<name>.sql."""
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
    for entry in _sql_dir().joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"PostgreSQL migrations must be numbered 1..n without gaps: {versions}")
    return tuple(found)
