"""generated/ is what `make proto` makes from proto/ today: regenerate and compare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "gen_proto.sh"), sys.executable, str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "exesdb").rglob("*") if p.is_file()}
    committed = {
        p.relative_to(REPO / "generated"): p.read_bytes()
        for p in (REPO / "generated" / "exesdb").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(map(str, fresh)) == sorted(map(str, committed)), "files differ: run `make proto`"
    stale = [str(name) for name, data in fresh.items() if committed[name] != data]
    assert stale == [], f"generated/ is stale, run `make proto`: {stale}"
