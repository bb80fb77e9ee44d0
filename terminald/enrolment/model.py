"""The enrolment's vocabulary: people, their certificates, schedules and the calendar.

Pure data shared by the set's codec (``enrolment/``), its SQLite store
(``store/enrolment_db.py``) and the policies (``core/policy``).

A person is a *subject*: the back office's stable id for one human (an employee number,
a member id). Certificates point at subjects by their identity (issuer key id, serial):
serials are unique per issuer only, and a renewed card brings a new certificate, which the
back office links to the same subject (J-LIS's 新旧シリアル番号紐付け; reference/uses.md §1).
So several certificates may name one person, and a certificate that names no one is an
``unknown_certificate``.

Age is kept only as an attestation "at least ``age`` years old from ``since``" derived in
the back office: never a birth date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, Protocol

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MAX_SUBJECT: Final = 64  # characters
MAX_LABEL: Final = 64
MAX_GROUPS: Final = 32  # per person
MAX_PERIODS: Final = 8  # per day of a schedule
MINUTES_PER_DAY: Final = 24 * 60


@dataclass(frozen=True, slots=True)
class AgeAttestation:
    """The holder is at least ``age`` years old on ``since`` and every day after it."""

    age: int
    since: date


@dataclass(frozen=True, slots=True)
class Person:
    """One enrolled human. ``groups`` are door groups and roles alike (a gate admits a
    person sharing one of its groups; an attendance clock opens its door for its roles).
    ``schedule`` names a :class:`WeeklySchedule` (None: at any time). ``valid_from`` is
    inclusive and ``valid_until`` exclusive, both aware datetimes (None: open-ended)."""

    subject: str
    label: str = ""
    groups: frozenset[str] = frozenset()
    schedule: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    ages: tuple[AgeAttestation, ...] = ()


@dataclass(frozen=True, slots=True)
class Credential:
    """A certificate linked to a person."""

    issuer_key_id: bytes
    serial: int
    subject: str

    @property
    def key(self) -> tuple[bytes, int]:
        return self.issuer_key_id, self.serial


@dataclass(frozen=True, slots=True)
class Period:
    """Local minutes from the start of the day the period begins: ``0 <= start < 1440``,
    ``start < end <= start + 1440``. An ``end`` past 1440 runs into the next day
    ("22:00-06:00" is Period(1320, 1800)), and belongs to the day it started on."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < MINUTES_PER_DAY or not self.start < self.end <= (
            self.start + MINUTES_PER_DAY
        ):
            raise ValueError(f"bad period {self.start}-{self.end} (minutes)")


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """When a schedule group may pass: periods per weekday (``days[0]`` is Monday), and
    ``holiday`` periods that replace the weekday's on a holiday of the calendar."""

    name: str
    days: tuple[tuple[Period, ...], ...]  # 7 entries
    holiday: tuple[Period, ...] = ()

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("a weekly schedule has 7 days")


@dataclass(frozen=True, slots=True)
class Calendar:
    """The site's holidays: the back office's own list, or (``dates`` None) the public
    holidays of ``country`` from the ``holidays`` library (default Japan)."""

    dates: frozenset[date] | None = None
    country: str = "JP"


@dataclass(frozen=True, slots=True)
class SetInfo:
    """What an installed enrolment set is: its version, times, content digest, signer."""

    version: int
    issued_at: datetime
    valid_until: datetime
    digest: bytes  # SHA-256 of the set's canonical content (enrolment/codec.py)
    signer: bytes = b""  # key id of the back-office key that signed it
    people: int = 0
    credentials: int = 0


@dataclass(frozen=True, slots=True)
class EnrolmentContent:
    """A whole set's content (what a full set carries, and a delta rebuilds)."""

    people: dict[str, Person] = field(default_factory=dict)
    credentials: dict[tuple[bytes, int], Credential] = field(default_factory=dict)
    schedules: dict[str, WeeklySchedule] = field(default_factory=dict)
    calendar: Calendar = Calendar()


class Enrolment(Protocol):
    """What the policies read; implemented by ``store/enrolment_db.EnrolmentStore`` (and
    by an in-memory set in tests). Every method is safe from any thread and never blocks
    on the event loop's behalf (the card worker calls them)."""

    def info(self) -> SetInfo | None:
        """The installed set, or None when none is (or the store cannot be read)."""
        ...

    def lookup(self, issuer_key_id: bytes, serial: int) -> Person | None:
        """The person this certificate is linked to, or None."""
        ...

    def schedule(self, name: str) -> WeeklySchedule | None: ...

    def calendar(self) -> Calendar: ...

    def age_yes(self, issuer_key_id: bytes, serial: int) -> tuple[AgeAttestation, ...]:
        """Online answers kept for this certificate: "at least N as of D" (only yeses)."""
        ...

    def remember_age_yes(self, issuer_key_id: bytes, serial: int, yes: AgeAttestation) -> None:
        """Keep an online yes (called off the event loop; may write the database)."""
        ...
