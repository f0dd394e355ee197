"""The client's dependency rule: client.py on generated stubs, grpc, protobuf, gater.errors
and gater.ids only; the CLI client commands and the console on gater.client/errors/config (and each other)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_layers import imports_of

ALLOWED = {
    "gater/client": ("gater.client", "gater.errors", "gater.ids"),
    "gater/_cli_client.py": ("gater.client", "gater.errors", "gater.config", "gater.console"),
    "gater/console": ("gater.client", "gater.errors", "gater.config", "gater.console"),
}


@pytest.mark.parametrize("where", sorted(ALLOWED))
def test_client_side_imports_only_what_it_may(where: str) -> None:
    target = REPO / where
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    bad = [
        f"{f.relative_to(REPO)} imports {name}"
        for f in files
        for name in imports_of(f)
        if (name == "gater" or name.startswith("gater."))
        and not any(name == a or name.startswith(a + ".") for a in ALLOWED[where])
    ]
    assert bad == []
