"""What the terminal state machine asks the daemon to do: plain frozen data.

The daemon executes each command against the card, the GPIO backends and the log.
A command that carries a PIN never shows it in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terminald.core.hardware import BeepPattern, LightPattern
from terminald.core.reasons import Reason


@dataclass(frozen=True, slots=True)
class RunChecks:
    """Hold the present card and run ``Authenticator.begin``; answer with ChecksDone.

    ``selection``: the key ``A``-``D`` chosen before the tap on a vending or attendance
    terminal (the product, or the attendance type), for the policy; None when none was.
    """

    selection: str | None = None


@dataclass(frozen=True, slots=True)
class RunVerify:
    """Run ``Authenticator.finish`` with this PIN; answer with VerifyDone."""

    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EndTransaction:
    """Release the card (unpowering it). Safe to issue when no card is held."""


@dataclass(frozen=True, slots=True)
class ShowLight:
    pattern: LightPattern


@dataclass(frozen=True, slots=True)
class PlayBeep:
    pattern: BeepPattern


@dataclass(frozen=True, slots=True)
class PulseRelay:
    ms: int


@dataclass(frozen=True, slots=True)
class HoldRelay:
    """Energise until ReleaseRelay (emergency open; a vend's enable line)."""


@dataclass(frozen=True, slots=True)
class ReleaseRelay:
    """De-energise now (relock)."""


@dataclass(frozen=True, slots=True)
class AlarmChanged:
    alarm: str
    active: bool


@dataclass(frozen=True, slots=True)
class Evidence:
    """What proves a grant: the signed challenge, the card's signature, its certificate."""

    message: bytes
    signature: bytes
    certificate: bytes


@dataclass(frozen=True, slots=True)
class Record:
    """One line for the log / audit trail. Never carries a PIN."""

    kind: str
    detail: str
    reason: Reason | None = None
    serial: int | None = None
    # With the serial, the certificate's identity: serials are unique per issuer only.
    issuer_key_id: bytes | None = None
    evidence: Evidence | None = field(default=None, repr=False, compare=False)
    # The policy's part (AuthResult.subject / attrs / pin_verified), for the audit row.
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    pin_verified: bool = False


Command = (
    RunChecks
    | RunVerify
    | EndTransaction
    | ShowLight
    | PlayBeep
    | PulseRelay
    | HoldRelay
    | ReleaseRelay
    | AlarmChanged
    | Record
)
