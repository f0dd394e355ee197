"""Real `gater` processes for multi-process and crash tests: start, wait until serving, kill."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

_SERVING = {role: re.compile(rf"{role} serving .*?address=(\S+)") for role in ("node", "gateway")}


class GaterProcess:
    """`gater <args>` as a subprocess; `address` is known once it logged that it serves."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = args
        self.cwd = cwd
        # `gater dev` logs its node first, then the gateway clients should use.
        self.role = "node" if args[0] == "node" else "gateway"
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.address = ""
        self.log: list[str] = []
        self._drain: asyncio.Task[None] | None = None
        self._new_line = asyncio.Condition()

    async def start(self, timeout_s: float = 30) -> str:
        if self.proc is not None and self.proc.returncode is None:
            # Starting it again would lose the running process, which then outlives the test.
            raise RuntimeError(f"gater {self.args[0]} runs already (pid {self.proc.pid}): kill it before starting it again")
        gater = Path(sys.executable).parent / "gater"
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("LOG_LEVEL", "INFO")
        self.proc = await asyncio.create_subprocess_exec(
            str(gater), *self.args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, cwd=self.cwd
        )
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = (await self.proc.stderr.readline()).decode()
                if not line:
                    raise RuntimeError("gater exited before serving:\n" + "".join(self.log))
                self.log.append(line)
                match = _SERVING[self.role].search(line)
                if match:
                    self.address = match.group(1)
                    break
        self._drain = asyncio.create_task(self._keep_reading())
        return self.address

    async def _keep_reading(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode())
            async with self._new_line:
                self._new_line.notify_all()

    async def logged(self, text: str, *, after: int = 0, timeout_s: float = 30) -> str:
        """The first log line from index `after` on that contains `text`, once it is written."""
        async with asyncio.timeout(timeout_s), self._new_line:
            while True:
                found = [line for line in self.log[after:] if text in line]
                if found:
                    return found[0]
                await self._new_line.wait()

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        await self._stop_draining()

    async def _stop_draining(self) -> None:
        # Children of a killed process may still hold its stderr open: read what is there
        # for a moment, then stop waiting for the end of it.
        if self._drain is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._drain), 2)
            except TimeoutError:
                self._drain.cancel()

    async def terminate(self) -> int:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.proc.wait()
        await self._stop_draining()
        assert self.proc is not None
        return self.proc.returncode or 0

    async def __aenter__(self) -> GaterProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()
        if exc[0] is not None:
            # The process's log helps more than the client's view of a failure.
            print(f"--- log of gater {' '.join(self.args)} ---\n{''.join(self.log)}")
