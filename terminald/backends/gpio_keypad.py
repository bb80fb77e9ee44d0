"""A matrix keypad scanned through gpiozero, debounced by a stable count, idle at 0 % CPU.

Rows are outputs, columns inputs with pull-ups; a pressed key joins its row and column.
While no key is down every row is driven low, so any press pulls a column low and the
column's edge callback wakes the scanner thread: an idle keypad costs no CPU (the daemon's
idle budget is 1 %). While keys are down the thread scans every ``scan_ms``: it drives one
row low at a time (the others high) and reads the columns. ``MatrixDebouncer`` turns the
raw scans into key presses: a key counts as down, or up again, only after its reading has
held for ``ceil(debounce_ms / scan_ms)`` consecutive scans, so contact bounce shorter than
``debounce_ms`` gives exactly one press.

Wiring: put a 1 kOhm resistor (or a Schottky diode, cathode to the Pi) in each row line,
so two keys pressed in one column cannot short a high row to a low one (hw/README.md).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from typing import Any

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from terminald.backends.pinmap import KeypadPins
from terminald.core.hardware import KeyHandler, KeyPressed

logger = logging.getLogger(__name__)


class MatrixDebouncer:
    """Pure: raw scans in (the set of keys read as down), debounced presses out."""

    def __init__(self, keys: Iterable[str], stable_scans: int) -> None:
        if stable_scans < 1:
            raise ValueError("stable_scans must be >= 1")
        self._need = stable_scans
        self._down = dict.fromkeys(keys, False)
        self._count = dict.fromkeys(self._down, 0)

    @property
    def idle(self) -> bool:
        """No key debounced down and none on its way to changing."""
        return not any(self._down.values()) and not any(self._count.values())

    def feed(self, raw_down: set[str]) -> list[str]:
        pressed: list[str] = []
        for key, was_down in self._down.items():
            if (key in raw_down) == was_down:
                self._count[key] = 0
                continue
            self._count[key] += 1
            if self._count[key] >= self._need:
                self._down[key] = not was_down
                self._count[key] = 0
                if not was_down:
                    pressed.append(key)
        return pressed


class GpioKeypad:
    def __init__(self, spec: KeypadPins, factory: Any) -> None:
        self._keys = spec.keys
        self._ncols = len(spec.cols)
        self._scan_s = spec.scan_ms / 1000
        self._debouncer = MatrixDebouncer(self._keys, math.ceil(spec.debounce_ms / spec.scan_ms))
        self._handler: KeyHandler | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._rows: list[Any] = []
        self._cols: list[Any] = []
        try:
            # active_high=False: "on" drives the row low, i.e. selects it. All rows start
            # selected, the idle state in which any key press pulls its column low.
            for pin in spec.rows:
                self._rows.append(
                    DigitalOutputDevice(
                        pin, active_high=False, initial_value=True, pin_factory=factory
                    )
                )
            for pin in spec.cols:
                col = DigitalInputDevice(pin, pull_up=True, pin_factory=factory)
                col.when_activated = self._wake.set
                self._cols.append(col)
        except Exception:
            self._close_devices()
            raise
        self._thread = threading.Thread(target=self._run, name="terminald-keypad", daemon=True)
        self._thread.start()

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    def set_handler(self, handler: KeyHandler | None) -> None:
        self._handler = handler

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._close_devices()

    def _close_devices(self) -> None:
        for dev in self._cols + self._rows:
            dev.close()

    def _select(self, row: int | None) -> None:
        """Drive row ``row`` low and the others high; None selects every row."""
        for i, dev in enumerate(self._rows):
            if row is not None and i != row:
                dev.off()
        for i, dev in enumerate(self._rows):
            if row is None or i == row:
                dev.on()

    def _scan(self) -> set[str]:
        down: set[str] = set()
        for r in range(len(self._rows)):
            self._select(r)
            for c, col in enumerate(self._cols):
                if col.is_active:
                    down.add(self._keys[r * self._ncols + c])
        return down

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._select(None)
                self._wake.clear()
                if self._debouncer.idle and not any(c.is_active for c in self._cols):
                    self._wake.wait()
                    continue
                for key in self._debouncer.feed(self._scan()):
                    self._deliver(KeyPressed(key))
                self._stop.wait(self._scan_s)
        except Exception:  # a dead scanner must be visible to the daemon's health check
            logger.exception("keypad scanner stopped")
            raise

    def _deliver(self, event: KeyPressed) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            handler(event)
        except Exception:  # a faulty handler must not stop the scanner
            logger.exception("key handler failed")

    @property
    def healthy(self) -> bool:
        """False once the scanner thread has died (the daemon stops feeding the watchdog)."""
        return self._thread.is_alive() or self._stop.is_set()
