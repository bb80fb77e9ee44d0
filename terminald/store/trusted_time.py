"""The newest signed time the terminal has held, kept across restarts.

One small JSON file in the state directory, replaced atomically::

    {"at": "2026-11-30T05:00:00Z", "source": "revocation bundle version 12"}

It only moves forward. Deleting or replacing the revocation state file (or installing
an older one by hand) therefore cannot take the terminal's idea of "now" back with it.
A missing file is a fresh terminal (the build's epoch); a file that cannot be read or
parsed is reported in ``problem`` and the build's epoch is used, so the terminal still
refuses clocks before its build and learns the time again from the next signed data.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Final

from terminald.core.trusted_time import EPOCH, SignedTime, newest
from terminald.files import describe_error, read_limited
from terminald.store.atomic_file import atomic_write

log = logging.getLogger(__name__)

TRUSTED_TIME_NAME: Final = "trusted-time"
_MAX_SIZE: Final = 4096  # the file is ~80 bytes; anything larger is not ours


class TrustedTimeFile:
    """``floor`` is read from memory (any thread); ``advance`` writes (not on the loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.problem = ""
        self._floor = self._read()

    @property
    def floor(self) -> SignedTime:
        return self._floor

    def _read(self) -> SignedTime:
        try:
            data = read_limited(self.path, _MAX_SIZE)  # never blocks on a FIFO, never huge
        except FileNotFoundError:
            return EPOCH
        except OSError as exc:
            return self._unusable(f"{self.path} is not a time: {describe_error(exc)}")
        try:
            raw = json.loads(data)
            at = datetime.fromisoformat(raw["at"])
            source = str(raw["source"])
            return SignedTime(at, source)
        except (ValueError, TypeError, KeyError) as exc:
            return self._unusable(f"{self.path} is not a trusted-time file ({exc})")

    def _unusable(self, problem: str) -> SignedTime:
        self.problem = problem
        log.error("%s; trusted time falls back to the build's epoch", problem)
        return EPOCH

    def advance(self, moment: SignedTime) -> bool:
        """Keep ``moment`` if it is newer; durable when this returns True.

        Raises ``OSError`` when the file cannot be written (the floor in memory still
        advances: this run keeps refusing clocks behind it).
        """
        with self._lock:
            if moment.at <= self._floor.at:
                return False
            self._floor = newest(self._floor, moment)
            record = {"at": moment.at.isoformat(), "source": moment.source}
            atomic_write(self.path, json.dumps(record).encode() + b"\n")
            self.problem = ""
            return True
