"""Keeps the running daemon deciding on the revocation data that is installed.

``terminald revocation apply`` (and later the serial link) replaces the state file
from another process. The daemon picks it up two ways, both off the event loop:

* a watcher thread ``stat``s the file every :data:`POLL_S` and, when it changed, loads,
  verifies and replays it into a new view, then swaps it in (``RevocationStore.refresh``);
* the card worker asks the same question before every card's checks, so a decision
  never starts on data older than what is on disk: if the watcher is still loading,
  the worker waits for that load (on its own thread), not the loop.

A file that fails to load leaves the installed data in force and is logged once. Every
signed time seen (the installed data's issue time) advances the persisted trusted time
(``terminald.store.trusted_time``), also off the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from terminald.core.trusted_time import EPOCH, SignedTime, newest
from terminald.store.revocation_store import Refreshed, RevocationStore
from terminald.store.trusted_time import TrustedTimeFile

logger = logging.getLogger(__name__)

POLL_S = 0.25  # one stat(2) per poll: microseconds, so a short period costs nothing


@dataclass(frozen=True, slots=True)
class RevocationPicked:
    """Loop event: the watcher or the worker found a new state file (installed or not)."""

    outcome: Refreshed


@dataclass(frozen=True, slots=True)
class TrustedTimeProblem:
    """Loop event: the trusted time could not be kept on disk (it still holds in memory)."""

    problem: str


def signed_floor(trusted: TrustedTimeFile | None, store: RevocationStore | None) -> SignedTime:
    """The newest signed time held, from memory only: the authentication's clock floor."""
    persisted = trusted.floor if trusted is not None else EPOCH
    return newest(persisted, store.signed_time if store is not None else None)


class LiveRevocation:
    """``poll`` from any thread but the loop (it may read and load the state file)."""

    def __init__(
        self,
        store_of: Callable[[], RevocationStore | None],
        trusted: TrustedTimeFile | None,
        post: Callable[[object], None],
        poll_s: float = POLL_S,
    ) -> None:
        self._store_of = store_of
        self._trusted = trusted
        self._post = post
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._write_failed = False
        self._thread = threading.Thread(target=self._run, name="revocation", daemon=True)

    def poll(self) -> None:
        store = self._store_of()
        if store is None:
            return
        outcome = store.refresh()
        if outcome is not None:
            self._post(RevocationPicked(outcome))
        self._keep_signed_time(store)

    def _keep_signed_time(self, store: RevocationStore) -> None:
        signed = store.signed_time
        if self._trusted is None or signed is None:
            return
        try:
            self._trusted.advance(signed)
        except OSError as exc:
            if not self._write_failed:
                self._post(TrustedTimeProblem(f"cannot write {self._trusted.path}: {exc}"))
            self._write_failed = True
        else:
            self._write_failed = False

    # -- the watcher thread ------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a bug here must not end the watching
                logger.exception("revocation watch failed")
            self._stop.wait(self._poll_s)
