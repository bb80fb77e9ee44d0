"""Weekly schedules: parse a period, and say whether a local time falls in one.

A period belongs to the day it starts on: "22:00-06:00" on Friday admits until Saturday
05:59, and on a holiday the schedule's ``holiday`` periods replace that day's. So a local
time is allowed when a period of its own day covers it, or a period of the day before
runs past midnight over it (the day before's holiday status choosing which periods).
Periods are half-open whole minutes: "08:00-19:00" admits 18:59:59, not 19:00:00.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Final

from terminald.enrolment.model import MINUTES_PER_DAY, Period, WeeklySchedule

_PERIOD: Final = re.compile(r"([0-9]{1,2}):([0-9]{2})-([0-9]{1,2}):([0-9]{2})")


def parse_period(text: str) -> Period:
    """``"HH:MM-HH:MM"`` -> :class:`Period` in minutes. An end at or before the start runs
    past midnight ("22:00-06:00" is Period(1320, 1800); "08:00-08:00" is 24 hours); an
    end of "24:00" is midnight. Raises ValueError naming the text when it is not a period."""
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"period {text!r} is not HH:MM-HH:MM")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"period {text!r} has a time outside 00:00-24:00")
    start, end = sh * 60 + sm, eh * 60 + em
    if end <= start:
        end += MINUTES_PER_DAY
    return Period(start, end)


def format_period(period: Period) -> str:
    """The inverse of :func:`parse_period`: ``Period(1320, 1800)`` -> ``"22:00-06:00"``."""

    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    end = period.end
    if end > MINUTES_PER_DAY or (end == MINUTES_PER_DAY and period.start == 0):
        end -= MINUTES_PER_DAY  # 00:00-24:00 prints as 00:00-00:00, which parses back
    return f"{hhmm(period.start)}-{hhmm(end)}"


def periods_of(
    schedule: WeeklySchedule, day: date, is_holiday: Callable[[date], bool]
) -> tuple[Period, ...]:
    """The periods that start on ``day``: the holiday's on a holiday, else the weekday's."""
    return schedule.holiday if is_holiday(day) else schedule.days[day.weekday()]


def minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


def covers(today: Iterable[Period], yesterday: Iterable[Period], minute: int) -> bool:
    """Whether a period starting today, or one starting yesterday and running past
    midnight, covers ``minute`` (0-1439) of today."""
    return any(p.start <= minute < p.end for p in today) or any(
        minute + MINUTES_PER_DAY < p.end for p in yesterday
    )


def allowed(schedule: WeeklySchedule, local: datetime, is_holiday: Callable[[date], bool]) -> bool:
    """Whether ``local`` (the site's wall-clock time, e.g. ``now.astimezone(tz)``) is inside
    the schedule. Only the wall clock counts: on a DST change day a period means the times
    the clock on the wall shows."""
    day = local.date()
    yesterday = day - timedelta(days=1)
    return covers(
        periods_of(schedule, day, is_holiday),
        periods_of(schedule, yesterday, is_holiday),
        minute_of_day(local),
    )


def every_day(periods: tuple[Period, ...], local: datetime) -> bool:
    """Whether periods that apply every day (a product's hours) cover ``local``; an empty
    tuple means any time."""
    if not periods:
        return True
    return covers(periods, periods, minute_of_day(local))
