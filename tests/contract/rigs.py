"""Test rigs: one way to poke and watch a GpioHardware, per backend.

``MockRig`` sits on gpiozero's MockFactory (through terminald's MockGpioDriver).
``HilRig`` is the hardware-in-the-loop rig of hw/hil.md: a second Raspberry Pi (the rig
Pi, running pigpiod) wired to the terminal Pi under test; it closes key contacts through
analog switches, drives the door inputs and reads the outputs back. The contract tests
only use the ``Rig`` surface, so the same assertions run on both.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Protocol

from terminald.backends.gpio import GpioHardware, open_gpio
from terminald.backends.pinmap import BoardPinMap, default_hw_dir
from terminald.core.hardware import DoorInput

OUTPUTS = ("relay", "buzzer", "led.green", "led.red", "led.amber")


class Rig(Protocol):
    hardware: GpioHardware
    pinmap: BoardPinMap

    def press(self, key: str) -> None: ...
    def release(self, key: str) -> None: ...
    def set_input(self, which: DoorInput, active: bool) -> None: ...
    def active(self, output: str) -> bool:
        """Whether ``output`` (OUTPUTS, or ``led.<colour>``) is on, read electrically."""
        ...

    def history(self, output: str) -> list[tuple[float, bool]]:
        """(seconds since the previous change, on) for each change since the last clear."""
        ...

    def clear_history(self, output: str) -> None: ...
    def close(self) -> None: ...


def _output_pin(pinmap: BoardPinMap, output: str) -> tuple[int, bool]:
    if output == "relay":
        return pinmap.relay.pin, pinmap.relay.active_high
    if output == "buzzer":
        return pinmap.buzzer.pin, pinmap.buzzer.active_high
    color = output.removeprefix("led.")
    return pinmap.leds.pins[color], pinmap.leds.active_high


class MockRig:
    def __init__(self, pinmap: BoardPinMap) -> None:
        self.pinmap = pinmap
        self.hardware = open_gpio(pinmap, "mock")
        assert self.hardware.mock is not None
        self.driver = self.hardware.mock

    def press(self, key: str) -> None:
        self.driver.press(key)

    def release(self, key: str) -> None:
        self.driver.release(key)

    def set_input(self, which: DoorInput, active: bool) -> None:
        self.driver.set_input(which, active)

    def pin(self, output: str) -> Any:
        return self.driver.pin(_output_pin(self.pinmap, output)[0])

    def active(self, output: str) -> bool:
        number, active_high = _output_pin(self.pinmap, output)
        return bool(self.driver.pin(number).state) == active_high

    def history(self, output: str) -> list[tuple[float, bool]]:
        active_high = _output_pin(self.pinmap, output)[1]
        return [(s.timestamp, bool(s.state) == active_high) for s in self.pin(output).states]

    def clear_history(self, output: str) -> None:
        self.pin(output).clear_states()

    def close(self) -> None:
        self.hardware.close()


class HilRig:
    """The rig Pi of hw/hil.md, reached through gpiozero's remote pigpio factory."""

    def __init__(self, pinmap: BoardPinMap, backend: str, rig_file: Path) -> None:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice
        from gpiozero.pins.pigpio import PiGPIOFactory

        spec = tomllib.loads(rig_file.read_text())
        self.pinmap = pinmap
        self._factory = PiGPIOFactory(host=spec["rig"]["host"])
        self._keys = {
            k: DigitalOutputDevice(p, initial_value=False, pin_factory=self._factory)
            for k, p in spec["keys"].items()
        }
        # The rig drives the terminal's input lines through 1 kOhm: high or low.
        self._inputs = {
            DoorInput(name): DigitalOutputDevice(p, pin_factory=self._factory)
            for name, p in spec["inputs"].items()
        }
        self._lock = threading.Lock()
        self._hist: dict[str, list[tuple[float, bool]]] = {}
        self._last: dict[str, float] = {}
        self._reads: dict[str, Any] = {}
        for out, p in spec["outputs"].items():
            dev = DigitalInputDevice(p, pull_up=None, active_state=True, pin_factory=self._factory)
            self._reads[out] = dev
            dev.when_activated = lambda o=out: self._record(o)
            dev.when_deactivated = lambda o=out: self._record(o)
        for which in self._inputs:
            self.set_input(which, False)
        self.hardware = open_gpio(pinmap, backend)
        for out in spec["outputs"]:
            self.clear_history(out)

    def _record(self, output: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._hist.setdefault(output, []).append(
                (now - self._last.get(output, now), self.active(output))
            )
            self._last[output] = now

    def press(self, key: str) -> None:
        self._keys[key].on()

    def release(self, key: str) -> None:
        self._keys[key].off()

    def set_input(self, which: DoorInput, active: bool) -> None:
        spec = self.pinmap.inputs()[which]
        self._inputs[which].value = active != spec.active_low

    def active(self, output: str) -> bool:
        return bool(self._reads[output].value) == _output_pin(self.pinmap, output)[1]

    def history(self, output: str) -> list[tuple[float, bool]]:
        with self._lock:
            return list(self._hist.get(output, []))

    def clear_history(self, output: str) -> None:
        with self._lock:
            self._hist[output] = [(0.0, self.active(output))]
            self._last[output] = time.monotonic()

    def close(self) -> None:
        self.hardware.close()
        self._factory.close()


def hil_requested(config: Any) -> bool:
    return bool(config.getoption("--hil")) or os.environ.get("TERMINALD_HIL") == "1"


def hil_skip_reason(config: Any) -> str | None:
    """None when the real backend can run here; otherwise why it is skipped."""
    if not hil_requested(config):
        return "real GPIO backend: opt in with --hil or TERMINALD_HIL=1 on the HIL rig (hw/hil.md)"
    model = Path("/proc/device-tree/model")
    if not model.exists() or "Raspberry Pi" not in model.read_text(errors="replace"):
        return "real GPIO backend: --hil given, but this machine is not a Raspberry Pi"
    if not hil_rig_file().is_file():
        return f"real GPIO backend: no rig description at {hil_rig_file()} (hw/hil.md)"
    return None


def hil_rig_file() -> Path:
    return Path(os.environ.get("TERMINALD_HIL_RIG", default_hw_dir() / "hil-rig.toml"))


def hil_board_and_backend() -> tuple[str, str]:
    spec = tomllib.loads(hil_rig_file().read_text())
    return spec["dut"]["board"], spec["dut"].get("backend", "lgpio")
