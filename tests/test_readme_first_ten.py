"""The README's "first ten minutes": its Python example and its shell commands, run as printed
against `gater dev`, in order, and compared with the output the README shows (ids, times and
random greenhouse values aside). The console part is covered by tests/console."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.procs import GaterProcess

README_ADDRESS = "127.0.0.1:50051"


def test_the_readme_says_how_a_new_shell_finds_gater_and_grpcurl() -> None:
    text = (REPO / "README.md").read_text()
    steps = text[text.index("## The first ten minutes") : text.index("### From Python")]
    (line,) = [line for line in steps.splitlines() if line.startswith("source ")]
    command = line.split("#")[0].strip()
    # A new shell in the repository: a bare PATH, then the README's line.
    done = subprocess.run(
        ["bash", "-c", f"{command} && command -v gater grpcurl"],
        cwd=REPO, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    bin_dir = REPO / ".venv" / "bin"
    assert done.returncode == 0 and done.stdout.split() == [str(bin_dir / "gater"), str(bin_dir / "grpcurl")], done


def section() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("## The first ten minutes") : text.index("## A walkthrough with grpcurl")]


def fenced(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M)


def blocks(kind: str, text: str) -> list[str]:
    return [body for lang, body in fenced(text) if lang == kind]


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


VARYING = re.compile(r'"(event_id|created|created_at|data|event_type)": ("[^"]*"|\{[^}]*\})')


def comparable(line: str) -> str:
    return VARYING.sub(r'"\1": …', line)


async def test_first_ten_minutes_run_as_printed(tmp_path: Path) -> None:
    text = section()
    python_code = blocks("python", text)[0]
    all_blocks = fenced(text)
    after_python = next(i for i, (lang, _) in enumerate(all_blocks) if lang == "python") + 1
    printed = all_blocks[after_python][1].strip().splitlines()  # the Python example's output
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    async with GaterProcess("dev", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")) as dev:
        env["GATER_ADDR"] = dev.address
        script = tmp_path / "example.py"
        script.write_text(python_code.replace(README_ADDRESS, dev.address))
        code, out = await run([sys.executable, str(script)], env)
        assert code == 0, out
        assert out.strip().splitlines() == printed

        shell = blocks("sh", text)
        commands = [line[2:] for block in shell for line in block.splitlines() if line.startswith("$ ")]
        expected = {}
        for block in shell:
            current = None
            for line in block.splitlines():
                if line.startswith("$ "):
                    current = line[2:]
                    expected[current] = []
                elif current is not None:
                    expected[current].append(line)
        assert len(commands) >= 6
        for command in commands:
            code, out = await run(["bash", "-c", command], env)
            got = out.strip().splitlines()
            want = expected[command]
            if "--generate" in command or "subscribe" in command:
                # Random greenhouse events: the same number of lines, the same fields.
                assert len(got) == len(want), (command, out)
                if "--generate" in command:
                    assert [comparable(g) for g in got] == [comparable(w) for w in want], command
                else:
                    assert all(g.startswith('{"stream_id": "greenhouse') for g in got), out
                continue
            assert [comparable(g) for g in got] == [comparable(w) for w in want], (command, out)
            if "exit code" in command:
                json.loads(got[0])  # errors are JSON when piped
