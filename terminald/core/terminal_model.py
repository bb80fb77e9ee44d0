"""The terminal state machine's data (core.terminal): its settings, modes and states,
and the events the daemon feeds it besides the hardware events of core.hardware."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.door import DoorSettings
from terminald.core.hardware import InputChanged, KeyPressed

PURPOSES = ("gate", "vend", "attendance")


@dataclass(frozen=True)
class TerminalSettings:
    """Timings in seconds. ``purpose``: one of PURPOSES (ValueError otherwise).
    ``selection_timeout_s``: how long a key A-D chosen before the tap is kept;
    ``vend_enable_s``: how long a vend grant holds the vend-enable line at most;
    ``vend_complete_wired``: the machine's vend-complete input ends it earlier."""

    pin_timeout_s: float = 20.0
    verdict_hold_s: float = 3.0
    door: DoorSettings = field(default_factory=DoorSettings)
    purpose: str = "gate"
    selection_timeout_s: float = 10.0
    vend_enable_s: float = 30.0
    vend_complete_wired: bool = False

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {self.purpose!r}")
        if self.selection_timeout_s <= 0 or self.vend_enable_s <= 0:
            raise ValueError("selection_timeout_s and vend_enable_s must be > 0 seconds")


class Mode(Enum):
    NORMAL = "normal"
    LOCKDOWN = "lockdown"
    EMERGENCY_OPEN = "emergency_open"


class State(Enum):
    IDLE = "idle"
    CHECKING = "checking"
    PIN_ENTRY = "pin_entry"
    VERIFYING = "verifying"
    VERDICT = "verdict"  # showing the verdict; the card may still lie on the reader


@dataclass(frozen=True, slots=True)
class CardArrived:
    pass


@dataclass(frozen=True, slots=True)
class CardLeft:
    pass


@dataclass(frozen=True, slots=True)
class PinPrompt:
    """``begin`` ended in a PIN request."""

    identity: CardIdentity
    tries_left: int


@dataclass(frozen=True, slots=True)
class ChecksDone:
    outcome: AuthResult | PinPrompt


@dataclass(frozen=True, slots=True)
class VerifyDone:
    result: AuthResult


@dataclass(frozen=True, slots=True)
class ModeSet:
    mode: Mode


Event = CardArrived | CardLeft | ChecksDone | VerifyDone | ModeSet | KeyPressed | InputChanged
