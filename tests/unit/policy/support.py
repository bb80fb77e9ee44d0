"""Shared fixtures of the policy tests: a site in Tokyo, people, certificates, a set."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from terminald.core.auth import CardIdentity
from terminald.core.policy import AgeAnswer
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import (
    Calendar,
    Credential,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = ZoneInfo("UTC")
JAPAN = Calendar()
YES = AgeAnswer("valid", True)
ROOT = bytes.fromhex("1a" * 20)
OTHER_ROOT = bytes.fromhex("2b" * 20)


def jst(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    """A Tokyo wall-clock time as an aware datetime in UTC (what APIs carry)."""
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=TOKYO).astimezone(UTC)


def card(serial: int, issuer: bytes = ROOT) -> CardIdentity:
    return CardIdentity(serial, issuer)


def schedule(
    name: str, days: dict[int, tuple[Period, ...]], holiday: tuple[Period, ...] = ()
) -> WeeklySchedule:
    return WeeklySchedule(name, tuple(days.get(d, ()) for d in range(7)), holiday)


def content(
    people: list[Person],
    cards: dict[int, str],
    schedules: tuple[WeeklySchedule, ...] = (),
    calendar: Calendar = JAPAN,
) -> EnrolmentContent:
    """``cards``: serial (under ROOT) -> subject."""
    return EnrolmentContent(
        people={p.subject: p for p in people},
        credentials={(ROOT, s): Credential(ROOT, s, subj) for s, subj in cards.items()},
        schedules={s.name: s for s in schedules},
        calendar=calendar,
    )


SET_ISSUED = jst(2026, 1, 1)
SET_UNTIL = jst(2027, 1, 1)


def enrolment(
    people: list[Person],
    cards: dict[int, str],
    schedules: tuple[WeeklySchedule, ...] = (),
    calendar: Calendar = JAPAN,
) -> MemoryEnrolment:
    return MemoryEnrolment.installed(
        content(people, cards, schedules, calendar), SET_ISSUED, SET_UNTIL
    )


@dataclass
class ScriptedOracle:
    """An age oracle answering from a script, recording every question."""

    answer: AgeAnswer | None = YES
    asked: list[tuple[bytes, int, int, date]] = field(default_factory=list)

    def __call__(
        self, issuer_key_id: bytes, serial: int, age: int, today: date
    ) -> AgeAnswer | None:
        self.asked.append((issuer_key_id, serial, age, today))
        return self.answer


ONE_US = timedelta(microseconds=1)
