"""Enrolment contents for tests: a small fixed one, and hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from terminald.enrolment.bundle import encode_set
from terminald.enrolment.model import (
    AgeAttestation,
    Calendar,
    Credential,
    EnrolmentContent,
    Period,
    Person,
    WeeklySchedule,
)

ROOT_A = bytes.fromhex("1ac1" * 10)
ROOT_B = bytes.fromhex("2bd2" * 10)
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
OFFICE = WeeklySchedule(
    "office-hours",
    tuple((Period(480, 1140),) if d < 5 else () for d in range(7)),
    (),
)


def small_content(extra: dict[str, int] | None = None) -> EnrolmentContent:
    """Two people (E1 with a renewed second card), one schedule, a calendar of dates;
    ``extra`` adds people (subject → serial under ROOT_A)."""
    people = {
        "E1": Person(
            "E1",
            "Sato Hanako",
            frozenset({"office", "lab"}),
            "office-hours",
            datetime(2026, 3, 31, 15, 0, tzinfo=UTC),
            datetime(2027, 3, 31, 15, 0, tzinfo=UTC),
            (AgeAttestation(20, date(2026, 5, 1)),),
        ),
        "E2": Person("E2", groups=frozenset({"office"})),
    }
    credentials = {
        (ROOT_A, 4660): Credential(ROOT_A, 4660, "E1"),
        (ROOT_B, 2**70): Credential(ROOT_B, 2**70, "E1"),
        (ROOT_A, 4661): Credential(ROOT_A, 4661, "E2"),
    }
    for subject, serial in (extra or {}).items():
        people[subject] = Person(subject)
        credentials[ROOT_A, serial] = Credential(ROOT_A, serial, subject)
    return EnrolmentContent(
        people,
        credentials,
        {"office-hours": OFFICE},
        Calendar(frozenset({date(2026, 12, 29), date(2026, 12, 30)})),
    )


def signed(
    content: EnrolmentContent,
    key: Ed25519PrivateKey,
    version: int,
    *,
    base: tuple[int, EnrolmentContent] | None = None,
    issued: datetime | None = None,
    days: float = 30,
) -> bytes:
    at = issued if issued is not None else NOW + timedelta(seconds=version)
    return encode_set(
        content,
        version=version,
        issued_at=at,
        valid_until=at + timedelta(days=days),
        signing_key=key,
        base=base,
    )


# -- strategies -------------------------------------------------------------------------

NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)
TIMES = st.integers(0, 4_000_000_000).map(lambda s: datetime.fromtimestamp(s, UTC))
PERIODS = st.integers(0, 1439).flatmap(
    lambda start: st.integers(start + 1, start + 1440).map(lambda end: Period(start, end))
)
DAY = st.lists(PERIODS, max_size=3, unique=True).map(
    lambda ps: tuple(sorted(ps, key=lambda p: (p.start, p.end)))
)


@st.composite
def contents(draw: st.DrawFn, max_people: int = 12) -> EnrolmentContent:
    schedule_names = draw(st.lists(NAMES, max_size=3, unique=True))
    schedules = {
        n: WeeklySchedule(n, tuple(draw(DAY) for _ in range(7)), draw(DAY)) for n in schedule_names
    }
    subjects = draw(st.lists(NAMES, max_size=max_people, unique=True))
    people = {}
    credentials = {}
    issuers = [ROOT_A, ROOT_B, bytes([7])]
    for subject in subjects:
        start = draw(st.none() | TIMES)
        end = draw(st.none() | TIMES)
        if start is not None and end is not None and end <= start:
            end = None
        ages = draw(
            st.lists(
                st.builds(AgeAttestation, st.integers(1, 150), st.dates(date(1900, 1, 1))),
                max_size=2,
                unique=True,
            )
        )
        people[subject] = Person(
            subject,
            draw(st.sampled_from(["", "Label", "佐藤 花子"])),
            frozenset(draw(st.lists(NAMES, max_size=3))),
            draw(st.none() | st.sampled_from(schedule_names)) if schedule_names else None,
            start,
            end,
            tuple(sorted(ages, key=lambda a: (a.age, a.since))),
        )
        for _ in range(draw(st.integers(0, 3))):
            key = (
                draw(st.sampled_from(issuers)),
                draw(st.integers(0, 2**64 + 5) | st.integers(0, 2**159)),
            )
            credentials[key] = Credential(key[0], key[1], subject)
    dates = draw(
        st.none() | st.frozensets(st.dates(date(2000, 1, 1), date(2100, 1, 1)), max_size=4)
    )
    return EnrolmentContent(people, credentials, schedules, Calendar(dates, "JP"))
