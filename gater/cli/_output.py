"""How the CLI's client commands print: JSON lines or rich tables, errors, exit codes, progress.

Owns: the exit codes (0 ok, 1 usage or bad input, 2 not found, 3 wrong expected version,
4 unavailable, 5 other server errors, 6 refused: no valid credential or not allowed, 130
interrupted), `exit_code_for`, `hint_for` (what to pass when refused), and `Output` — JSON
lines when stdout is not a terminal (or with --json), rich tables when it is, errors on
stderr, and a progress bar that never shares a line with what is printed.
Must not import anything from gater but gater.client and gater.errors.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import (
    AppendConditionFailedError,
    DeadlineExceededError,
    GaterError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StreamDeletedError,
    UnauthenticatedError,
    UnavailableError,
    WrongExpectedVersionError,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_HELP",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_SERVER",
    "EXIT_UNAVAILABLE",
    "EXIT_WRONG_VERSION",
    "Output",
    "cell",
    "exit_code_for",
    "hint_for",
]

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_NOT_FOUND = 2
EXIT_WRONG_VERSION = 3
EXIT_UNAVAILABLE = 4
EXIT_SERVER = 5
EXIT_REFUSED = 6
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_BAD_INPUT: "usage or bad input",
    EXIT_NOT_FOUND: "not found (store, stream, event, snapshot, subscription)",
    EXIT_WRONG_VERSION: "wrong expected version, a failed append condition, or a tombstoned stream",
    EXIT_UNAVAILABLE: "unavailable: cannot connect, no healthy node, or deadline exceeded",
    EXIT_SERVER: "other server error",
    EXIT_REFUSED: "refused: no valid credential (UNAUTHENTICATED) or not allowed (PERMISSION_DENIED)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:<3} {what}" for code, what in EXIT_CODES.items())


def exit_code_for(error: GaterError) -> int:
    if isinstance(error, InvalidArgumentError):
        return EXIT_BAD_INPUT
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, WrongExpectedVersionError | AppendConditionFailedError | StreamDeletedError):
        return EXIT_WRONG_VERSION
    if isinstance(error, UnavailableError | DeadlineExceededError):
        return EXIT_UNAVAILABLE
    if isinstance(error, UnauthenticatedError | PermissionDeniedError):
        return EXIT_REFUSED
    return EXIT_SERVER


def hint_for(error: GaterError) -> str | None:
    """What to do about a refusal: which credential to pass."""
    if isinstance(error, UnauthenticatedError):
        return ("pass a credential the server accepts: an API key with --api-key or GATER_API_KEY, a bearer token "
                "with --token or GATER_TOKEN, or a client certificate with --cert-file/--key-file")  # fmt: skip
    if isinstance(error, PermissionDeniedError):
        return ("the credential is valid but its roles do not allow this: call with another --api-key/--token, "
                "or ask the operator for a role that does (the server's --policy file)")  # fmt: skip
    return None


# -- output ----------------------------------------------------------------------------------------


class Output:
    """JSON lines (scripts) or rich tables (people), and errors on stderr."""

    def __init__(self, json_mode: bool) -> None:
        self.json = json_mode
        self._console: Any = None
        self._err: Any = None

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    @property
    def err(self) -> Any:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    def line(self, record: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def records(self, rows: list[dict[str, Any]], title: str, columns: list[str] | None = None) -> None:
        if self.json:
            for row in rows:
                self.line(row)
            return
        from rich.table import Table

        columns = columns or (list(rows[0]) if rows else [])
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(cell(row.get(c)) for c in columns))
        self.console.print(table)

    def record(self, row: dict[str, Any], title: str) -> None:
        if self.json:
            self.line(row)
            return
        from rich.table import Table

        table = Table("field", "value", title=title, show_header=False)
        for key, value in row.items():
            table.add_row(key, cell(value))
        self.console.print(table)

    def note(self, message: str) -> None:
        """A remark for a person: stderr, so stdout stays data."""
        if not self.json:
            self.err.print(message)

    def error(self, e: GaterError) -> None:
        code = exit_code_for(e)
        if self.json:
            record: dict[str, Any] = {"error": e.code, "message": e.message, "exit_code": code}
            if isinstance(e, WrongExpectedVersionError):
                record["current_version"] = e.current_version
            if hint_for(e):
                record["hint"] = hint_for(e)
            if isinstance(e, AppendConditionFailedError):
                record["conflicting_position"], record["head"] = e.conflicting_position, e.head
            sys.stderr.write(json.dumps(record) + "\n")
        else:
            click.echo(f"gater: {e.code}: {e.message}", err=True)
            if hint_for(e):
                click.echo(f"gater: {hint_for(e)}", err=True)

    def progress(self, description: str, total: int | None) -> Any:
        """A rich progress bar that goes away when done: a no-op unless stdout or stderr is a
        terminal. When stdout is one, the bar is drawn by the console results are printed
        with, so rich prints each result above the bar (and JSON lines written to stdout
        meanwhile, through its stdout redirection) instead of on the bar's line; when only
        stderr is a terminal, the bar is there and the results go to a pipe or file."""
        if sys.stdout.isatty():
            console = self.console
        elif sys.stderr.isatty():
            console = self.err
        else:
            return _NoProgress()
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=True)  # fmt: skip
        return _Bar(progress, description, total)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class _Bar:
    def __init__(self, progress: Any, description: str, total: int | None) -> None:
        self.progress = progress
        self.task = progress.add_task(description, total=total)

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)

