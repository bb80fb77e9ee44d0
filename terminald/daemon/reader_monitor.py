"""The reader thread: turns card presence on the PC/SC reader(s) into loop events.

With ``card.reader`` unset the reader object watches every reader pcscd lists and
reports one card at a time (backends/pcsc.py): ``CardArrived`` for the first card seen,
``CardLeft`` when that card leaves; a card in another reader meanwhile waits its turn.

It has its own reader object, so its own PC/SC context: pcsc-lite serialises the
calls on one context, and a status wait on the card worker's context would hold up
its APDUs. Each wait lasts at most ``slice_s``; every pass stamps ``beat``, which the
watchdog reads: a monitor stuck inside pcscd stops beating, and systemd restarts us.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from terminald.core.terminal import CardArrived, CardLeft

logger = logging.getLogger(__name__)

_ERROR_PAUSE_S = 1.0


class PresenceReader(Protocol):
    @property
    def name(self) -> str: ...

    def wait_for_card(self, timeout: float) -> bool: ...

    def wait_for_removal(self, timeout: float) -> bool: ...

    def close(self) -> None: ...

    @property
    def problem(self) -> str | None:
        """Why the last wait could not watch the reader; None when it could."""
        ...


class ReaderMonitor:
    def __init__(
        self, reader: PresenceReader, post: Callable[[object], None], slice_s: float = 1.0
    ) -> None:
        self._reader = reader
        self._post = post
        self._slice = slice_s
        self._stopping = threading.Event()
        self.beat = time.monotonic()
        self.present = False
        self._thread = threading.Thread(target=self._run, name="reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._reader.close()

    @property
    def problem(self) -> str | None:
        return self._reader.problem

    def silent_for(self, now: float) -> float:
        return now - self.beat if self._thread.is_alive() else float("inf")

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.beat = time.monotonic()
            try:
                if not self.present:
                    if self._reader.wait_for_card(self._slice):
                        self.present = True
                        logger.debug("card in %s", self._reader.name)
                        self._post(CardArrived())
                elif self._reader.wait_for_removal(self._slice):
                    self.present = False
                    self._post(CardLeft())
            except Exception:  # pcscd trouble is retried inside the reader; anything else here
                logger.exception("reader monitor: unexpected error, retrying")
                self._stopping.wait(_ERROR_PAUSE_S)
