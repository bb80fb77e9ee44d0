"""Play timed output patterns (blinks, beeps, relay pulses) on one output, off the caller.

The core describes time as data; this is where the durations are slept. One player owns
one output. ``play`` cancels whatever was playing and returns at once; the steps run on a
short-lived thread that waits on an Event, so cancelling is immediate and an idle output
costs no CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class PatternPlayer(Generic[T]):
    def __init__(self, apply: Callable[[T], None], name: str) -> None:
        self._apply = apply
        self._name = name
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def set(self, value: T) -> None:
        """Cancel any pattern and apply ``value`` now."""
        with self._lock:
            self._stop_locked()
            self._apply(value)

    def play(self, steps: Sequence[tuple[T, int]], repeat: bool, final: T | None) -> None:
        """Apply each (value, ms) step for ms milliseconds; then ``final`` unless cancelled.

        A step of 0 ms applies its value and moves on. Without ``repeat`` and with
        ``final`` None, the last value stays.
        """
        with self._lock:
            self._stop_locked()
            if not repeat and all(ms == 0 for _, ms in steps):
                for value, _ in steps:
                    self._apply(value)
                if final is not None:
                    self._apply(final)
                return
            cancel = threading.Event()
            self._cancel = cancel
            self._thread = threading.Thread(
                target=self._run,
                args=(list(steps), repeat, final, cancel),
                name=f"terminald-{self._name}",
                daemon=True,
            )
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def wait_idle(self, timeout: float) -> bool:
        """Test and shutdown helper: wait for a non-repeating pattern to finish."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        return not t.is_alive()

    def _stop_locked(self) -> None:
        self._cancel.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()
        self._thread = None

    def _run(
        self, steps: list[tuple[T, int]], repeat: bool, final: T | None, cancel: threading.Event
    ) -> None:
        while True:
            for value, ms in steps:
                if cancel.is_set():
                    return
                self._apply(value)
                if ms and cancel.wait(ms / 1000):
                    return
            if not repeat:
                break
        if final is not None and not cancel.is_set():
            self._apply(final)
