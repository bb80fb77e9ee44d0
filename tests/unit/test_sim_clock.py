"""The scenario clock: where a ``clock`` step moves the daemon's wall clock, and the clock.

Pure: ``next_instant`` from a given now and zone, ``SimClock`` on a fixed source.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.sim.sim_clock import (
    WEEKDAYS,
    ClockBackwards,
    SimClock,
    ahead_text,
    next_instant,
    parse_clock,
)

TOKYO = ZoneInfo("Asia/Tokyo")


def local(text: str, zone: ZoneInfo = TOKYO) -> datetime:
    """An aware instant from a local ISO text."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def moved(spec: str, now: datetime, zone: ZoneInfo = TOKYO) -> str:
    """Where ``spec`` moves ``now``, as local ``Www YYYY-MM-DD HH:MM``."""
    return f"{next_instant(parse_clock(spec), now, zone).astimezone(zone):%a %Y-%m-%d %H:%M}"


# 2026-11-29 is a Sunday.
@pytest.mark.parametrize(
    ("now", "spec", "expected"),
    [
        ("2026-11-28T12:00", "sun 10:00", "Sun 2026-11-29 10:00"),  # tomorrow
        ("2026-11-29T09:59", "sun 10:00", "Sun 2026-11-29 10:00"),  # in a minute
        ("2026-11-29T10:00", "sun 10:00", "Sun 2026-12-06 10:00"),  # that minute: next week
        ("2026-11-29T10:01", "sun 10:00", "Sun 2026-12-06 10:00"),
        ("2026-11-29T23:30", "mon 00:15", "Mon 2026-11-30 00:15"),  # across midnight
        ("2026-11-29T23:00", "mon 08:00", "Mon 2026-11-30 08:00"),  # across the week end
        ("2026-11-30T08:00", "sun 23:59", "Sun 2026-12-06 23:59"),  # to the week's end
        ("2026-12-31T23:50", "fri 00:00", "Fri 2027-01-01 00:00"),  # across the year
        ("2026-11-29T10:00", "+1d", "Mon 2026-11-30 10:00"),
        ("2026-11-29T23:45", "+30m", "Mon 2026-11-30 00:15"),
        ("2026-11-29T23:00", "+2h", "Mon 2026-11-30 01:00"),
        ("2026-11-29T10:00", "2026-12-24T09:00", "Thu 2026-12-24 09:00"),
        ("2026-11-29T10:00", "2026-11-29T10:00", "Sun 2026-11-29 10:00"),  # now: not back
    ],
)
def test_the_next_local_instant(now: str, spec: str, expected: str) -> None:
    assert moved(spec, local(now)) == expected


def test_the_weekday_is_the_local_one_not_utc() -> None:
    # 2026-11-29T16:00Z is Monday 01:00 in Tokyo, still Sunday in UTC.
    now = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert moved("mon 02:00", now) == "Mon 2026-11-30 02:00"
    assert moved("mon 00:30", now) == "Mon 2026-12-07 00:30"  # Tokyo's Monday 00:30 is past
    assert moved("mon 00:30", now, ZoneInfo("UTC")) == "Mon 2026-11-30 00:30"
    assert next_instant(parse_clock("mon 02:00"), now, TOKYO).tzinfo is UTC


def test_a_day_ahead_is_24_hours_even_across_a_dst_change() -> None:
    new_york = ZoneInfo("America/New_York")
    now = local("2026-03-07T12:00", new_york)  # the clocks go forward on 2026-03-08
    target = next_instant(parse_clock("+1d"), now, new_york)
    assert target - now == timedelta(days=1)
    assert f"{target.astimezone(new_york):%H:%M}" == "13:00"
    # A weekday time is local: Sunday 12:00 EDT, 23 h later.
    sunday = next_instant(parse_clock("sun 12:00"), now, new_york)
    assert sunday - now == timedelta(hours=23)


