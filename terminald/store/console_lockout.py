"""The console's failed-login counts, per port, kept across restarts of the daemon.

``state/console-lockout.json``: ``{"version": 1, "ports": {"/dev/serial0": {"failures":
[t, ...], "locked_until": t}}}`` with wall-clock seconds. Written whole with
``atomic_write`` (a power cut leaves the old file or the new one). A file that cannot be
read or parsed is logged and taken as empty: only root can write the state directory,
and root can reset the counts anyway. Bounded: at most ``MAX_PORTS`` ports and
``max_failures`` times each are kept, and a larger file is not read.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any, Final

from terminald.console.lockout import PortRecord
from terminald.files import describe_error, read_limited
from terminald.store.atomic_file import atomic_write

LOCKOUT_NAME: Final = "console-lockout.json"
MAX_FILE: Final = 64 * 1024
MAX_PORTS: Final = 16
_KEEP_TIMES: Final = 32

logger = logging.getLogger("terminald.console")


class LockoutFile:
    """Thread-safe; ``load`` and ``save`` touch the file (never call them on the loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # What this process last knew per port: the file is read once per port, and a
        # file that cannot be written does not undo a count or a lock in this run.
        self._memory: dict[str, PortRecord] = {}

    def load(self, port: str) -> PortRecord:
        with self._lock:
            if port not in self._memory:
                self._memory[port] = _record(self._read().get(port))
            return self._memory[port]

    def save(self, port: str, record: PortRecord) -> None:
        """Raises OSError when the file cannot be written (the caller logs it; the
        record in memory still holds for this run)."""
        with self._lock:
            self._memory[port] = record
            ports = self._read()
            ports[port] = {
                "failures": list(record.failures[-_KEEP_TIMES:]),
                "locked_until": record.locked_until,
            }
            if len(ports) > MAX_PORTS:  # keep the port just written; drop others in file order
                for stale in list(ports)[: len(ports) - MAX_PORTS]:
                    if stale != port:
                        del ports[stale]
            data = json.dumps({"version": 1, "ports": ports}, sort_keys=True).encode()
            atomic_write(self.path, data + b"\n")

    def _read(self) -> dict[str, Any]:
        try:
            raw = read_limited(self.path, MAX_FILE)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            logger.error(
                "event=console_lockout_unreadable file=%s problem=%r",
                self.path,
                describe_error(exc),
            )
            return {}
        try:
            data = json.loads(raw)
            ports = data["ports"] if data.get("version") == 1 else None
            if not isinstance(ports, dict):
                raise ValueError("no version 1 ports table")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.error(
                "event=console_lockout_unreadable file=%s problem=%r", self.path, str(exc)[:80]
            )
            return {}
        return {str(k): v for k, v in list(ports.items())[:MAX_PORTS]}


def _record(entry: object) -> PortRecord:
    if not isinstance(entry, dict):
        return PortRecord()
    failures = entry.get("failures")
    times = tuple(
        float(t)
        for t in (failures if isinstance(failures, list) else [])[-_KEEP_TIMES:]
        if isinstance(t, int | float) and math.isfinite(t)
    )
    locked = entry.get("locked_until")
    until = float(locked) if isinstance(locked, int | float) and math.isfinite(locked) else 0.0
    return PortRecord(times, until)
