"""The daemon's last log lines, kept for a screen and a scenario's report (split from rig).

``LogTail`` is a logging handler keeping the last lines as ``HH:MM:SS event=... key=value``
(the real time: a scenario's ``clock`` step moves only the daemon's wall clock);
``capture_logging`` routes every line to one while the rig runs.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable

from terminald.daemon.logfmt import LogfmtFormatter


class LogTail(logging.Handler):
    """The last lines the daemon logged, as ``HH:MM:SS event=... key=value``."""

    def __init__(self, size: int = 200) -> None:
        super().__init__(logging.INFO)
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self._count = 0
        self._lock_lines = threading.Lock()
        self.setFormatter(LogfmtFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("terminald.sim") and record.levelno < logging.WARNING:
            return  # the virtual card's own chatter is not the terminal's log
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        line = re.sub(r"^level=info logger=\S+ ", "", line)
        line = re.sub(r"^level=(\w+) logger=\S+ ", lambda m: m.group(1).upper() + " ", line)
        # The screen is narrow: 8 hex digits tell the test roots apart (the journal keeps all).
        line = re.sub(r"issuer=([0-9a-f]{8})[0-9a-f]{8,}", r"issuer=\1..", line)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        with self._lock_lines:
            self._lines.append(f"{stamp} {line}")
            self._count += 1

    @property
    def count(self) -> int:
        """Lines logged so far (also those the tail no longer holds)."""
        return self._count

    def lines(self, last: int | None = None) -> list[str]:
        with self._lock_lines:
            lines = list(self._lines)
        return lines if last is None else lines[-last:] if last > 0 else []

    def since(self, count: int) -> list[str]:
        """The lines logged after ``count`` was read (as many as the tail still holds)."""
        with self._lock_lines:
            new = self._count - count
            return list(self._lines)[-new:] if new > 0 else []


def capture_logging(tail: LogTail) -> Callable[[], None]:
    """Send every log line to ``tail`` only; returns a function putting the old handlers back."""
    root = logging.getLogger()
    previous = list(root.handlers)
    level = root.level
    for handler in previous:
        root.removeHandler(handler)
    root.addHandler(tail)
    root.setLevel(logging.INFO)

    def restore() -> None:
        root.removeHandler(tail)
        for handler in previous:
            root.addHandler(handler)
        root.setLevel(level)

    return restore
