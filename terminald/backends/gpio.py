"""gpiozero adapters for the terminal's keypad, LEDs, buzzer, lock relay and door inputs.

Every device is built with an explicit ``pin_factory=``; nothing here reads or assigns
gpiozero's global ``Device.pin_factory``. The factory is chosen by name
(``open_gpio(pinmap, "mock")``): ``"mock"`` is gpiozero's own MockFactory, with the
test driver of ``gpio_mock`` attached; ``"lgpio"``, ``"rpigpio"``, ``"pigpio"`` and
``"native"`` are the real ones, imported only when asked for. The mock is never a
fallback.

The relay is built de-energised (``initial_value=False``) and ``close()`` de-energises
it before the pin is released, for active-high and active-low drive alike. On lgpio the
line is claimed at that level in one call (``gpio_lgpio``): gpiozero's own LGPIOPin
claims every output at level 0 and then writes, which pulses an active-low relay.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gpiozero import LED, DigitalInputDevice, OutputDevice
from gpiozero import Buzzer as _GzBuzzer

from terminald.backends.gpio_keypad import GpioKeypad
from terminald.backends.gpio_mock import MockGpioDriver
from terminald.backends.gpio_player import PatternPlayer
from terminald.backends.pinmap import BoardPinMap, InputPin, LedPins, load_board
from terminald.core.hardware import (
    BeepPattern,
    Color,
    DoorInput,
    DoorState,
    InputChanged,
    InputHandler,
    LightPattern,
)

logger = logging.getLogger(__name__)

# name -> (module, class). Real factories are imported lazily: lgpio and friends exist
# only on a Pi, and the mock must never be picked by default.
FACTORIES: dict[str, tuple[str, str]] = {
    "mock": ("gpiozero.pins.mock", "MockFactory"),
    # gpiozero's LGPIOFactory with its outputs claimed at their first level (below).
    "lgpio": ("terminald.backends.gpio_lgpio", "SafeLGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


class GpioBackendError(RuntimeError):
    """The GPIO backend cannot start: unknown factory, library missing, no access."""


# Factories whose pins switch a line to output before its level is set (gpiozero 2.0:
# NativePin and PiGPIOPin have no output_with_state, so the line drives whatever its
# output latch held). Harmless for an active-high relay only if that latch is low, so an
# active-low relay is refused on them. lgpio is fixed in gpio_lgpio; RPi.GPIO's
# GPIO.setup(..., initial=) sets the level with the direction.
_CLAIM_THEN_WRITE = {"native", "pigpio"}


def _check_relay_claim(pinmap: BoardPinMap, backend: str) -> None:
    if backend in _CLAIM_THEN_WRITE and not pinmap.relay.active_high:
        raise GpioBackendError(
            f"gpio backend {backend!r} makes a pin an output before setting its level, "
            f"which would energise the active-low relay on GPIO {pinmap.relay.pin} for a "
            f'moment; use backend "lgpio" (or "rpigpio"), or an active-high relay'
        )


def make_pin_factory(name: str, pinmap: BoardPinMap) -> Any:
    """Build the gpiozero pin factory called ``name`` for the board of ``pinmap``."""
    if name not in FACTORIES:
        raise GpioBackendError(
            f"unknown gpio backend {name!r}; choose one of {', '.join(FACTORIES)}"
        )
    module_name, class_name = FACTORIES[name]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        if name == "mock":
            return cls(revision=pinmap.mock_revision)
        if name == "lgpio" and pinmap.gpiochip is not None:
            return cls(chip=pinmap.gpiochip)
        return cls()
    except GpioBackendError:
        raise
    except Exception as e:  # ImportError, OSError (no /dev/gpiochip access), lgpio.error
        raise GpioBackendError(f"gpio backend {name!r} is unavailable: {e}") from e


class GpioRelay:
    """The lock relay on an ``OutputDevice``; energised = door released."""

    def __init__(self, pin: int, active_high: bool, lock: str, factory: Any) -> None:
        self.lock = lock
        self._device = OutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=factory
        )
        self._player: PatternPlayer[bool] = PatternPlayer(self._write, f"relay-{pin}")

    def _write(self, on: bool) -> None:
        if on:
            self._device.on()
        else:
            self._device.off()

    @property
    def energised(self) -> bool:
        return bool(self._device.value)

    def pulse(self, ms: int) -> None:
        if ms <= 0:
            raise ValueError(f"relay pulse must be > 0 ms, got {ms}")
        self._player.play([(True, ms)], repeat=False, final=False)

    def energise(self) -> None:
        self._player.set(True)

    def de_energise(self) -> None:
        self._player.set(False)

    def wait_idle(self, timeout: float) -> bool:
        return self._player.wait_idle(timeout)

    def close(self) -> None:
        if self._device.closed:
            return
        self._player.set(False)
        self._device.close()


class GpioIndicator:
    """Status LEDs: discrete green/red/amber, or one RGB LED (amber = red + green)."""

    def __init__(self, leds: LedPins, factory: Any) -> None:
        self._leds = {
            color: LED(pin, active_high=leds.active_high, initial_value=False, pin_factory=factory)
            for color, pin in leds.pins.items()
        }
        self._lit: dict[Color, set[str]]
        if leds.kind == "rgb":
            self._lit = {
                Color.OFF: set(),
                Color.GREEN: {"green"},
                Color.RED: {"red"},
                Color.AMBER: {"red", "green"},
            }
        else:
            self._lit = {Color.OFF: set(), **{Color(c): {c} for c in ("green", "red", "amber")}}
        self.color = Color.OFF
        self._player: PatternPlayer[Color] = PatternPlayer(self._apply, "leds")

    def _apply(self, color: Color) -> None:
        lit = self._lit[color]
        for name, led in self._leds.items():
            led.value = name in lit
        self.color = color

    def show(self, pattern: LightPattern) -> None:
        self._player.play(
            [(s.color, s.ms) for s in pattern.steps], repeat=pattern.repeat, final=None
        )

    def close(self) -> None:
        if all(led.closed for led in self._leds.values()):
            return
        self._player.set(Color.OFF)
        for led in self._leds.values():
            led.close()


class GpioBuzzer:
    """An active (self-oscillating) buzzer switched on and off by the pattern."""

    def __init__(self, pin: int, active_high: bool, factory: Any) -> None:
        self._device = _GzBuzzer(
            pin, active_high=active_high, initial_value=False, pin_factory=factory
        )
        self._player: PatternPlayer[bool] = PatternPlayer(self._write, f"buzzer-{pin}")

    def _write(self, on: bool) -> None:
        self._device.value = on

    @property
    def sounding(self) -> bool:
        return bool(self._device.value)

    def play(self, pattern: BeepPattern) -> None:
        steps: list[tuple[bool, int]] = []
        for beep in pattern.beeps:
            steps += [(True, beep.on_ms), (False, beep.off_ms)]
        self._player.play(steps, repeat=False, final=False)

    def wait_idle(self, timeout: float) -> bool:
        return self._player.wait_idle(timeout)

    def close(self) -> None:
        if self._device.closed:
            return
        self._player.set(False)
        self._device.close()


class _DebouncedInput:
    """One contact with a pull-up; a change is reported once it has held for debounce_ms.

    gpiozero's ``bounce_time`` is not modelled by MockFactory (MockPin ignores it), so
    the debounce is done here, the same on mock and real pins: every edge restarts a
    timer, and when the timer fires the level is read and compared with the last one
    reported.
    """

    def __init__(
        self, which: DoorInput, spec: InputPin, factory: Any, report: Callable[[InputChanged], None]
    ) -> None:
        self.which = which
        self._active_low = spec.active_low
        self._delay = spec.debounce_ms / 1000
        self._report = report
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False
        self._device = DigitalInputDevice(spec.pin, pull_up=True, pin_factory=factory)
        self.active = self._read()
        self._device.when_activated = self._edge
        self._device.when_deactivated = self._edge

    def _read(self) -> bool:
        pin_low = bool(self._device.is_active)  # pull_up=True: active means the pin is low
        return pin_low if self._active_low else not pin_low

    def _edge(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
            if self._delay == 0:
                self._timer = None
                self._settle_locked()
                return
            self._timer = threading.Timer(self._delay, self._settle)
            self._timer.daemon = True
            self._timer.start()

    def _settle(self) -> None:
        with self._lock:
            if not self._closed:
                self._settle_locked()

    def _settle_locked(self) -> None:
        level = self._read()
        if level != self.active:
            self.active = level
            self._report(InputChanged(self.which, level))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        self._device.close()


class GpioDoorInputs:
    """The door contact, REX, tamper and, where the pin map has it, the vending
    machine's vend-complete line: each debounced the same way."""

    def __init__(self, pinmap: BoardPinMap, factory: Any) -> None:
        self._handler: InputHandler | None = None
        self._inputs: dict[DoorInput, _DebouncedInput] = {}
        try:
            for which, spec in pinmap.inputs().items():
                self._inputs[which] = _DebouncedInput(which, spec, factory, self._dispatch)
        except Exception:
            self.close()  # the pins already claimed are released
            raise

    def _dispatch(self, event: InputChanged) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            handler(event)
        except Exception:  # a faulty handler must not stop input supervision
            logger.exception("door input handler failed")

    def state(self) -> DoorState:
        vend = self._inputs.get(DoorInput.VEND_COMPLETE)
        return DoorState(
            door_open=self._inputs[DoorInput.DOOR].active,
            rex_pressed=self._inputs[DoorInput.REX].active,
            tamper=self._inputs[DoorInput.TAMPER].active,
            vend_complete=vend.active if vend is not None else False,
        )

    def set_handler(self, handler: InputHandler | None) -> None:
        self._handler = handler

    def close(self) -> None:
        for i in self._inputs.values():
            i.close()