def test_a_local_time_in_the_past_is_an_error() -> None:
    now = local("2026-11-29T10:00")
    with pytest.raises(ClockBackwards, match="a clock never goes back"):
        next_instant(parse_clock("2026-11-29T09:59"), now, TOKYO)
    # The same local time read in a zone where it is still to come is fine.
    assert next_instant(parse_clock("2026-11-29T09:59"), now, ZoneInfo("UTC")) > now


@given(
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    day=st.sampled_from(WEEKDAYS),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_a_weekday_time_is_within_a_week_ahead_and_is_that_time(
    now: datetime, day: str, hour: int, minute: int
) -> None:
    target = next_instant(parse_clock(f"{day} {hour:02d}:{minute:02d}"), now, TOKYO)
    assert now < target <= now + timedelta(days=7)
    there = target.astimezone(TOKYO)
    assert (WEEKDAYS[there.weekday()], there.hour, there.minute, there.second) == (
        day,
        hour,
        minute,
        0,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("monday 08:30", "not a time to move the clock to"),
        ("mon 8:30", "not a time to move the clock to"),
        ("mon 24:00", "not a time to move the clock to"),
        ("Mon 08:30", "not a time to move the clock to"),
        ("2026-12-24", "not a time to move the clock to"),
        ("2026-12-24T09:00+09:00", "not a time to move the clock to"),  # no offset
        ("2026-12-24T09:00Z", "not a time to move the clock to"),
        ("2026-02-30T09:00", "is not a date and time"),
        ("+0d", "not a time to move the clock to"),
        ("-1d", "not a time to move the clock to"),
        ("+1w", "not a time to move the clock to"),
        ("+3661d", "more than 3660 days ahead"),
    ],
)
def test_a_bad_clock_value_says_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_clock(text)


def test_the_forms_parse() -> None:
    assert parse_clock("sat 09:05").weekday == 5
    assert parse_clock("2026-12-24T09:00:30").local == datetime(2026, 12, 24, 9, 0, 30)
    assert parse_clock("+90m").ahead == timedelta(minutes=90)
    assert parse_clock("+3660d").ahead == timedelta(days=3660)


# -- the clock itself ------------------------------------------------------------------------


class FixedSource:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_the_clock_jumps_forward_and_runs_on() -> None:
    source = FixedSource(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))  # Sunday 10:00 JST
    clock = SimClock(source)
    assert clock() == source.at and clock.offset == timedelta(0)
    target = clock.move(parse_clock("mon 08:30"), TOKYO)
    assert target == local("2026-11-30T08:30") and clock() == target
    source.at += timedelta(minutes=5)  # the real time runs on; the clock with it
    assert clock() == target + timedelta(minutes=5)
    clock.move(parse_clock("+1d"), TOKYO)
    assert clock() == local("2026-12-01T08:35")
    assert clock.offset == local("2026-12-01T08:35") - source.at


def test_the_clock_never_goes_back() -> None:
    clock = SimClock(FixedSource(datetime(2026, 11, 29, 1, 0, tzinfo=UTC)))
    clock.move(parse_clock("+1d"), TOKYO)
    before = clock()
    with pytest.raises(ClockBackwards):
        clock.move(parse_clock("2026-11-29T12:00"), TOKYO)  # after the real time, not the clock
    with pytest.raises(ClockBackwards):
        clock.jump_to(before - timedelta(seconds=1))
    assert clock() == before
    clock.jump_to(before + timedelta(hours=1))
    assert clock() == before + timedelta(hours=1)


def test_readers_on_other_threads_never_see_it_go_back() -> None:
    clock = SimClock()
    seen: list[datetime] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(clock())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(200):
            clock.move(parse_clock("+1m"), TOKYO)
    finally:
        done.set()
        reader.join()
    assert seen == sorted(seen)
    assert clock.offset >= timedelta(minutes=200)


def test_the_offset_in_words() -> None:
    assert ahead_text(timedelta(0)) == "0 min ahead of the real time"
    assert ahead_text(timedelta(days=6, hours=21, minutes=14, seconds=59)) == (
        "6 d 21 h 14 min ahead of the real time"
    )
    assert ahead_text(timedelta(days=1)) == "1 d ahead of the real time"
