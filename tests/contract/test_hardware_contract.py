"""Contract tests of the hardware Protocols (terminald/core/hardware.py), per backend.

Timing is asserted loosely (tens of ms) from recorded pin transitions, never with tight
sleeps: the point is that a 300 ms pulse is a 300 ms pulse, not a 3 ms or 3 s one.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from gpiozero import Device

from terminald.backends.gpio import (
    GpioBackendError,
    GpioRelay,
    drive_relay_safe,
    force_relay_off,
    make_pin_factory,
    open_gpio,
)
from terminald.backends.pinmap import BoardPinMap
from terminald.core.hardware import (
    KEYS_3X4,
    KEYS_4X4,
    BeepPattern,
    Buzzer,
    Color,
    DoorInput,
    DoorInputs,
    Indicator,
    InputChanged,
    Keypad,
    KeyPressed,
    LightPattern,
    LightStep,
    Relay,
)
from tests.contract.conftest import MakeRig
from tests.contract.rigs import Rig

SETTLE = 0.12  # > debounce (20-30 ms) + a few scans, with room for a busy CI machine


def wait_until(cond: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def collect_keys(keypad: Keypad) -> list[str]:
    keys: list[str] = []
    lock = threading.Lock()

    def on_key(event: KeyPressed) -> None:
        with lock:
            keys.append(event.key)

    keypad.set_handler(on_key)
    return keys


def tap(rig: Rig, key: str, hold: float = 0.06, gap: float = 0.06) -> None:
    rig.press(key)
    time.sleep(hold)
    rig.release(key)
    time.sleep(gap)


def type_keys(rig: Rig, keys: list[str], sequence: tuple[str, ...]) -> None:
    """Press each key until its event arrives, then release it: fast and load-proof."""
    for i, key in enumerate(sequence, start=1):
        rig.press(key)
        assert wait_until(lambda: len(keys) >= i), f"no event for {key!r}"  # noqa: B023
        rig.release(key)


def active_low_relay(pinmap: BoardPinMap) -> BoardPinMap:
    # Active-low drive needs a pin held high from power-on: a pull-up resistor here.
    return replace(pinmap, relay=replace(pinmap.relay, active_high=False, external_pull="up"))


def on_periods(history: list[tuple[float, bool]]) -> list[float]:
    """Durations of each 'on' period in a (seconds since previous change, on) history."""
    periods = []
    for (_, on), (dt, _) in itertools.pairwise(history):
        if on:
            periods.append(dt)
    return periods


# --- static conformance: the adapters are what the core asks for -------------------------


def test_gpio_adapters_implement_the_core_protocols(make_rig: MakeRig) -> None:
    hw = make_rig().hardware
    parts: tuple[Keypad, Indicator, Buzzer, Relay, DoorInputs] = (
        hw.keypad,
        hw.indicator,
        hw.buzzer,
        hw.relay,
        hw.inputs,
    )
    assert len(parts) == 5


# --- keypad ----------------------------------------------------------------------------------


def test_every_key_of_the_3x4_matrix(make_rig: MakeRig) -> None:
    rig = make_rig()
    keys = collect_keys(rig.hardware.keypad)
    assert rig.hardware.keypad.keys == KEYS_3X4
    type_keys(rig, keys, KEYS_3X4)
    time.sleep(SETTLE)
    assert keys == list(KEYS_3X4)


def test_every_key_of_a_4x4_matrix(make_rig: MakeRig, board: BoardPinMap) -> None:
    pinmap = replace(
        board, keypad=replace(board.keypad, layout="4x4", cols=(*board.keypad.cols, 21))
    )
    rig = make_rig(pinmap)
    keys = collect_keys(rig.hardware.keypad)
    type_keys(rig, keys, KEYS_4X4)
    time.sleep(SETTLE)
    assert keys == list(KEYS_4X4)


def test_bounce_shorter_than_the_debounce_gives_one_key(make_rig: MakeRig) -> None:
    rig = make_rig()  # debounce 20 ms, scan 5 ms
    keys = collect_keys(rig.hardware.keypad)
    for _ in range(5):  # contact chatter on press: ~2 ms closed, ~2 ms open
        rig.press("5")
        time.sleep(0.002)
        rig.release("5")
        time.sleep(0.002)
    rig.press("5")
    time.sleep(0.15)
    for _ in range(5):  # and on release
        rig.release("5")
        time.sleep(0.002)
        rig.press("5")
        time.sleep(0.002)
    rig.release("5")
    time.sleep(SETTLE)
    assert keys == ["5"]


def test_a_blip_shorter_than_the_debounce_is_no_key(make_rig: MakeRig, board: BoardPinMap) -> None:
    rig = make_rig(replace(board, keypad=replace(board.keypad, debounce_ms=60)))
    keys = collect_keys(rig.hardware.keypad)
    rig.press("8")
    time.sleep(0.005)
    rig.release("8")
    time.sleep(0.2)
    assert keys == []
    tap(rig, "8", hold=0.15)  # and a real press still counts
    assert wait_until(lambda: keys == ["8"])


def test_a_held_key_is_one_press_and_rollover_keeps_both(make_rig: MakeRig) -> None:
    rig = make_rig()
    keys = collect_keys(rig.hardware.keypad)
    rig.press("1")
    time.sleep(0.3)
    assert keys == ["1"]
    rig.press("2")  # pressed before 1 is released
    time.sleep(0.08)
    rig.release("1")
    time.sleep(0.08)
    rig.release("2")
    time.sleep(SETTLE)
    assert keys == ["1", "2"]


def test_an_idle_keypad_does_not_scan(make_rig: MakeRig, backend: str) -> None:
    if backend != "mock":
        pytest.skip("row pin history is only observable on MockFactory")
    rig = make_rig()
    tap(rig, "3")
    time.sleep(SETTLE)
    row = rig.hardware.mock.pin(rig.pinmap.keypad.rows[0])  # type: ignore[union-attr]
    changes = len(row.states)
    time.sleep(0.2)  # 40 scan periods
    assert len(row.states) == changes, "rows toggled with no key down: busy scanning"
    assert row.state is False  # every row selected (low), waiting for a column edge


def test_no_handler_drops_keys_quietly(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.hardware.keypad.set_handler(None)
    tap(rig, "0")
    keys = collect_keys(rig.hardware.keypad)
    tap(rig, "9")
    assert wait_until(lambda: keys == ["9"])


def test_a_failing_handler_does_not_stop_the_scanner(make_rig: MakeRig) -> None:
    rig = make_rig()
    seen: list[str] = []

    def bad_handler(event: KeyPressed) -> None:
        seen.append(event.key)
        raise RuntimeError("bug in the daemon")

    rig.hardware.keypad.set_handler(bad_handler)
    type_keys(rig, seen, ("4", "6"))
    assert seen == ["4", "6"]
    assert rig.hardware.healthy


# --- relay -----------------------------------------------------------------------------------


@pytest.mark.parametrize("polarity", ["active_high", "active_low"])
def test_relay_is_never_energised_by_construction(
    make_rig: MakeRig, board: BoardPinMap, polarity: str
) -> None:
    pinmap = board if polarity == "active_high" else active_low_relay(board)
    rig = make_rig(pinmap)
    assert rig.hardware.relay.energised is False
    assert rig.active("relay") is False
    # Every level the pin took once driven (the first entry is the pin before the
    # adapter claimed it) is the off level.
    assert all(not on for _, on in rig.history("relay")[1:])


@pytest.mark.parametrize("polarity", ["active_high", "active_low"])
def test_relay_close_de_energises(make_rig: MakeRig, board: BoardPinMap, polarity: str) -> None:
    pinmap = board if polarity == "active_high" else active_low_relay(board)
    rig = make_rig(pinmap)
    rig.hardware.relay.energise()
    assert rig.active("relay") is True
    rig.hardware.relay.close()
    assert rig.active("relay") is False
    rig.hardware.relay.close()  # idempotent


@pytest.mark.parametrize("active_high", [True, False])
def test_force_relay_off_drives_a_stuck_pin_off(board: BoardPinMap, active_high: bool) -> None:
    """What ExecStopPost runs after a crash left the relay energised."""
    pinmap = board if active_high else active_low_relay(board)
    factory = make_pin_factory("mock", pinmap)
    stuck = GpioRelay(pinmap.relay.pin, active_high, "fail-secure", factory)
    stuck.energise()
    stuck._device.close()  # the process died: the pin is released at its last level
    pin = factory.pin(pinmap.relay.pin)
    assert bool(pin.state) == active_high  # still energised
    force_relay_off(pinmap, "mock", factory=factory)
    assert bool(pin.state) != active_high
    factory.close()
    force_relay_off(pinmap, "mock")  # the entry point as ExecStopPost calls it
    drive_relay_safe(backend="mock", board="rpi5")  # as `terminald relay-safe` calls it


def test_relay_close_during_a_pulse_de_energises_at_once(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.hardware.relay.pulse(5000)
    assert rig.active("relay") is True
    t0 = time.monotonic()
    rig.hardware.relay.close()
    assert time.monotonic() - t0 < 0.5
    assert rig.active("relay") is False


@pytest.mark.parametrize("ms", [150, 400])
def test_pulse_duration_is_honoured(make_rig: MakeRig, ms: int) -> None:
    rig = make_rig()
    relay = rig.hardware.relay
    rig.clear_history("relay")
    relay.pulse(ms)
    assert relay.energised is True  # energised before pulse() returns
    assert wait_until(lambda: not rig.active("relay"), timeout=ms / 1000 + 1)
    time.sleep(0.02)
    periods = on_periods(rig.history("relay"))
    assert len(periods) == 1, rig.history("relay")
    assert ms / 1000 - 0.005 <= periods[0] < ms / 1000 + 0.1
    assert relay.energised is False


def test_energise_holds_and_cancels_a_pulse(make_rig: MakeRig) -> None:
    rig = make_rig()
    relay = rig.hardware.relay
    relay.pulse(100)
    relay.energise()  # emergency-open replaces the pulse
    time.sleep(0.25)
    assert relay.energised and rig.active("relay")
    relay.de_energise()
    assert not relay.energised and not rig.active("relay")
    relay.pulse(100)
    relay.de_energise()  # cancels the pulse: nothing re-energises later
    time.sleep(0.15)
    assert not rig.active("relay")


def test_relay_rejects_an_empty_pulse(make_rig: MakeRig) -> None:
    relay = make_rig().hardware.relay
    with pytest.raises(ValueError):
        relay.pulse(0)
    assert not relay.energised


# --- indicator ---------------------------------------------------------------------------------


def lit(rig: Rig) -> set[str]:
    return {c for c in rig.pinmap.leds.pins if rig.active(f"led.{c}")}


def test_steady_colours_light_their_led(make_rig: MakeRig) -> None:
    rig = make_rig()
    assert lit(rig) == set()
    for color in (Color.GREEN, Color.RED, Color.AMBER):
        rig.hardware.indicator.show(LightPattern.steady(color))
        assert lit(rig) == {color.value}
    rig.hardware.indicator.show(LightPattern.steady(Color.OFF))
    assert lit(rig) == set()


def test_rgb_led_mixes_amber(make_rig: MakeRig, board: BoardPinMap) -> None:
    leds = replace(board.leds, kind="rgb", pins={"red": 27, "green": 22, "blue": 17})
    rig = make_rig(replace(board, leds=leds))
    rig.hardware.indicator.show(LightPattern.steady(Color.AMBER))
    assert lit(rig) == {"red", "green"}
    rig.hardware.indicator.show(LightPattern.steady(Color.GREEN))
    assert lit(rig) == {"green"}


def test_blink_plays_and_a_new_pattern_replaces_it(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.clear_history("led.red")
    rig.hardware.indicator.show(LightPattern.blink(Color.RED, 50, 50))
    time.sleep(0.43)
    periods = on_periods(rig.history("led.red"))
    assert len(periods) >= 3, rig.history("led.red")
    assert all(0.045 <= p < 0.12 for p in periods[:-1])
    rig.hardware.indicator.show(LightPattern.steady(Color.GREEN))
    assert lit(rig) == {"green"}
    changes = len(rig.history("led.red"))
    time.sleep(0.2)
    assert len(rig.history("led.red")) == changes, "old blink still running"
    assert not rig.active("led.red")


def test_a_sequence_holds_its_last_step(make_rig: MakeRig) -> None:
    rig = make_rig()
    pattern = LightPattern((LightStep(Color.RED, 80), LightStep(Color.AMBER, 0)))
    rig.hardware.indicator.show(pattern)
    assert lit(rig) == {"red"}
    assert wait_until(lambda: lit(rig) == {"amber"})
    time.sleep(0.1)
    assert lit(rig) == {"amber"}


def test_indicator_close_turns_everything_off(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.hardware.indicator.show(LightPattern.blink(Color.AMBER, 20, 20))
    rig.hardware.indicator.show(LightPattern.steady(Color.RED))
    rig.hardware.indicator.close()
    assert lit(rig) == set()


# --- buzzer ----------------------------------------------------------------------------------


def test_beep_pattern_is_played_then_silent(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.clear_history("buzzer")
    rig.hardware.buzzer.play(BeepPattern.of((60, 60), (150, 0)))
    assert wait_until(lambda: len(rig.history("buzzer")) >= 5, timeout=2)
    time.sleep(0.05)
    history = rig.history("buzzer")
    assert [on for _, on in history] == [False, True, False, True, False]
    first, second = on_periods(history)
    assert 0.055 <= first < 0.15
    assert 0.145 <= second < 0.25
    assert not rig.active("buzzer")


def test_a_new_beep_pattern_cuts_the_old_one(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.hardware.buzzer.play(BeepPattern.of((2000, 0)))
    assert rig.active("buzzer")
    rig.hardware.buzzer.play(BeepPattern.of((50, 0)))
    assert wait_until(lambda: not rig.active("buzzer"), timeout=0.5)


def test_patterns_reject_negative_durations() -> None:
    with pytest.raises(ValueError):
        BeepPattern.of((-1, 0))
    with pytest.raises(ValueError):
        LightPattern.blink(Color.RED, 0, 0)
    with pytest.raises(ValueError):
        LightPattern(())


# --- door inputs -------------------------------------------------------------------------------


def collect_inputs(rig: Rig) -> queue.Queue[InputChanged]:
    events: queue.Queue[InputChanged] = queue.Queue()
    rig.hardware.inputs.set_handler(events.put)
    return events


def test_inputs_at_rest(make_rig: MakeRig) -> None:
    state = make_rig().hardware.inputs.state()
    assert (state.door_open, state.rex_pressed, state.tamper) == (False, False, False)


@pytest.mark.parametrize("which", list(DoorInput))
def test_each_input_reports_changes_and_state(make_rig: MakeRig, which: DoorInput) -> None:
    rig = make_rig()
    events = collect_inputs(rig)
    rig.set_input(which, True)
    assert events.get(timeout=1) == InputChanged(which, True)
    assert rig.hardware.inputs.state().active(which) is True
    others = [w for w in DoorInput if w is not which]
    assert not any(rig.hardware.inputs.state().active(w) for w in others)
    rig.set_input(which, False)
    assert events.get(timeout=1) == InputChanged(which, False)
    assert rig.hardware.inputs.state().active(which) is False
    time.sleep(SETTLE)
    assert events.empty()


def test_input_bounce_gives_one_change(make_rig: MakeRig) -> None:
    rig = make_rig()  # 30 ms debounce
    events = collect_inputs(rig)
    for _ in range(6):
        rig.set_input(DoorInput.DOOR, True)
        time.sleep(0.002)
        rig.set_input(DoorInput.DOOR, False)
        time.sleep(0.002)
    rig.set_input(DoorInput.DOOR, True)
    assert events.get(timeout=1) == InputChanged(DoorInput.DOOR, True)
    time.sleep(SETTLE)
    assert events.empty()


def test_a_glitch_that_returns_is_no_change(make_rig: MakeRig) -> None:
    rig = make_rig()
    events = collect_inputs(rig)
    rig.set_input(DoorInput.TAMPER, True)
    time.sleep(0.003)
    rig.set_input(DoorInput.TAMPER, False)
    time.sleep(SETTLE)
    assert events.empty()
    assert rig.hardware.inputs.state().tamper is False


# --- backend selection -------------------------------------------------------------------------


def test_mock_factory_is_explicit_and_global_factory_untouched(board: BoardPinMap) -> None:
    before = Device.pin_factory
    with open_gpio(board, "mock") as hw:
        assert type(hw.factory).__name__ == "MockFactory"
        assert hw.factory.board_info.model == "4B"  # the pin map's board, not gpiozero's default
        assert hw.mock is not None
    assert Device.pin_factory is before


def test_unknown_backend_is_refused_with_the_choices(board: BoardPinMap) -> None:
    with pytest.raises(GpioBackendError, match="mock, lgpio"):
        make_pin_factory("gpio-sim", board)


def test_a_missing_real_backend_is_a_clear_error(board: BoardPinMap) -> None:
    try:
        import lgpio  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(GpioBackendError, match="'lgpio' is unavailable"):
            open_gpio(board, "lgpio")
    else:
        pytest.skip("lgpio is installed here")
