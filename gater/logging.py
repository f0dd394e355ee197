"""Log setup for the entry points: readable key=value lines (or JSON lines) on stderr.

Owns: `configure(level, fmt, color)` and the two formatters. Only the CLI calls it; modules
just use logging.getLogger(__name__) and pass context as `extra={...}`.
Must not import anything from gater.

Text lines keep the seed's themed components: on a terminal, each line's component (the
logger's name without "gater.") is coloured by the part of the system it belongs to — node,
store, subscriptions, gateway, discovery, the access log — and its level by severity, so a
reader follows one component down a busy log. JSON lines carry RFC 3339 timestamps (UTC,
microseconds) so log pipelines parse them without guessing.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time

__all__ = ["configure", "rfc3339"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# The themes: ANSI SGR colours per component (longest prefix wins) and per level.
_COMPONENTS = (
    ("gater.access", "2;36"),  # dim cyan: one line per call
    ("gater.node", "32"),  # green
    ("gater.store", "34"),  # blue
    ("gater.subscriptions", "35"),  # magenta
    ("gater.gateway.discovery", "33"),  # yellow
    ("gater.gateway", "36"),  # cyan
    ("gater.consul", "33"),
    ("gater.security", "31"),  # red
    ("gater", "1"),  # bold: the entry point
)
_LEVELS = {"DEBUG": "2", "INFO": "", "WARNING": "1;33", "ERROR": "1;31", "CRITICAL": "1;37;41"}


def rfc3339(created: float) -> str:
    """A log record's time as RFC 3339 in UTC with microseconds: 2026-11-30T11:57:48.123456Z."""
    stamp = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _paint(text: str, sgr: str) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m" if sgr else text


class _TextFormatter(logging.Formatter):
    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        stamp = (
            time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        )
        component = record.name.removeprefix("gater.") if record.name != "gater" else "gater"
        level = f"{record.levelname:<7}"
        if self.color:
            theme = next(
                (
                    sgr
                    for prefix, sgr in _COMPONENTS
                    if record.name == prefix or record.name.startswith(prefix + ".")
                ),
                "",
            )
            component = _paint(component, theme)
            level = _paint(level, _LEVELS.get(record.levelname, ""))
        parts = [stamp, level, f"{component}:", record.getMessage()]
        parts += [f"{k}={v}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(
            {
                k: v if isinstance(v, int | float | bool | str) or v is None else str(v)
                for k, v in _fields(record).items()
            }
        )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(level: str = "INFO", fmt: str = "text", color: bool = False) -> None:
    """Sends logs to stderr; `fmt` is "text" or "json"; text is themed when `color` (the CLI
    says so on a terminal, unless NO_COLOR is set)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter(color))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
