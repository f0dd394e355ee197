"""`gater` loads a command's module only when that command runs (gater/cli COMMANDS)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from gater.cli import COMMANDS
from gater.cli import main as gater_cli

GATER = [sys.executable, "-c", "from gater.cli import main; main()"]
# What a client command or the probe must not pay for at start.
HEAVY = ("gater.console", "gater.node", "gater.gateway", "gater.store", "prompt_toolkit", "cryptography")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_listed_command_loads_under_its_own_name(name: str) -> None:
    command = gater_cli.get_command(click.Context(gater_cli, info_name="gater"), name)
    assert command is not None and command.name == name


def test_an_unknown_command_is_a_usage_error_with_a_suggestion() -> None:
    done = subprocess.run([*GATER, "apend"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "No such command 'apend'" in done.stderr and "append" in done.stderr


def test_help_lists_every_command() -> None:
    done = subprocess.run([*GATER, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("argv", [["health", "--help"], ["append", "--help"], ["read", "--help"], ["status", "--help"]])
def test_a_client_command_or_the_probe_imports_no_server_console_or_store(argv: list[str]) -> None:
    script = (
        "import json, sys\n"
        "from gater.cli import main\n"
        f"sys.argv = ['gater', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == [], f"`gater {' '.join(argv)}` imported {loaded}"
