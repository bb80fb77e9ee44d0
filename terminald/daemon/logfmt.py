"""Structured log lines for journald: ``event=verdict reason=pin_wrong serial=4660 ...``.

One line per event, ``key=value`` pairs (logfmt), values quoted when they hold spaces,
so ``journalctl -u terminald | grep reason=`` and log shippers both work. The daemon
passes fields explicitly; nothing that can hold a PIN is ever a field.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

_BARE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/+@")


def quote(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text and all(c in _BARE for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def fields(**values: object) -> str:
    return " ".join(f"{k}={quote(v)}" for k, v in values.items() if v is not None)


def log_event(logger: logging.Logger, level: int, event: str, **values: object) -> None:
    logger.log(level, "%s", fields(event=event, **values))


class LogfmtFormatter(logging.Formatter):
    """``level=info logger=terminald.daemon event=...``; journald adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        head = fields(level=record.levelname.lower(), logger=record.name)
        message = record.getMessage()
        if not message.startswith("event="):
            message = fields(msg=message)
        line = f"{head} {message}"
        if record.exc_info:
            line += " " + fields(exc=self.formatException(record.exc_info))
        return line


def configure_daemon_logging(level: str, stream: TextIO = sys.stderr) -> None:
    """Replace the root handlers with one logfmt handler on ``stream`` (stderr: journald)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


def set_level(configured: str, floor: int | None = None) -> None:
    """The configured level, or a more verbose one from the command line (``-v``)."""
    level = logging.getLevelName(configured.upper())
    logging.getLogger().setLevel(min(level, floor) if floor is not None else level)
