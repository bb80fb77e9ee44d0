"""gpiozero's lgpio pin factory, with outputs claimed at their first level.

gpiozero 2.0's ``LGPIOPin`` does not override ``Pin.output_with_state``, so an
``OutputDevice(initial_value=...)`` becomes ``gpio_claim_output(handle, gpio)`` --
lgpio's default ``level=0`` -- followed by ``gpio_write(level)``. On an active-low relay
(off = high) the line is low, the relay energised, between the two calls: at every
start and at every ``terminald relay-safe``. lgpio's ``gpio_claim_output(handle, gpio,
level=0, lFlags=0)`` takes the level to claim at (abyz.me.uk/lg/py_lgpio.html
#gpio_claim_output), so the override claims at the wanted level in one call, which is
what gpiozero's docstring of ``output_with_state`` says descendants may do "for avoiding
blips in active-low configurations".

Imported only when the "lgpio" backend is asked for: lgpio exists only on a Pi.
"""

from __future__ import annotations

from typing import Any

import lgpio
from gpiozero.pins.lgpio import LGPIOFactory, LGPIOPin


class SafeLGPIOPin(LGPIOPin):  # type: ignore[misc]  # gpiozero is untyped
    def output_with_state(self, state: Any) -> None:
        if self._pwm:  # PWM outputs keep gpiozero's path (never the relay)
            super().output_with_state(state)
            return
        callback: Any = getattr(self, "_callback", None)
        if callback is not None:  # as LGPIOPin._set_function does
            callback.cancel()
            self._callback = None
        lgpio.gpio_claim_output(self.factory._handle, self._number, int(bool(state)))


class SafeLGPIOFactory(LGPIOFactory):  # type: ignore[misc]
    def __init__(self, chip: int | None = None) -> None:
        super().__init__(chip=chip)
        self.pin_class = SafeLGPIOPin
