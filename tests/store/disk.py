"""A real full disk for tests: a small tmpfs mounted for one test, and a file that fills it.

Owns: `small_disk` (mounts a tmpfs of a given size, yields its path, unmounts) and `fill`
(writes zeros until the filesystem says ENOSPC, returns the file so the test can free it).
Mounting needs root (CAP_SYS_ADMIN): without it the tests that use it are skipped — unless CI
is set, then they fail, because CI runs `make test` as root and must not skip them silently.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "small_disk"]


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax: "8m") mounted at `where` for the block."""
    where.mkdir(parents=True, exist_ok=True)
    why = ""
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    else:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            why = f"mount -t tmpfs failed: {done.stderr.strip()}"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI runs as root and must not skip the full-disk tests")
        pytest.skip(why)
    try:
        yield where
    finally:
        # Lazy: a file a failed test left open must not make the unmount fail.
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path, keep_bytes: int = 0) -> Path:
    """Writes a file in `directory` until the disk is full, then gives back `keep_bytes`."""
    path = directory / "filler"
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        if keep_bytes:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - keep_bytes))
    finally:
        os.close(fd)
    return path
