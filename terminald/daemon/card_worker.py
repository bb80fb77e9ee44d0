"""The card thread: holds the card across checks → PIN → verify, then unpowers it.

The event loop never touches the card. It asks this worker to ``checks()``,
``verify(pin)`` and ``end()``; jobs run in order on one thread, and results come back
as ``ChecksDone``/``VerifyDone`` events on the loop's queue. The held card connection
lives in an ExitStack, so ``end()``, ``stop()`` and every failure release it through
the reader's own context manager (SCARD_UNPOWER_CARD: a verified PIN never outlives
the transaction).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime

from terminald.card.connection import CountingConnection
from terminald.card.errors import CardError
from terminald.card.reader import CardReader
from terminald.core.auth import Authenticator, AuthResult, PinRequest, card_failure
from terminald.core.reasons import Reason
from terminald.core.terminal import ChecksDone, PinPrompt, VerifyDone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Checks:
    authenticator: Authenticator
    selection: str | None = None


@dataclass(frozen=True)
class _Verify:
    pin: str = field(repr=False)


@dataclass(frozen=True)
class _End:
    pass


@dataclass(frozen=True)
class _Stop:
    pass


_Job = _Checks | _Verify | _End | _Stop


@dataclass
class CardTiming:
    """Terminal + card time of the current transaction (the person's typing excluded)."""

    apdus: int = 0
    elapsed_ms: float = 0.0


class CardWorker:
    def __init__(
        self,
        reader: CardReader,
        post: Callable[[object], None],
        clock: Callable[[], datetime],
    ) -> None:
        self._reader = reader
        self._post = post
        self._clock = clock
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._held = ExitStack()
        self._connection: CountingConnection | None = None
        self._request: PinRequest | None = None
        self._authenticator: Authenticator | None = None
        self._busy_since: float | None = None
        self.timing = CardTiming()
        # Run on this thread before each card's checks (the daemon brings the revocation
        # data up to date there, so no decision starts on data older than the disk's).
        self.before_checks: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="card", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- what the loop asks (any thread) ---------------------------------------------------

    def checks(self, authenticator: Authenticator, selection: str | None = None) -> None:
        self._jobs.put(_Checks(authenticator, selection))

    def verify(self, pin: str) -> None:
        self._jobs.put(_Verify(pin))

    def end(self) -> None:
        self._jobs.put(_End())

    def stop(self, timeout: float = 5.0) -> None:
        self._jobs.put(_Stop())
        if self._thread.is_alive():
            self._thread.join(timeout)

    def busy_for(self, now: float) -> float:
        """Seconds the current job has been running (0 when idle): for the watchdog."""
        since = self._busy_since
        return 0.0 if since is None else now - since

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            self._busy_since = time.monotonic()
            try:
                if isinstance(job, _Stop):
                    self._release()
                    return
                if isinstance(job, _End):
                    self._release()
                elif isinstance(job, _Checks):
                    self._post(ChecksDone(self._checks(job.authenticator, job.selection)))
                else:
                    self._post(VerifyDone(self._verify(job.pin)))
            except Exception as exc:  # never leave the loop waiting, never keep the card
                logger.exception("card job failed")
                self._release()
                failed = AuthResult(Reason.CARD_ERROR, f"internal error: {type(exc).__name__}")
                if isinstance(job, _Checks):
                    self._post(ChecksDone(failed))
                elif isinstance(job, _Verify):
                    self._post(VerifyDone(failed))
            finally:
                self._busy_since = None

    def _release(self) -> None:
        self._request = None
        self._connection = None
        self._authenticator = None
        self._held.close()  # the reader's connect() context: disconnect + unpower

    def _checks(
        self, authenticator: Authenticator, selection: str | None
    ) -> AuthResult | PinPrompt:
        self._release()  # a new card: whatever was held is let go first
        if self.before_checks is not None:
            self.before_checks()
        self.timing = CardTiming()
        started = time.perf_counter()
        try:
            connection = self._held.enter_context(self._reader.connect())
            self._connection = CountingConnection(connection)
            step = authenticator.begin(self._connection, self._clock(), selection)
        except CardError as exc:
            self._release()
            return card_failure(exc)
        finally:
            self._account(started)
        if isinstance(step, AuthResult):
            return step
        self._request = step
        self._authenticator = authenticator
        return PinPrompt(step.identity, step.tries_left)

    def _verify(self, pin: str) -> AuthResult:
        request, authenticator = self._request, self._authenticator
        self._request = None
        if request is None or authenticator is None:
            return AuthResult(Reason.CARD_ERROR, "no card session to verify the PIN on")
        started = time.perf_counter()
        try:
            return authenticator.finish(request, pin, self._clock())
        finally:
            self._account(started)

    def _account(self, started: float) -> None:
        self.timing.elapsed_ms += (time.perf_counter() - started) * 1000
        self.timing.apdus = self._connection.apdus if self._connection else 0
