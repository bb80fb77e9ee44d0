"""Holidays: Japan's public holidays from the library, or the back office's own dates."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from terminald.core.policy.calendar import CalendarCache, HolidayCalendar
from terminald.enrolment.model import Calendar


def test_japanese_public_holidays_by_default() -> None:
    jp = HolidayCalendar(Calendar())
    assert jp.is_holiday(date(2026, 11, 23))  # 勤労感謝の日, Labour Thanksgiving Day
    assert "Thanksgiving" in jp.name(date(2026, 11, 23))
    assert jp.is_holiday(date(2026, 1, 1))
    assert not jp.is_holiday(date(2026, 11, 24))
    assert not jp.is_holiday(date(2026, 12, 29))  # a company holiday, not a public one
    # Years load as they are asked for (the library's lazy expansion).
    assert jp.is_holiday(date(2031, 11, 24))  # 11-23 is a Sunday: the substitute Monday


def test_the_back_office_calendar_replaces_the_public_one() -> None:
    own = HolidayCalendar(Calendar(dates=frozenset({date(2026, 12, 29), date(2026, 12, 30)})))
    assert own.is_holiday(date(2026, 12, 29))
    assert not own.is_holiday(date(2026, 11, 23))  # the public holiday is not in the list
    assert own.name(date(2026, 12, 29)) == ""
    assert not HolidayCalendar(Calendar(dates=frozenset())).is_holiday(date(2026, 1, 1))


def test_another_country() -> None:
    us = HolidayCalendar(Calendar(country="US"))
    assert us.is_holiday(date(2026, 7, 4))
    assert not us.is_holiday(date(2026, 11, 23))


def test_an_unknown_country_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="'XX'"):
        HolidayCalendar(Calendar(country="XX"))


def test_the_cache_rebuilds_only_for_another_calendar() -> None:
    cache = CalendarCache()
    first = cache.of(Calendar())
    assert cache.of(Calendar()) is first  # an equal calendar from a re-read of the set
    own = cache.of(Calendar(dates=frozenset({date(2026, 12, 29)})))
    assert own is not first and own.is_holiday(date(2026, 12, 29))


def test_many_threads_expanding_years_at_once_agree() -> None:
    jp = HolidayCalendar(Calendar())
    days = [date(year, 11, 23) for year in range(2030, 2060)]
    results: list[list[bool]] = []

    def ask() -> None:
        results.append([jp.is_holiday(d) for d in days])

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r == [True] * len(days) for r in results)