@dataclass
class GpioHardware:
    """Everything on the GPIO header, opened together and closed relay-first."""

    pinmap: BoardPinMap
    factory: Any
    keypad: GpioKeypad
    indicator: GpioIndicator
    buzzer: GpioBuzzer
    relay: GpioRelay
    inputs: GpioDoorInputs
    mock: MockGpioDriver | None = None
    closed: bool = False

    @property
    def healthy(self) -> bool:
        """What the daemon's watchdog asks of the GPIO layer: the keypad scanner runs."""
        return not self.closed and self.keypad.healthy

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.relay.close()
        for part in (self.keypad, self.indicator, self.buzzer, self.inputs):
            part.close()
        self.factory.close()

    def __enter__(self) -> GpioHardware:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_gpio(pinmap: BoardPinMap, backend: str) -> GpioHardware:
    """Open every device of ``pinmap`` on the pin factory named ``backend``.

    The relay is built first, so it is claimed at its off level before anything else
    on the header is touched.
    """
    _check_relay_claim(pinmap, backend)
    factory = make_pin_factory(backend, pinmap)
    mock = MockGpioDriver(factory, pinmap) if backend == "mock" else None
    opened: list[Any] = []
    try:
        relay = GpioRelay(pinmap.relay.pin, pinmap.relay.active_high, pinmap.relay.lock, factory)
        opened.append(relay)
        keypad = GpioKeypad(pinmap.keypad, factory)
        opened.append(keypad)
        indicator = GpioIndicator(pinmap.leds, factory)
        opened.append(indicator)
        buzzer = GpioBuzzer(pinmap.buzzer.pin, pinmap.buzzer.active_high, factory)
        opened.append(buzzer)
        inputs = GpioDoorInputs(pinmap, factory)
    except Exception:
        for part in opened:
            part.close()
        factory.close()
        raise
    return GpioHardware(pinmap, factory, keypad, indicator, buzzer, relay, inputs, mock)


def force_relay_off(pinmap: BoardPinMap, backend: str, factory: Any = None) -> None:
    """Claim the relay pin at its off level and release it: for systemd's ExecStopPost.

    After a crash the pin keeps whatever level the dead process left; this drives it
    off without touching any other pin. The CLI/daemon tier wraps it in a command.
    ``factory`` (tests) reuses an existing pin factory, which is then left open.
    """
    _check_relay_claim(pinmap, backend)
    own = factory is None
    factory = make_pin_factory(backend, pinmap) if own else factory
    try:
        relay = pinmap.relay
        GpioRelay(relay.pin, relay.active_high, relay.lock, factory).close()
    finally:
        if own:
            factory.close()


def drive_relay_safe(*, backend: str, board: str) -> None:
    """``terminald relay-safe`` (ExecStopPost): force_relay_off for a board named in config."""
    force_relay_off(load_board(board), backend)
