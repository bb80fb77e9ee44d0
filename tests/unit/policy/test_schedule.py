"""Weekly schedules: periods across midnight and the week end, holidays, parsing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.core.policy.schedule import allowed, every_day, format_period, parse_period
from terminald.enrolment.model import MINUTES_PER_DAY, Period

from .support import TOKYO, schedule

FRI, SAT, SUN, MON = 4, 5, 6, 0
NO_HOLIDAYS = frozenset[date]()


def local(y: int, m: int, d: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=TOKYO)


def never(day: date) -> bool:
    return False


def test_parse_period_reads_hh_mm_and_runs_past_midnight() -> None:
    assert parse_period("08:00-19:00") == Period(480, 1140)
    assert parse_period("22:00-06:00") == Period(1320, 1800)
    assert parse_period("8:30-24:00") == Period(510, 1440)
    assert parse_period("00:00-00:00") == Period(0, 1440)  # the whole day
    assert parse_period(" 09:00-09:00 ") == Period(540, 1980)  # 24 hours from 09:00


@pytest.mark.parametrize(
    "text",
    [
        "",
        "8-19",
        "08:00",
        "25:00-06:00",
        "08:60-09:00",
        "24:00-06:00",
        "08:00-24:01",
        "08:00–19:00",
        "a8:00-19:00",
    ],
)
def test_parse_period_names_bad_text(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        parse_period(text)


@given(st.integers(0, MINUTES_PER_DAY - 1), st.integers(1, MINUTES_PER_DAY))
def test_format_period_round_trips(start: int, length: int) -> None:
    period = Period(start, start + length)
    assert parse_period(format_period(period)) == period


def test_friday_night_period_admits_saturday_morning_until_its_end() -> None:
    night = schedule("night", {FRI: (parse_period("22:00-06:00"),)})
    # 2026-11-27 is a Friday.
    assert not allowed(night, local(2026, 11, 27, 21, 59), never)
    assert allowed(night, local(2026, 11, 27, 22, 0), never)
    assert allowed(night, local(2026, 11, 28, 5, 59, 59), never)
    assert not allowed(night, local(2026, 11, 28, 6, 0), never)
    # Saturday has no period of its own: its 22:00 is closed.
    assert not allowed(night, local(2026, 11, 28, 22, 0), never)
    # The period belongs to Friday: Thursday night is closed.
    assert not allowed(night, local(2026, 11, 27, 1, 0), never)


def test_sunday_night_period_runs_over_the_week_end_into_monday() -> None:
    sunday = schedule("sunday-night", {SUN: (parse_period("22:00-06:00"),)})
    # 2026-11-29 is a Sunday, 2026-11-30 a Monday: days[6] then days[0].
    assert allowed(sunday, local(2026, 11, 29, 23, 0), never)
    assert allowed(sunday, local(2026, 11, 30, 5, 59), never)
    assert not allowed(sunday, local(2026, 11, 30, 6, 0), never)
    assert not allowed(sunday, local(2026, 11, 30, 22, 0), never)  # Monday has none


def test_several_periods_a_day_leave_the_gap_closed() -> None:
    sat = schedule("sat", {SAT: (parse_period("09:00-12:00"), parse_period("13:00-15:00"))})
    assert allowed(sat, local(2026, 11, 28, 11, 59), never)
    assert not allowed(sat, local(2026, 11, 28, 12, 30), never)
    assert allowed(sat, local(2026, 11, 28, 13, 0), never)
    assert not allowed(sat, local(2026, 11, 28, 15, 0), never)


def test_a_holiday_replaces_the_weekday_periods() -> None:
    office = schedule(
        "office",
        {MON: (parse_period("08:00-19:00"),)},
        holiday=(parse_period("10:00-12:00"),),
    )
    holiday = date(2026, 11, 23)  # a Monday

    def is_holiday(day: date) -> bool:
        return day == holiday

    assert allowed(office, local(2026, 11, 30, 9, 0), is_holiday)  # an ordinary Monday
    assert not allowed(office, local(2026, 11, 23, 9, 0), is_holiday)
    assert allowed(office, local(2026, 11, 23, 11, 0), is_holiday)
    assert not allowed(office, local(2026, 11, 23, 12, 0), is_holiday)


def test_the_day_before_decides_which_of_its_periods_run_past_midnight() -> None:
    # Sunday's night shift runs into Monday; if Sunday is a holiday it is closed (empty
    # holiday periods), whatever Monday is; if Monday is a holiday, Sunday's still runs.
    night = schedule("night", {SUN: (parse_period("22:00-06:00"),)})
    sunday, monday = date(2026, 11, 22), date(2026, 11, 23)
    assert not allowed(night, local(2026, 11, 23, 5, 0), lambda d: d == sunday)
    assert allowed(night, local(2026, 11, 23, 5, 0), lambda d: d == monday)


def test_every_day_hours_for_a_product() -> None:
    alcohol = (parse_period("05:00-23:00"),)
    assert every_day((), local(2026, 11, 28, 3, 0))  # no hours: any time
    assert every_day(alcohol, local(2026, 11, 28, 22, 59))
    assert not every_day(alcohol, local(2026, 11, 28, 23, 0))
    assert not every_day(alcohol, local(2026, 11, 29, 4, 59))
    assert every_day(alcohol, local(2026, 11, 29, 5, 0))
    late = (parse_period("20:00-02:00"),)
    assert every_day(late, local(2026, 11, 29, 1, 59))
    assert not every_day(late, local(2026, 11, 29, 2, 0))


@given(
    start=st.integers(0, MINUTES_PER_DAY - 1),
    length=st.integers(1, MINUTES_PER_DAY),
    offset=st.integers(-MINUTES_PER_DAY, 2 * MINUTES_PER_DAY - 1),
    weekday=st.integers(0, 6),
)
def test_a_period_allows_exactly_the_minutes_inside_it(
    start: int, length: int, offset: int, weekday: int
) -> None:
    """One period on one weekday; a time ``offset`` minutes from that day's midnight
    (the day before, the day, the day after) is allowed iff start <= offset < end."""
    period = Period(start, start + length)
    one = schedule("one", {weekday: (period,)})
    day = date(2026, 11, 23) + timedelta(days=weekday)  # 2026-11-23 is a Monday
    midnight = datetime(day.year, day.month, day.day, tzinfo=TOKYO)
    when = midnight + timedelta(minutes=offset)  # Tokyo has no DST: wall minutes = minutes
    assert allowed(one, when, never) == (period.start <= offset < period.end)
