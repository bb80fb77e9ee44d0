"""What a terminal's policy is configured to do: its purpose, gate, vending and attendance.

Built by the daemon's config (``config_policy.py``) and handed to :class:`Policy`. Every
class validates itself, so a bad value is a ``ValueError`` naming the field, never a
policy that behaves strangely at the door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from terminald.enrolment.model import Period

PURPOSES: Final = ("gate", "vend", "attendance")
PASSBACK_ROLES: Final = ("entry", "exit")
WHEN_UNREACHABLE: Final = ("admit", "refuse")
ATTENDANCE_MODES: Final = ("keys", "toggle", "auto")
KEYS: Final = ("A", "B", "C", "D")  # the 4x4 keypad's function keys
MAX_AGE: Final = 150  # years: any larger threshold is a typo
MAX_NAME: Final = 64  # characters of a product or terminal name
MAX_GRACE: Final = timedelta(days=366)  # past a set's valid_until: any longer is a typo


def _age(value: object, what: str) -> None:
    """An age threshold is an int 1-MAX_AGE: ``True`` would be 1 (no age check at all)."""
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_AGE
    ):
        raise ValueError(f"{what} must be an integer 1-{MAX_AGE}, not {value!r}")


def _groups(value: object, what: str) -> None:
    """A frozenset of names: a string would be a set of its letters (and ``&`` with a
    person's groups would raise at every tap)."""
    if not isinstance(value, frozenset) or not all(isinstance(g, str) and g for g in value):
        raise ValueError(f"{what} must be a frozenset of non-empty names, not {value!r}")


@dataclass(frozen=True)
class PassbackSettings:
    """Anti-passback with one partner terminal (an entry gate pairs with an exit gate).

    ``reset`` is the local time of day at which every subject's passages are forgotten.
    ``partner_timeout_s``: a partner last heard of longer ago than this is unreachable;
    then ``when_unreachable`` says whether a decision that depends on it admits (marked
    ``("passback_check", "unverified")``) or refuses ``passback_partner_unreachable``."""

    role: str
    partner: str
    reset: time = time(0, 0)
    when_unreachable: str = "admit"
    partner_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.role not in PASSBACK_ROLES:
            raise ValueError(f"passback role must be entry or exit, not {self.role!r}")
        if not self.partner or len(self.partner) > MAX_NAME:
            raise ValueError("passback partner must name a terminal (1-64 characters)")
        if self.when_unreachable not in WHEN_UNREACHABLE:
            raise ValueError(
                f"passback when_unreachable must be admit or refuse, not {self.when_unreachable!r}"
            )
        if self.reset.tzinfo is not None:
            raise ValueError("passback reset is a local time of day, without a time zone")
        if not 0 < self.partner_timeout_s <= 86400:
            raise ValueError("passback partner_timeout_s must be in (0, 86400] seconds")

    @property
    def opposite(self) -> str:
        return "exit" if self.role == "entry" else "entry"


@dataclass(frozen=True)
class GateSettings:
    """The door groups this gate admits (empty: any enrolled person) and anti-passback."""

    groups: frozenset[str] = frozenset()
    passback: PassbackSettings | None = None

    def __post_init__(self) -> None:
        _groups(self.groups, "gate groups")


@dataclass(frozen=True)
class Product:
    """One product on a function key. ``age`` is its threshold in years (None: no age
    check; 20 for alcohol and tobacco in Japan). ``pin = False`` lets a holder buy without
    the PIN, which proves neither that the card is present nor that it is the holder's:
    off unless the operator says so. ``hours``: local periods of every day when it may be
    sold (empty: any time; alcohol machines stop 23:00-05:00, National Tax Agency FAQ)."""

    key: str
    name: str
    age: int | None = None
    pin: bool = True
    hours: tuple[Period, ...] = ()

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise ValueError(f"product key must be one of A-D, not {self.key!r}")
        if not self.name or len(self.name) > MAX_NAME:
            raise ValueError(f"product {self.key}: name must be 1-64 characters")
        _age(self.age, f"product {self.key}: age")
        if not isinstance(self.pin, bool):
            raise ValueError(f"product {self.key}: pin must be True or False, not {self.pin!r}")
        if any(not isinstance(p, Period) for p in self.hours):
            raise ValueError(f"product {self.key}: hours must be periods")


@dataclass(frozen=True)
class VendingSettings:
    """The products (at most one per key), or none and the machine's own age threshold."""

    products: tuple[Product, ...] = ()
    machine_age: int | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(p, Product) for p in self.products):
            raise ValueError("vending products must be Product values")
        keys = [p.key for p in self.products]
        if len(set(keys)) != len(keys):
            raise ValueError(f"vending products: a key is used twice ({', '.join(keys)})")
        _age(self.machine_age, "vending machine_age")

    def product(self, key: str) -> Product | None:
        return next((p for p in self.products if p.key == key), None)


@dataclass(frozen=True)
class AttendanceSettings:
    """``mode``: "keys" (a key A-D must be pressed), "toggle" (clock in / out by the last
    event), "auto" (the key when one was pressed, else toggle). ``door_groups``: the door
    opens for a person sharing one of them (empty: it never opens)."""

    mode: str = "auto"
    door_groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.mode not in ATTENDANCE_MODES:
            raise ValueError(f"attendance mode must be keys, toggle or auto, not {self.mode!r}")
        _groups(self.door_groups, "attendance door_groups")


@dataclass(frozen=True)
class PolicySettings:
    """The terminal's policy. ``enrolment_required``: only enrolled people pass (access
    policy "enrolment" or "enrolled"); else any genuine card (a vending machine's
    customers). ``enrolment_grace``: how long past the installed set's ``valid_until``
    it is still used; after that everyone is refused ``enrolment_stale``."""

    purpose: str
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))
    enrolment_required: bool = True
    enrolment_grace: timedelta = timedelta(hours=24)
    gate: GateSettings = GateSettings()
    vending: VendingSettings = VendingSettings()
    attendance: AttendanceSettings = AttendanceSettings()

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be gate, vend or attendance, not {self.purpose!r}")
        if not isinstance(self.timezone, ZoneInfo):
            raise ValueError("timezone must be a zoneinfo.ZoneInfo (an IANA name)")
        if not timedelta(0) <= self.enrolment_grace <= MAX_GRACE:
            raise ValueError(f"enrolment_grace must be 0 to {MAX_GRACE.days} days")
