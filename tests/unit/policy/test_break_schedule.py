"""Schedules against a brute-force model: any periods (crossing midnight, the week's end,
holidays on either side of midnight) and any local time, including DST change days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from terminald.core.policy import allowed
from terminald.enrolment.model import MINUTES_PER_DAY, Period, WeeklySchedule

PERIODS = st.builds(
    lambda start, length: Period(start, start + length),
    st.integers(0, MINUTES_PER_DAY - 1),
    st.integers(1, MINUTES_PER_DAY),
)
DAY = st.lists(PERIODS, max_size=3).map(tuple)
SCHEDULES = st.builds(
    lambda days, holiday: WeeklySchedule("s", tuple(days), holiday),
    st.lists(DAY, min_size=7, max_size=7),
    DAY,
)
HOLIDAYS = st.frozensets(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=40)


def model(schedule: WeeklySchedule, wall: datetime, holidays: frozenset[date]) -> bool:
    """Brute force: a period of the day it started on, laid on that day's wall clock."""
    for back in (0, 1):
        day = wall.date() - timedelta(days=back)
        midnight = datetime.combine(day, datetime.min.time())
        periods = schedule.holiday if day in holidays else schedule.days[day.weekday()]
        for p in periods:
            start = midnight + timedelta(minutes=p.start)
            end = midnight + timedelta(minutes=p.end)
            if start <= wall.replace(second=0, microsecond=0) < end:
                return True
    return False


@given(
    schedule=SCHEDULES,
    holidays=HOLIDAYS,
    when=st.datetimes(datetime(2026, 1, 2), datetime(2026, 12, 31)),
    zone=st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "America/New_York"]),
)
def test_allowed_matches_the_brute_force_model(
    schedule: WeeklySchedule, holidays: frozenset[date], when: datetime, zone: str
) -> None:
    local = when.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(zone))
    expected = model(schedule, local.replace(tzinfo=None), holidays)
    assert allowed(schedule, local, holidays.__contains__) is expected
