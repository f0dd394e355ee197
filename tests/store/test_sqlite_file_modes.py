"""Who may read a SQLite node's files: only its own user. Directories the backend creates are
0700 and its files (store databases with their WAL and shared memory, `cluster_id`, the lock)
0600, whatever the process's umask — the node's entry point also sets one, this checks the
backend on its own."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gater.config import Limits
from gater.store.base import EXPECT_ANY
from gater.store.sqlite import SqliteBackend

from .conformance import events

__all__: list[str] = []


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, str]:
    """Every path under `root` (itself included) → its permission bits in octal."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


async def test_files_and_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "parent" / "data"
    with umask(0o022):  # the usual one: 0644 files, 0755 directories unless told otherwise
        async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=600) as backend:
            await backend.create_store("alpha")
            store = await backend.open_store("alpha")
            await store.append("s", events(3), EXPECT_ANY)
            seen = modes(data_dir)
    # While the store is open: its WAL and shared memory exist, private like the rest.
    assert {"stores/alpha.sqlite-wal", "stores/alpha.sqlite-shm", "cluster_id", ".lock"} <= set(seen)
    assert {p: m for p, m in seen.items() if m != ("0o700" if (data_dir / p).is_dir() else "0o600")} == {}
    assert oct(stat.S_IMODE((tmp_path / "parent").stat().st_mode)) == "0o700"  # made for it: private too


async def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    """The operator's choice for a directory they made stands; only what gater creates is
    made private."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o750)
    data_dir.chmod(0o750)
    with umask(0o022):
        async with SqliteBackend(data_dir, limits=Limits(), idle_close_s=600) as backend:
            await backend.create_store("alpha")
    assert oct(stat.S_IMODE(data_dir.stat().st_mode)) == "0o750"
    assert oct(stat.S_IMODE((data_dir / "stores").stat().st_mode)) == "0o700"
    assert oct(stat.S_IMODE((data_dir / "stores" / "alpha.sqlite").stat().st_mode)) == "0o600"


pytestmark = pytest.mark.timeout(60)
