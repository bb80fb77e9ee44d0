"""Board pin maps (``hw/boards/<board>.toml``): loaded by name, validated, typed.

A pin map says which BCM GPIO drives or reads each part of the terminal, and what the
board does to those pins before any software runs (its power-on pulls). Validation
refuses a map where a pin is used twice, is not a header GPIO of that board, is reserved
(UART of the back-office link, I2C, HAT EEPROM), or where nothing holds the relay's
off level between power-on and the daemon (see hw/README.md). Every error names the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminald.core.hardware import KEYS_3X4, KEYS_4X4, DoorInput

LAYOUTS = {"3x4": KEYS_3X4, "4x4": KEYS_4X4}
LOCK_TYPES = ("fail-secure", "fail-safe")
_BOARD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class PinMapError(ValueError):
    """A pin map that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class KeypadPins:
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    layout: str
    debounce_ms: int
    scan_ms: int

    @property
    def keys(self) -> tuple[str, ...]:
        """Keys in row-major order: ``keys[r * len(cols) + c]``."""
        return LAYOUTS[self.layout]


@dataclass(frozen=True, slots=True)
class LedPins:
    kind: str  # "discrete" (green/red/amber) or "rgb" (red/green/blue)
    pins: dict[str, int]
    active_high: bool


@dataclass(frozen=True, slots=True)
class OutputPin:
    pin: int
    active_high: bool


@dataclass(frozen=True, slots=True)
class RelayPin:
    pin: int
    active_high: bool
    lock: str  # "fail-secure" (lock on the NO contact) or "fail-safe" (NC contact)
    external_pull: str  # "down", "up" or "none": a resistor on the driver input

    @property
    def off_level_high(self) -> bool:
        return not self.active_high


@dataclass(frozen=True, slots=True)
class InputPin:
    pin: int
    active_low: bool  # active (door open / pressed / tamper) when the pin reads low
    debounce_ms: int


@dataclass(frozen=True, slots=True)
class BoardPinMap:
    board: str
    model: str
    gpiochip: int | None  # None: let the pin factory choose (Pi 5, hw/wiring-rpi5.md)
    mock_revision: str
    header_gpios: frozenset[int]
    boot_pull_up: frozenset[int]
    boot_pull_down: frozenset[int]
    reserved: dict[int, str]
    keypad: KeypadPins
    leds: LedPins
    buzzer: OutputPin
    relay: RelayPin
    door: InputPin
    rex: InputPin
    tamper: InputPin
    # A vending machine's vend-complete line (``[inputs.vend_complete]``, optional).
    vend_complete: InputPin | None = None

    def used_pins(self) -> dict[str, int]:
        """Every pin in use, by its key in the TOML file."""
        used: dict[str, int] = {}
        for i, p in enumerate(self.keypad.rows):
            used[f"keypad.rows[{i}]"] = p
        for i, p in enumerate(self.keypad.cols):
            used[f"keypad.cols[{i}]"] = p
        for color, p in self.leds.pins.items():
            used[f"leds.{color}"] = p
        used["buzzer.pin"] = self.buzzer.pin
        used["relay.pin"] = self.relay.pin
        used["inputs.door.pin"] = self.door.pin
        used["inputs.rex.pin"] = self.rex.pin
        used["inputs.tamper.pin"] = self.tamper.pin
        if self.vend_complete is not None:
            used["inputs.vend_complete.pin"] = self.vend_complete.pin
        return used

    def inputs(self) -> dict[DoorInput, InputPin]:
        """Every supervised input in the map (vend_complete only where it has one)."""
        found = {DoorInput.DOOR: self.door, DoorInput.REX: self.rex, DoorInput.TAMPER: self.tamper}
        if self.vend_complete is not None:
            found[DoorInput.VEND_COMPLETE] = self.vend_complete
        return found


