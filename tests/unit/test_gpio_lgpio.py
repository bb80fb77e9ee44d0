"""The relay line under gpiozero's real LGPIOFactory never sees its energised level.

There is no GPIO chip on a CI host, so ``lgpio`` (a C extension that talks to
/dev/gpiochip*) is the one thing replaced: ``RecordingLgpio`` keeps every level each
line is driven to, in order. Everything above it -- gpiozero's LGPIOFactory/LGPIOPin,
OutputDevice, terminald's devices -- is the real code.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from terminald.backends.pinmap import BoardPinMap, default_hw_dir, load_board

_IS_OUT = 1 << 1  # LGPIOPin.GPIO_IS_OUT
_PULL_UP, _PULL_DOWN, _NO_BIAS = 1 << 5, 1 << 6, 1 << 7


class RecordingLgpio(types.ModuleType):
    """The subset of lgpio's API that gpiozero's lgpio pins call, recording line levels."""

    SET_ACTIVE_LOW, SET_OPEN_DRAIN, SET_OPEN_SOURCE = 4, 8, 16
    SET_PULL_UP, SET_PULL_DOWN, SET_PULL_NONE = _PULL_UP, _PULL_DOWN, _NO_BIAS
    SET_BIAS_PULL_UP, SET_BIAS_PULL_DOWN, SET_BIAS_DISABLE = _PULL_UP, _PULL_DOWN, _NO_BIAS
    RISING_EDGE, FALLING_EDGE, BOTH_EDGES = 1, 2, 3

    class error(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("lgpio")
        self.driven: dict[int, list[int]] = {}  # line -> every level it was driven to
        self.mode: dict[int, int] = {}
        self.level: dict[int, int] = {}

    def _drive(self, gpio: int, level: int) -> None:
        self.level[gpio] = int(bool(level))
        self.driven.setdefault(gpio, []).append(self.level[gpio])

    def gpiochip_open(self, chip: int) -> int:
        return 7

    def gpiochip_close(self, handle: int) -> None:
        pass

    def gpio_claim_output(self, handle: int, gpio: int, level: int = 0, lFlags: int = 0) -> int:
        # lgpio's signature and default (abyz.me.uk/lg/py_lgpio.html#gpio_claim_output)
        self.mode[gpio] = _IS_OUT
        self._drive(gpio, level)
        return 0

    def gpio_claim_input(self, handle: int, gpio: int, lFlags: int = 0) -> int:
        self.mode[gpio] = lFlags & (_PULL_UP | _PULL_DOWN | _NO_BIAS)
        self.level[gpio] = 1 if lFlags & _PULL_UP else 0
        return 0

    def gpio_free(self, handle: int, gpio: int) -> int:
        self.mode[gpio] = 0
        return 0

    def gpio_get_mode(self, handle: int, gpio: int) -> int:
        return self.mode.get(gpio, 0)

    def gpio_write(self, handle: int, gpio: int, level: int) -> int:
        assert self.mode.get(gpio) == _IS_OUT, f"write to GPIO {gpio}, not an output"
        self._drive(gpio, level)
        return 0

    def gpio_read(self, handle: int, gpio: int) -> int:
        return self.level.get(gpio, 0)

    def gpio_set_debounce_micros(self, handle: int, gpio: int, micros: int) -> int:
        return 0

    def gpio_claim_alert(
        self, handle: int, gpio: int, eFlags: int, lFlags: int = 0, notify_handle: Any = None
    ) -> int:
        return 0

    def callback(self, handle: int, gpio: int, edge: int = 3, func: Any = None) -> Any:
        return types.SimpleNamespace(cancel=lambda: None)

    def tx_pwm(self, *args: Any) -> int:
        return 0


@pytest.fixture
def lgpio(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingLgpio]:
    fake = RecordingLgpio()
    monkeypatch.setitem(sys.modules, "lgpio", fake)
    # gpiozero.pins.lgpio binds lgpio at import: import it afresh against the stand-in,
    # and drop it afterwards so no other test sees this copy.
    for name in ("gpiozero.pins.lgpio", "terminald.backends.gpio_lgpio"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.import_module("terminald.backends.gpio_lgpio")
    # LGPIOFactory asks /proc for the Pi's revision, which a CI host does not have.
    monkeypatch.setattr("gpiozero.pins.local.get_pi_revision", lambda: 0xC03111)
    yield fake
    for name in ("gpiozero.pins.lgpio", "terminald.backends.gpio_lgpio"):
        sys.modules.pop(name, None)


def _active_low_board(tmp_path: Path) -> BoardPinMap:
    hw = tmp_path / "hw"
    shutil.copytree(default_hw_dir() / "boards", hw / "boards")
    board = hw / "boards" / "rpi4.toml"
    text = board.read_text(encoding="utf-8")
    relay = text.index("[relay]")
    head, tail = text[:relay], text[relay:]
    tail = tail.replace("active_high = true", "active_high = false", 1)
    tail = tail.replace('external_pull = "none"', 'external_pull = "up"', 1)
    board.write_text(head + tail, encoding="utf-8")
    pinmap = load_board("rpi4", hw)
    assert not pinmap.relay.active_high
    return pinmap


def test_active_low_relay_never_energised_at_start(lgpio: RecordingLgpio, tmp_path: Path) -> None:
    from terminald.backends.gpio import open_gpio

    pinmap = _active_low_board(tmp_path)
    hardware = open_gpio(pinmap, "lgpio")
    try:
        assert not hardware.relay.energised
        hardware.relay.energise()
        assert hardware.relay.wait_idle(2.0)
        hardware.relay.de_energise()
        assert hardware.relay.wait_idle(2.0)
    finally:
        hardware.close()
    # active-low: 0 energises. The line starts at 1 (off), goes 0 only when asked, ends 1.
    levels = lgpio.driven[pinmap.relay.pin]
    assert levels[0] == 1
    assert levels[-1] == 1
    assert 0 in levels  # the energise() above did reach the line
    first_on = levels.index(0)
    assert set(levels[:first_on]) == {1}


def test_relay_safe_never_energises_an_active_low_relay(
    lgpio: RecordingLgpio, tmp_path: Path
) -> None:
    from terminald.backends.gpio import force_relay_off

    pinmap = _active_low_board(tmp_path)
    force_relay_off(pinmap, "lgpio")
    assert lgpio.driven[pinmap.relay.pin]
    assert set(lgpio.driven[pinmap.relay.pin]) == {1}


def test_active_high_relay_claimed_low(lgpio: RecordingLgpio) -> None:
    from terminald.backends.gpio import force_relay_off

    pinmap = load_board("rpi4")
    assert pinmap.relay.active_high
    force_relay_off(pinmap, "lgpio")
    assert set(lgpio.driven[pinmap.relay.pin]) == {0}


def test_gpiozero_plain_lgpio_pin_would_pulse_the_relay(
    lgpio: RecordingLgpio, tmp_path: Path
) -> None:
    """Why the factory is replaced: the stand-in sees gpiozero's own blip (claim at 0, write 1)."""
    from gpiozero import OutputDevice
    from gpiozero.pins.lgpio import LGPIOFactory

    pinmap = _active_low_board(tmp_path)
    factory = LGPIOFactory(chip=0)
    try:
        OutputDevice(pinmap.relay.pin, active_high=False, initial_value=False, pin_factory=factory)
    finally:
        factory.close()
    assert lgpio.driven[pinmap.relay.pin][:2] == [0, 1]


@pytest.mark.parametrize("backend", ["native", "pigpio"])
def test_backends_that_claim_then_write_refuse_an_active_low_relay(
    tmp_path: Path, backend: str
) -> None:
    from terminald.backends.gpio import GpioBackendError, force_relay_off, open_gpio

    pinmap = _active_low_board(tmp_path)
    with pytest.raises(GpioBackendError, match="active-low relay on GPIO 26"):
        open_gpio(pinmap, backend)
    with pytest.raises(GpioBackendError, match="lgpio"):
        force_relay_off(pinmap, backend)
