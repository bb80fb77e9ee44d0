"""Test driver for the GPIO backend on gpiozero's MockFactory.

gpiozero's MockPin lets a test drive an input (``drive_low``/``drive_high``) and records
every level an output takes (``states``). A keypad matrix needs a little physics on top:
a pressed key connects its row to its column, so a column reads low only while a pressed
key's row is driven low. ``MockGpioDriver`` models that with a MockPin subclass on the
row pins, so the real scanner in ``gpio_keypad`` runs unchanged against it.

Used by the contract tests and by the daemon when ``gpio = "mock"`` (to type on the
keypad and flip door inputs from a UI). Never picked unless asked for by name.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from gpiozero.pins.mock import MockPin

from terminald.backends.pinmap import BoardPinMap, InputPin
from terminald.core.hardware import DoorInput


class _MatrixRowPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A row pin that tells the matrix whenever its level or direction changes."""

    matrix: _Matrix | None = None

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed and self.matrix is not None:
            self.matrix.update()
        return changed

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        if self.matrix is not None:
            self.matrix.update()


class _ContactPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """An input wired to a switch contact to GND: low while closed, else its pull."""

    closed = False

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        if self.closed:
            self.drive_low()

    def set_contact(self, closed: bool) -> None:
        self.closed = closed
        if self.function != "input":
            return
        if closed:
            self.drive_low()
        elif self.pull == "up":
            self.drive_high()
        elif self.pull == "down":
            self.drive_low()


class _Matrix:
    def __init__(self, factory: Any, rows: tuple[int, ...], cols: tuple[int, ...]) -> None:
        self._lock = threading.RLock()
        self._pressed: set[tuple[int, int]] = set()
        self._factory = factory
        self._cols = cols
        self._rows = [factory.pin(p, pin_class=_MatrixRowPin) for p in rows]
        for pin in self._rows:
            pin.matrix = self

    def set_key(self, rc: tuple[int, int], down: bool) -> None:
        with self._lock:
            if down:
                self._pressed.add(rc)
            else:
                self._pressed.discard(rc)
            self.update()

    def update(self) -> None:
        with self._lock:
            for c, col_pin_no in enumerate(self._cols):
                col = self._factory.pin(col_pin_no)
                if col.function != "input":
                    continue
                low = any(
                    (r, c) in self._pressed
                    and self._rows[r].function == "output"
                    and not self._rows[r].state
                    for r in range(len(self._rows))
                )
                if low:
                    col.drive_low()
                elif col.pull == "up":
                    col.drive_high()


class MockGpioDriver:
    """Press keys, flip inputs and read outputs of a GpioHardware built on MockFactory."""

    def __init__(self, factory: Any, pinmap: BoardPinMap) -> None:
        self.factory = factory
        self.pinmap = pinmap
        self._matrix = _Matrix(factory, pinmap.keypad.rows, pinmap.keypad.cols)
        self._keys = pinmap.keypad.keys
        self._inputs: dict[DoorInput, InputPin] = pinmap.inputs()
        # The terminal at rest: door shut, REX released, enclosure closed, no vend done.
        for spec in self._inputs.values():
            contact = factory.pin(spec.pin, pin_class=_ContactPin)
            contact.closed = not spec.active_low

    def pin(self, number: int) -> Any:
        """The MockPin behind BCM GPIO ``number``."""
        return self.factory.pin(number)

    def _rc(self, key: str) -> tuple[int, int]:
        if key not in self._keys:
            raise ValueError(f"no key {key!r} on a {self.pinmap.keypad.layout} keypad")
        i = self._keys.index(key)
        ncols = len(self.pinmap.keypad.cols)
        return i // ncols, i % ncols

    def press(self, key: str) -> None:
        self._matrix.set_key(self._rc(key), True)

    def release(self, key: str) -> None:
        self._matrix.set_key(self._rc(key), False)

    def set_input(self, which: DoorInput, active: bool) -> None:
        """Door open / REX pressed / tamper / vend complete when ``active``, honouring
        the pin's polarity. ValueError for an input the pin map does not have.

        The contact closes to GND when the pin should read low and opens otherwise, so
        the level follows the pull-up the adapter configured, as on the real board.
        """
        spec = self._inputs.get(which)
        if spec is None:
            raise ValueError(f"the {self.pinmap.board} pin map has no {which.value} input")
        self.factory.pin(spec.pin).set_contact(active == spec.active_low)

    def relay_pin(self) -> Any:
        return self.pin(self.pinmap.relay.pin)

    def relay_energised(self) -> bool:
        """From the electrical level, not from the adapter's idea of it."""
        return bool(self.relay_pin().state) == self.pinmap.relay.active_high

    def relay_mark(self) -> int:
        """A position in the relay pin's history, for :meth:`relay_pulses`."""
        return len(self.relay_pin().states)

    def relay_levels(self) -> list[bool]:
        """Every level the relay pin has taken since it was claimed, as energised or not."""
        active_high = self.pinmap.relay.active_high
        return [bool(s.state) == active_high for s in self.relay_pin().states]

    def relay_pulses(self, since: int = 0) -> list[float]:
        """Length (s) of each energised period that ended after ``relay_mark()`` was ``since``.

        MockPin records each change with the time since the previous one, so the entry
        that ends an energised period carries its length.
        """
        active_high = self.pinmap.relay.active_high
        states = self.relay_pin().states[max(since - 1, 0) :]
        return [
            s.timestamp
            for prev, s in itertools.pairwise(states)
            if bool(prev.state) == active_high and bool(s.state) != active_high
        ]

    def led_lit(self, color: str) -> bool:
        leds = self.pinmap.leds
        return bool(self.pin(leds.pins[color]).state) == leds.active_high

    def buzzer_on(self) -> bool:
        buzzer = self.pinmap.buzzer
        return bool(self.pin(buzzer.pin).state) == buzzer.active_high
