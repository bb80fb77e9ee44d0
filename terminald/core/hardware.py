"""The terminal's local hardware, as the core sees it: small Protocols and plain data.

Nothing here imports a hardware library or reads a clock. Inputs arrive as frozen event
dataclasses through a handler the daemon installs (backends call it from their own
threads; the daemon puts the event on its one queue). Outputs are commands whose timing
is data: a blink, a beep sequence or a relay pulse is a tuple of durations in
milliseconds that the adapter plays, so the state machine never sleeps.

Relay convention, for every backend: *energised* means the door is released. The relay
is de-energised at construction, after ``close()``, when the process dies and when the
power fails; fail-safe or fail-secure is chosen by wiring the lock to the relay's NC or
NO contact (hw/README.md), never by keeping the coil energised while idle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

KEYS_3X4 = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
KEYS_4X4 = ("1", "2", "3", "A", "4", "5", "6", "B", "7", "8", "9", "C", "*", "0", "#", "D")


# --- events (hardware -> core) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """One debounced key press: ``0``-``9``, ``*``, ``#`` (and ``A``-``D`` on a 4x4).

    The key is kept out of the repr: a digit may be part of a PIN."""

    key: str = field(repr=False)


class DoorInput(Enum):
    DOOR = "door"  # door contact: active = door open
    REX = "rex"  # request-to-exit button: active = pressed
    TAMPER = "tamper"  # enclosure switch: active = enclosure open or wire cut


@dataclass(frozen=True, slots=True)
class InputChanged:
    """A debounced change of one supervised input; ``active`` as documented on DoorInput."""

    input: DoorInput
    active: bool


@dataclass(frozen=True, slots=True)
class DoorState:
    door_open: bool
    rex_pressed: bool
    tamper: bool

    def active(self, which: DoorInput) -> bool:
        return {
            DoorInput.DOOR: self.door_open,
            DoorInput.REX: self.rex_pressed,
            DoorInput.TAMPER: self.tamper,
        }[which]


# --- output patterns (core -> hardware), all durations in milliseconds -------------------


class Color(Enum):
    OFF = "off"
    GREEN = "green"
    RED = "red"
    AMBER = "amber"


@dataclass(frozen=True, slots=True)
class LightStep:
    color: Color
    ms: int


@dataclass(frozen=True, slots=True)
class LightPattern:
    """Steps played in order; ``repeat`` loops them until the next pattern replaces it.

    A non-repeating pattern holds its last step's colour when it ends.
    """

    steps: tuple[LightStep, ...]
    repeat: bool = False

    def __post_init__(self) -> None:
        _check_steps("LightPattern", [s.ms for s in self.steps], self.repeat)

    @classmethod
    def steady(cls, color: Color) -> LightPattern:
        return cls((LightStep(color, 0),))

    @classmethod
    def blink(cls, color: Color, on_ms: int, off_ms: int) -> LightPattern:
        return cls((LightStep(color, on_ms), LightStep(Color.OFF, off_ms)), repeat=True)


@dataclass(frozen=True, slots=True)
class Beep:
    on_ms: int
    off_ms: int = 0


@dataclass(frozen=True, slots=True)
class BeepPattern:
    """A sequence of beeps played once; the buzzer is silent when it ends."""

    beeps: tuple[Beep, ...]

    def __post_init__(self) -> None:
        _check_steps("BeepPattern", [b.on_ms for b in self.beeps], False)
        if any(b.off_ms < 0 for b in self.beeps):
            raise ValueError("BeepPattern: durations must be >= 0 ms")

    @classmethod
    def of(cls, *on_off_ms: tuple[int, int]) -> BeepPattern:
        return cls(tuple(Beep(on, off) for on, off in on_off_ms))

    @property
    def total_ms(self) -> int:
        return sum(b.on_ms + b.off_ms for b in self.beeps)


def _check_steps(what: str, durations: list[int], repeat: bool) -> None:
    if not durations:
        raise ValueError(f"{what}: at least one step")
    if any(d < 0 for d in durations):
        raise ValueError(f"{what}: durations must be >= 0 ms")
    if repeat and sum(durations) <= 0:
        raise ValueError(f"{what}: a repeating pattern needs a positive total duration")


# --- the Protocols ------------------------------------------------------------------------

KeyHandler = Callable[[KeyPressed], None]
InputHandler = Callable[[InputChanged], None]


class Keypad(Protocol):
    """A scanned, debounced keypad. The handler may be called from a backend thread."""

    @property
    def keys(self) -> tuple[str, ...]: ...

    def set_handler(self, handler: KeyHandler | None) -> None: ...

    def close(self) -> None: ...


class Indicator(Protocol):
    """Status light(s): discrete green/red/amber LEDs or one RGB LED."""

    def show(self, pattern: LightPattern) -> None:
        """Replace whatever is playing with ``pattern``; returns at once."""
        ...

    def close(self) -> None:
        """Stop and switch every LED off."""
        ...


class Buzzer(Protocol):
    def play(self, pattern: BeepPattern) -> None:
        """Replace whatever is playing with ``pattern``; returns at once."""
        ...

    def close(self) -> None: ...


class Relay(Protocol):
    """The lock relay. Energised = door released (module docstring)."""

    @property
    def energised(self) -> bool: ...

    def pulse(self, ms: int) -> None:
        """Energise for ``ms`` milliseconds, then de-energise; returns at once."""
        ...

    def energise(self) -> None:
        """Energise until ``de_energise`` (emergency-open); cancels a running pulse."""
        ...

    def de_energise(self) -> None:
        """De-energise now; cancels a running pulse."""
        ...

    def close(self) -> None:
        """De-energise and release the pin."""
        ...


class DoorInputs(Protocol):
    """Door contact, request-to-exit and tamper, debounced, as states and changes."""

    def state(self) -> DoorState: ...

    def set_handler(self, handler: InputHandler | None) -> None: ...

    def close(self) -> None: ...
