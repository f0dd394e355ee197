"""The dependency directions of STYLE.md: store ← subscriptions ← node ← gateway; the client
only on generated stubs; errors and config at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FORBIDDEN = {
    "gater/errors.py": ["gater."],
    "gater/ids.py": ["gater."],
    "gater/config.py": ["gater.store", "gater.node", "gater.gateway", "gater.subscriptions"],
    "gater/store": ["gater.subscriptions", "gater.node", "gater.gateway", "grpc"],
    "gater/subscriptions": ["gater.node", "gater.gateway", "grpc"],
    "gater/node": ["gater.gateway"],
    "gater/gateway": ["gater.store", "gater.subscriptions", "gater.node"],
    "gater/_grpc.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/client": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway", "gater.console"],
    "gater/console": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/_cli_client.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
}


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_dependency_direction(where: str) -> None:
    target = REPO / where
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    assert files, f"{where} is listed here but has no Python files"
    bad = []
    for f in files:
        for name in imports_of(f):
            for prefix in FORBIDDEN[where]:
                if name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + "."):
                    bad.append(f"{f.relative_to(REPO)} imports {name}")
    assert bad == []
