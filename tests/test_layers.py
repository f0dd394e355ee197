"""The dependency directions of STYLE.md: store ← subscriptions ← node ← gateway; the client
only on generated stubs (and the leaves errors, ids and addresses); the console and the CLI's client
commands only on the client and errors, never on each other; errors and config at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

FORBIDDEN = {
    "gater/errors.py": ["gater."],
    "gater/ids.py": ["gater."],
    "gater/addresses.py": ["gater."],
    "gater/config.py": ["gater.store", "gater.node", "gater.gateway", "gater.subscriptions"],
    "gater/store": ["gater.subscriptions", "gater.node", "gater.gateway", "grpc"],
    "gater/subscriptions": ["gater.node", "gater.gateway", "grpc"],
    "gater/node": ["gater.gateway"],
    "gater/gateway": ["gater.store", "gater.subscriptions", "gater.node"],
    "gater/_grpc.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    # Shared by nodes and gateways: they build on these, never the other way round.
    "gater/consul.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/_backoff.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/security": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/metrics.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    "gater/tracing.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway"],
    # The server commands start servers; they know nothing of the console or the client commands.
    "gater/cli/_servers.py": ["gater.console", "gater.cli._streams", "gater.cli._admin", "gater.cli._console"],
    # Their security flags: configs and gater.security only, never a server itself.
    "gater/cli/_security.py": ["gater.store", "gater.node", "gater.gateway", "gater.console", "gater.cli._streams",
                               "gater.cli._admin", "gater.cli._console"],
    "gater/cli/_keys.py": ["gater.store", "gater.node", "gater.gateway", "gater.console", "gater.cli._streams",
                           "gater.cli._admin", "gater.cli._console"],
    # Backup and restore: the SQLite store's file functions and the client commands of _transfer.
    "gater/cli/_backup.py": ["gater.node", "gater.gateway", "gater.subscriptions", "gater.console",
                             "gater.cli._streams", "gater.cli._admin", "gater.cli._console", "gater.cli._servers"],
    # Their observability flags and log setup: configs only.
    "gater/cli/_observability.py": ["gater.store", "gater.subscriptions", "gater.node", "gater.gateway",
                                    "gater.console", "gater.cli._streams", "gater.cli._admin", "gater.cli._console"],
}

# The client side: everything of gater such a module may import (its own package included).
_CLIENT_SIDE_CLI = ("gater.client", "gater.errors", "gater.cli._output", "gater.cli._settings")
ALLOWED = {
    # Liftable with the generated code: errors, ids and addresses are leaves that import nothing of gater.
    "gater/client": ("gater.client", "gater.errors", "gater.ids", "gater.addresses"),
    "gater/console": ("gater.client", "gater.errors", "gater.console"),
    # The CLI's client commands and what they share.
    "gater/cli/_output.py": _CLIENT_SIDE_CLI,
    "gater/cli/_settings.py": _CLIENT_SIDE_CLI,
    "gater/cli/_streams.py": _CLIENT_SIDE_CLI,
    "gater/cli/_admin.py": _CLIENT_SIDE_CLI,
    "gater/cli/_health.py": _CLIENT_SIDE_CLI,
    "gater/cli/_transfer.py": _CLIENT_SIDE_CLI,
    # `gater console` is the one CLI module that starts the console (and it needs no client).
    "gater/cli/_console.py": ("gater.console", "gater.errors", "gater.cli._output", "gater.cli._settings"),
}

# Every module of these packages is in a table above: a new one has to say where it stands.
CLASSIFIED = ("gater/cli", "gater/client", "gater/console")


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


def _files(where: str) -> list[Path]:
    target = REPO / where
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    assert files, f"{where} is listed here but has no Python files"
    return files


def _under(name: str, prefix: str) -> bool:
    prefix = prefix.rstrip(".")
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_dependency_direction(where: str) -> None:
    bad = [
        f"{f.relative_to(REPO)} imports {name}"
        for f in _files(where)
        for name in imports_of(f)
        for prefix in FORBIDDEN[where]
        if _under(name, prefix) or (prefix.endswith(".") and name.startswith(prefix))
    ]
    assert bad == []


@pytest.mark.parametrize("where", sorted(ALLOWED))
def test_client_side_imports_only_what_it_may(where: str) -> None:
    bad = [
        f"{f.relative_to(REPO)} imports {name}"
        for f in _files(where)
        for name in imports_of(f)
        if _under(name, "gater") and not any(_under(name, allowed) for allowed in ALLOWED[where])
    ]
    assert bad == []


def test_every_client_side_module_is_classified() -> None:
    listed = {p for where in [*FORBIDDEN, *ALLOWED] for p in _files(where)}
    entry_points = {REPO / "gater/cli/__init__.py"}  # registers every command: it imports them all
    loose = [
        str(p.relative_to(REPO))
        for package in CLASSIFIED
        for p in _files(package)
        if p not in listed and p not in entry_points
    ]
    assert loose == []


def test_modules_stay_small() -> None:
    package = "gater"
    big = [f"{p.relative_to(REPO)}: {n} lines" for p in _files(package) if (n := len(p.read_text().splitlines())) > 600]
    assert big == []