def default_hw_dir() -> Path:
    """``$TERMINALD_HW_DIR``, else the checkout's ``hw/``, else the installed copy."""
    env = os.environ.get("TERMINALD_HW_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "hw"
    return checkout if checkout.is_dir() else Path("/usr/share/terminald/hw")


def available_boards(hw_dir: Path | None = None) -> list[str]:
    return sorted(p.stem for p in ((hw_dir or default_hw_dir()) / "boards").glob("*.toml"))


def load_board(name: str, hw_dir: Path | None = None, keypad: str | None = None) -> BoardPinMap:
    """Load ``hw/boards/<name>.toml``; PinMapError names the file and key on any problem.
    ``keypad`` ("3x4" / "4x4", ``[gpio] keypad``) overrides the file's layout: a 4x4 keypad
    adds the file's ``keypad.col4`` pin as its fourth column (A-D)."""
    if not _BOARD_NAME.match(name):
        raise PinMapError(f"board name {name!r}: use lower-case letters, digits, - and _")
    path = (hw_dir or default_hw_dir()) / "boards" / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(available_boards(hw_dir)) or "none"
        raise PinMapError(f"no pin map for board {name!r} ({path}); known boards: {known}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise PinMapError(f"{path}: not valid TOML: {e}") from e
    return parse_pinmap(data, source=str(path), keypad=keypad)


def parse_pinmap(
    data: dict[str, Any], source: str = "<pinmap>", keypad: str | None = None
) -> BoardPinMap:
    r = _Reader(data, source)
    board = r.table("board")
    header = frozenset(r.pin_list(board, "board.header_gpios", allow_empty=False, check=False))
    r.header = header
    keypad_t = r.table("keypad")
    layout = r.choice(keypad_t, "keypad.layout", tuple(LAYOUTS), default="3x4")
    cols = tuple(r.pin_list(keypad_t, "keypad.cols"))
    col4 = r.optional_int(keypad_t, "keypad.col4")
    if keypad == "4x4" and layout == "3x4":  # the vending or attendance keypad's A-D column
        if col4 is None:
            raise r.error("keypad.col4", "missing: [gpio] keypad = 4x4 needs the fourth column")
        cols, layout = (*cols, col4), "4x4"
    elif keypad == "3x4" and layout == "4x4":
        cols, layout = cols[:3], "3x4"
    keypad_pins = KeypadPins(
        rows=tuple(r.pin_list(keypad_t, "keypad.rows")),
        cols=cols,
        layout=layout,
        debounce_ms=r.integer(keypad_t, "keypad.debounce_ms", 1, 500, default=20),
        scan_ms=r.integer(keypad_t, "keypad.scan_ms", 1, 100, default=5),
    )
    want_cols = 3 if layout == "3x4" else 4
    if len(keypad_pins.rows) != 4 or len(keypad_pins.cols) != want_cols:
        raise r.error(
            "keypad",
            f"a {layout} keypad needs 4 rows and {want_cols} cols, got "
            f"{len(keypad_pins.rows)} and {len(keypad_pins.cols)}",
        )
    pinmap = BoardPinMap(
        board=r.string(board, "board.name"),
        model=r.string(board, "board.model"),
        gpiochip=r.optional_int(board, "board.gpiochip"),
        mock_revision=r.string(board, "board.mock_revision"),
        header_gpios=header,
        boot_pull_up=frozenset(
            r.pin_list(board, "board.boot_pull_up", allow_empty=True, check=False)
        ),
        boot_pull_down=frozenset(
            r.pin_list(board, "board.boot_pull_down", allow_empty=True, check=False)
        ),
        reserved=r.reserved(board),
        keypad=keypad_pins,
        leds=_leds(r),
        buzzer=OutputPin(
            pin=r.pin(r.table("buzzer"), "buzzer.pin"),
            active_high=r.boolean(r.table("buzzer"), "buzzer.active_high", default=True),
        ),
        relay=_relay(r),
        door=_input(r, "door", active_low=False),
        rex=_input(r, "rex", active_low=True),
        tamper=_input(r, "tamper", active_low=False),
        # A closing contact (relay, open collector or optocoupler) to GND: active low.
        vend_complete=_input(r, "vend_complete", active_low=True)
        if _has_input(r, "vend_complete")
        else None,
    )
    _check_unique_and_free(r, pinmap)
    _check_relay_boot_level(r, pinmap)
    return pinmap


def config_txt_lines(pinmap: BoardPinMap) -> list[str]:
    """The ``config.txt`` line that drives the relay pin to its off level during boot."""
    relay = pinmap.relay
    level = "dh" if relay.off_level_high else "dl"
    return [f"gpio={relay.pin}=op,{level}"]


def _leds(r: _Reader) -> LedPins:
    t = r.table("leds")
    kind = r.choice(t, "leds.kind", ("discrete", "rgb"), default="discrete")
    colors = ("green", "red", "amber") if kind == "discrete" else ("red", "green", "blue")
    return LedPins(
        kind=kind,
        pins={c: r.pin(t, f"leds.{c}") for c in colors},
        active_high=r.boolean(t, "leds.active_high", default=True),
    )


def _relay(r: _Reader) -> RelayPin:
    t = r.table("relay")
    return RelayPin(
        pin=r.pin(t, "relay.pin"),
        active_high=r.boolean(t, "relay.active_high", default=True),
        lock=r.choice(t, "relay.lock", LOCK_TYPES),
        external_pull=r.choice(t, "relay.external_pull", ("none", "down", "up"), default="none"),
    )


def _input(r: _Reader, name: str, active_low: bool) -> InputPin:
    t = r.table(f"inputs.{name}")
    return InputPin(
        pin=r.pin(t, f"inputs.{name}.pin"),
        active_low=r.boolean(t, f"inputs.{name}.active_low", default=active_low),
        debounce_ms=r.integer(t, f"inputs.{name}.debounce_ms", 0, 2000, default=30),
    )


def _has_input(r: _Reader, name: str) -> bool:
    inputs = r.data.get("inputs")
    return isinstance(inputs, dict) and name in inputs


def _check_unique_and_free(r: _Reader, pinmap: BoardPinMap) -> None:
    seen: dict[int, str] = {}
    for key, pin in pinmap.used_pins().items():
        if pin in seen:
            raise r.error(key, f"GPIO {pin} is already used by {seen[pin]}")
        if pin in pinmap.reserved:
            raise r.error(key, f"GPIO {pin} is reserved on this board: {pinmap.reserved[pin]}")
        seen[pin] = key


def _check_relay_boot_level(r: _Reader, pinmap: BoardPinMap) -> None:
    """Something must hold the relay's off level from power-on until the daemon runs.

    The config.txt ``gpio=`` line only takes effect a few seconds after power-on
    (raspberrypi/documentation configuration/config-txt/gpio.md), so until then the
    pin's power-on pull, or an external resistor, is all that keeps the relay off.
    """
    relay = pinmap.relay
    want = "up" if relay.off_level_high else "down"
    if relay.external_pull != "none":
        if relay.external_pull != want:
            raise r.error(
                "relay.external_pull",
                f"an active-{'high' if relay.active_high else 'low'} relay is off when "
                f"the pin is {'high' if relay.off_level_high else 'low'}: the external "
                f"resistor must pull {want}, not {relay.external_pull}",
            )
        return
    board_pull = pinmap.boot_pull_up if want == "up" else pinmap.boot_pull_down
    if relay.pin not in board_pull:
        choices = sorted((board_pull & pinmap.header_gpios) - set(pinmap.reserved))
        raise r.error(
            "relay.pin",
            f"GPIO {relay.pin} is not known to be pulled {want} at power-on on "
            f"{pinmap.model}, so the relay could switch on while the board boots; use a "
            f"pin pulled {want} at power-on ({_ranges(choices) or 'none known'}) or fit "
            f"a resistor and set relay.external_pull = {want!r}",
        )


def _ranges(pins: list[int]) -> str:
    return ", ".join(str(p) for p in pins)


class _Reader:
    """Typed access to the parsed TOML, with errors that name the key."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data = data
        self.source = source
        self.header: frozenset[int] = frozenset()

    def error(self, key: str, problem: str) -> PinMapError:
        return PinMapError(f"{self.source}: {key}: {problem}")

    def table(self, dotted: str) -> dict[str, Any]:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise self.error(dotted, "missing table")
            node = node[part]
        if not isinstance(node, dict):
            raise self.error(dotted, "must be a table")
        return node

    def _get(self, t: dict[str, Any], key: str, default: Any = None) -> Any:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in t:
            if default is None:
                raise self.error(key, "missing")
            return default
        return t[leaf]

    def string(self, t: dict[str, Any], key: str) -> str:
        v = self._get(t, key)
        if not isinstance(v, str) or not v:
            raise self.error(key, f"must be a non-empty string, got {v!r}")
        return v

    def boolean(self, t: dict[str, Any], key: str, default: bool) -> bool:
        v = self._get(t, key, default)
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, got {v!r}")
        return v

    def integer(self, t: dict[str, Any], key: str, lo: int, hi: int, default: int) -> int:
        v = self._get(t, key, default)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.error(key, f"must be an integer from {lo} to {hi}, got {v!r}")
        return v

    def optional_int(self, t: dict[str, Any], key: str) -> int | None:
        leaf = key.rsplit(".", 1)[-1]
        if leaf not in t:
            return None
        return self.integer(t, key, 0, 63, default=0)

    def choice(
        self, t: dict[str, Any], key: str, choices: tuple[str, ...], default: str | None = None
    ) -> str:
        v = self._get(t, key, default)
        if v not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {v!r}")
        return str(v)

    def pin(self, t: dict[str, Any], key: str, check: bool = True) -> int:
        v = self._get(t, key)
        return self._pin_value(v, key, check)

    def _pin_value(self, v: Any, key: str, check: bool) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 63:
            raise self.error(key, f"must be a BCM GPIO number, got {v!r}")
        if check and v not in self.header:
            raise self.error(
                key,
                f"GPIO {v} is not on this board's header (header GPIOs: "
                f"{min(self.header)}-{max(self.header)})",
            )
        return v

    def pin_list(
        self, t: dict[str, Any], key: str, allow_empty: bool = False, check: bool = True
    ) -> list[int]:
        v = self._get(t, key, [] if allow_empty else None)
        if not isinstance(v, list) or (not v and not allow_empty):
            raise self.error(key, f"must be a {'' if allow_empty else 'non-empty '}list of pins")
        return [self._pin_value(p, f"{key}[{i}]", check) for i, p in enumerate(v)]

    def reserved(self, board: dict[str, Any]) -> dict[int, str]:
        v = board.get("reserved", {})
        if not isinstance(v, dict):
            raise self.error("board.reserved", "must be a table of GPIO number = reason")
        out: dict[int, str] = {}
        for k, why in v.items():
            if not k.isdigit() or not isinstance(why, str):
                raise self.error(f"board.reserved.{k}", "must be <GPIO number> = <reason>")
            out[int(k)] = why
        return out
